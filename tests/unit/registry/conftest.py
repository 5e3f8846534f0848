"""A registry on a fresh warehouse (DuckDB and PostgreSQL) and a helper that registers numbered models."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flywheel.config import Settings
from flywheel.registry import register_candidate
from flywheel.warehouse import Warehouse, open_warehouse


@pytest.fixture
def warehouse(warehouse_home: Settings) -> Warehouse:
    """The fresh warehouse of ``warehouse_home``: DuckDB, then a new PostgreSQL database."""
    return open_warehouse(warehouse_home.warehouse_url)


@pytest.fixture
def register(warehouse: Warehouse) -> Callable[[int], str]:
    """Register model ``n`` (data ``data<n>``, run ``run<n>``) as a candidate; returns its version."""

    def _register(n: int) -> str:
        return register_candidate(
            data_version=f"data{n}",
            artifact_uri=f"/artifacts/training/run{n}/model",
            params={"lr": 0.001 * n, "optimizer": "adamw"},
            metrics={"val_auc": 0.7 + n / 100},
            run_id=f"run{n}",
            warehouse=warehouse,
        )

    return _register
