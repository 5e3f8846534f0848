"""The model registry on DuckDB and PostgreSQL: idempotent registration and guarded status changes."""

from __future__ import annotations

import pytest

from flywheel.config import Settings
from flywheel.registry import (
    RegistryError,
    get_version,
    latest,
    list_versions,
    register_candidate,
    set_status,
)
from flywheel.warehouse import open_warehouse


def _register(warehouse, n: int) -> str:
    return register_candidate(
        data_version=f"data{n}",
        artifact_uri=f"/artifacts/training/run{n}/model",
        params={"lr": 0.001 * n, "optimizer": "adamw"},
        metrics={"val_auc": 0.7 + n / 100},
        run_id=f"run{n}",
        warehouse=warehouse,
    )


def test_a_retried_registration_returns_the_first_version(warehouse_home: Settings) -> None:
    warehouse = open_warehouse(warehouse_home.warehouse_url)
    first = _register(warehouse, 1)
    again = _register(warehouse, 1)
    second = _register(warehouse, 2)

    assert (first, again, second) == ("v0001", "v0001", "v0002")
    assert [v.version for v in list_versions(warehouse)] == ["v0001", "v0002"]
    stored = get_version("v0002", warehouse)
    assert stored.params == {"lr": 0.002, "optimizer": "adamw"}
    assert stored.metrics == {"val_auc": pytest.approx(0.72)}
    assert (stored.status, stored.data_version, stored.run_id) == ("candidate", "data2", "run2")
    assert stored.created_at == stored.updated_at


def test_promotion_keeps_one_champion_and_candidates_descend_from_it(warehouse_home: Settings) -> None:
    warehouse = open_warehouse(warehouse_home.warehouse_url)
    v1 = _register(warehouse, 1)
    set_status(v1, "champion", warehouse)
    v2 = _register(warehouse, 2)
    promoted = set_status(v2, "champion", warehouse)

    assert get_version(v2, warehouse).parent_version == v1
    assert get_version(v1, warehouse).status == "archived"
    assert promoted.status == "champion" and promoted.updated_at > promoted.created_at
    assert latest("champion", warehouse).version == v2
    assert latest(warehouse=warehouse).version == v2
    assert latest("rejected", warehouse) is None

    # Roll back: the new champion is pulled and the archived one restored.
    set_status(v2, "rolled_back", warehouse)
    set_status(v1, "champion", warehouse)
    assert [(v.version, v.status) for v in list_versions(warehouse)] == [
        (v1, "champion"),
        (v2, "rolled_back"),
    ]


def test_disallowed_transitions_are_refused_and_change_nothing(warehouse_home: Settings) -> None:
    warehouse = open_warehouse(warehouse_home.warehouse_url)
    v1 = _register(warehouse, 1)
    set_status(v1, "rejected", warehouse)
    assert set_status(v1, "rejected", warehouse).status == "rejected"  # the same status again: a no-op

    with pytest.raises(
        RegistryError, match="cannot move v0001 from rejected to champion: .* only become archived"
    ):
        set_status(v1, "champion", warehouse)
    with pytest.raises(RegistryError, match="unknown status 'blessed'"):
        set_status(v1, "blessed", warehouse)
    with pytest.raises(RegistryError, match="no model version 'v0042'.*latest are v0001"):
        get_version("v0042", warehouse)
    assert get_version(v1, warehouse).status == "rejected"


def test_an_empty_registry_answers_without_error(home: Settings) -> None:
    warehouse = open_warehouse(home.warehouse_url)
    assert latest(warehouse=warehouse) is None
    assert list_versions(warehouse) == []
