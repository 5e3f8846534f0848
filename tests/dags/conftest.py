"""DAG tests parse the real DAG files, which read dbt's manifest: make sure it exists and is current."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def dbt_manifest() -> None:
    from flywheel.features.dbt import run_dbt

    run_dbt(["parse"])  # never connects: the test home's DuckDB path only fills in the profile
