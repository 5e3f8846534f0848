"""Model versions on DuckDB and PostgreSQL: idempotent registration, reads by version and status, and
tables created on first use that a second creation leaves alone."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flywheel.config import Settings
from flywheel.registry import (
    RegistryError,
    get_version,
    history,
    latest,
    list_versions,
)
from flywheel.registry.store import ensure_tables
from flywheel.warehouse import Warehouse, open_warehouse


def test_a_retried_registration_returns_the_first_version(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    first = register(1)
    again = register(1)
    second = register(2)

    assert (first, again, second) == ("v0001", "v0001", "v0002")
    assert [v.version for v in list_versions(warehouse)] == ["v0001", "v0002"]
    stored = get_version("v0002", warehouse)
    assert stored.params == {"lr": 0.002, "optimizer": "adamw"}
    assert stored.metrics == {"val_auc": pytest.approx(0.72)}
    assert (stored.status, stored.data_version, stored.run_id) == ("candidate", "data2", "run2")
    assert stored.created_at == stored.updated_at
    # The registration opens the version's history, once however often the task is retried.
    assert [(c.from_status, c.to_status, c.reason, c.run_id) for c in history(first, warehouse)] == [
        (None, "candidate", "registered", "run1")
    ]


def test_latest_reads_by_status_and_unknown_versions_name_the_known_ones(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    register(1)
    register(2)

    assert latest(warehouse=warehouse).version == "v0002"
    assert latest("candidate", warehouse).version == "v0002"
    assert latest("champion", warehouse) is None
    with pytest.raises(RegistryError, match="no model version 'v0042'.*latest are v0002, v0001"):
        get_version("v0042", warehouse)
    with pytest.raises(RegistryError, match="unknown status 'deployed': use one of candidate, blessed"):
        latest("deployed", warehouse)


def test_creating_the_tables_twice_changes_nothing(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    version = register(1)
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        ensure_tables(conn)

    assert [v.version for v in list_versions(warehouse)] == [version]
    assert len(history(version, warehouse)) == 1
    for table in ("model_versions", "status_changes", "evaluations", "deployments"):
        assert warehouse.table_exists(f"registry.{table}")


def test_an_empty_registry_answers_without_error(home: Settings) -> None:
    warehouse = open_warehouse(home.warehouse_url)
    assert latest(warehouse=warehouse) is None
    assert list_versions(warehouse) == []
    with pytest.raises(RegistryError, match="the registry is empty"):
        get_version("v0001", warehouse)
