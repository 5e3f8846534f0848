"""The lifecycle on DuckDB and PostgreSQL: allowed moves only, one champion at a time, every change in the
history with its reason, and which model is in service before and after the first promotion."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flywheel.config import Settings
from flywheel.registry import (
    TRANSITIONS,
    RegistryError,
    baseline_for,
    get_version,
    history,
    in_service,
    latest,
    list_versions,
    set_status,
)
from flywheel.warehouse import Warehouse, open_warehouse


def _promote(version: str, warehouse: Warehouse) -> None:
    for status in ("blessed", "canary", "champion"):
        set_status(version, status, warehouse, reason=f"to {status}", run_id="serve1")


def test_a_version_walks_the_whole_lifecycle(warehouse: Warehouse, register: Callable[[int], str]) -> None:
    v1 = register(1)
    _promote(v1, warehouse)
    v2 = register(2)  # the challenger of champion v1
    set_status(v2, "blessed", warehouse, reason="auc 0.74 beats the champion's 0.72")
    set_status(v2, "canary", warehouse, reason="5% of traffic")
    promoted = set_status(v2, "champion", warehouse, reason="canary held for 24 hours")
    set_status(v2, "rolled_back", warehouse, reason="error rate doubled")
    restored = set_status(v1, "champion", warehouse, reason="restore the previous champion")
    set_status(v2, "archived", warehouse)

    assert promoted.updated_at > promoted.created_at
    assert restored.status == "champion"
    assert [(v.version, v.status) for v in list_versions(warehouse)] == [(v1, "champion"), (v2, "archived")]
    assert get_version(v2, warehouse).parent_version == v1


def test_a_refused_transition_names_the_allowed_moves_and_changes_nothing(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    v1 = register(1)
    with pytest.raises(
        RegistryError, match="cannot move v0001 from candidate to champion: .* only become blessed, rejected"
    ):
        set_status(v1, "champion", warehouse)
    set_status(v1, "rejected", warehouse, reason="auc below the floor")
    assert set_status(v1, "rejected", warehouse).status == "rejected"  # the same status again: a no-op
    with pytest.raises(RegistryError, match="from rejected to canary: .* only become archived"):
        set_status(v1, "canary", warehouse)
    with pytest.raises(RegistryError, match="unknown status 'deployed'"):
        set_status(v1, "deployed", warehouse)
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        set_status("v0042", "blessed", warehouse)

    assert get_version(v1, warehouse).status == "rejected"
    assert [c.to_status for c in history(v1, warehouse)] == ["candidate", "rejected"]


def test_only_a_former_champion_comes_back_from_the_archive(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    v1 = register(1)
    set_status(v1, "rejected", warehouse)
    set_status(v1, "archived", warehouse)
    assert "champion" in TRANSITIONS["archived"]

    with pytest.raises(
        RegistryError, match=r"only a former champion .* \(candidate -> rejected -> archived\)"
    ):
        set_status(v1, "champion", warehouse)
    assert get_version(v1, warehouse).status == "archived"


def test_promoting_archives_the_previous_champion_and_history_says_why(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    v1, v2 = register(1), register(2)
    _promote(v1, warehouse)
    _promote(v2, warehouse)

    assert latest("champion", warehouse).version == v2
    assert [v.version for v in list_versions(warehouse) if v.status == "champion"] == [v2]
    assert [(c.from_status, c.to_status, c.reason, c.run_id) for c in history(v1, warehouse)] == [
        (None, "candidate", "registered", "run1"),
        ("candidate", "blessed", "to blessed", "serve1"),
        ("blessed", "canary", "to canary", "serve1"),
        ("canary", "champion", "to champion", "serve1"),
        ("champion", "archived", f"superseded by {v2}", "serve1"),
    ]
    changes = history(v2, warehouse)
    assert [c.seq for c in changes] == [1, 2, 3, 4]
    assert all(a.changed_at <= b.changed_at for a, b in zip(changes, changes[1:], strict=False))
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        history("v0042", warehouse)


def test_in_service_is_the_newest_blessed_model_until_a_promotion_then_the_champion(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    assert in_service(warehouse) is None
    v1, v2 = register(1), register(2)
    assert in_service(warehouse).version == v2  # nothing judged yet: the newest candidate
    set_status(v2, "rejected", warehouse)
    assert in_service(warehouse).version == v1  # a rejected model is never in service
    set_status(v1, "blessed", warehouse)
    v4 = register(4)
    assert in_service(warehouse).version == v1  # blessed beats a newer candidate not yet judged

    _promote(v1, warehouse)
    v3 = register(3)
    assert in_service(warehouse).version == v1  # newer candidates wait for their promotion
    _promote(v3, warehouse)
    assert in_service(warehouse).version == v3

    set_status(v3, "rolled_back", warehouse, reason="canary regressed after promotion")
    assert in_service(warehouse) is None  # no champion stands, and candidates are not a fallback any more
    set_status(v1, "champion", warehouse, reason="restore")
    assert in_service(warehouse).version == v1
    assert v4


def test_a_candidate_is_judged_against_the_champion_or_the_newest_older_blessed_model(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    v1 = register(1)
    assert baseline_for(v1, warehouse) is None  # the first model: absolute thresholds
    set_status(v1, "blessed", warehouse)
    v2, v3 = register(2), register(3)
    assert baseline_for(v2, warehouse).version == v1
    set_status(v3, "blessed", warehouse)
    assert baseline_for(v2, warehouse).version == v1  # v3 is newer than v2: never v2's baseline
    v4 = register(4)
    assert baseline_for(v4, warehouse).version == v3
    _promote(v1, warehouse)
    assert baseline_for(v4, warehouse).version == v1  # a champion stands: it is the baseline
    set_status(v1, "rolled_back", warehouse, reason="regressed")
    assert baseline_for(v4, warehouse) is None  # after a promotion only a champion can be the baseline
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        baseline_for("v0042", warehouse)


def test_in_service_creates_nothing_in_an_empty_warehouse(home: Settings) -> None:
    warehouse = open_warehouse(home.warehouse_url)
    assert in_service(warehouse) is None
    assert not warehouse.table_exists("registry.model_versions")
