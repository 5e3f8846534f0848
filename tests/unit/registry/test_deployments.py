"""Rollout steps on DuckDB and PostgreSQL: merged on (deployment_id, step), listed per version, and bad
shares, decisions or versions refused with the field named."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from flywheel.registry import RegistryError, deployments, record_deployment_step
from flywheel.warehouse import Warehouse


def test_steps_merge_on_deployment_and_step(warehouse: Warehouse, register: Callable[[int], str]) -> None:
    v1, v2 = register(1), register(2)
    record_deployment_step("d1", v2, 0, 0.05, "advance", reason="canary healthy", warehouse=warehouse)
    record_deployment_step("d1", v2, 1, 0.25, "hold", reason="latency p99 near limit", warehouse=warehouse)
    at = datetime(2026, 3, 2, 12)
    again = record_deployment_step(
        "d1", v2, 1, 0.25, "advance", reason="recovered", run_id="serve7", decided_at=at, warehouse=warehouse
    )
    record_deployment_step("d0", v1, 0, 1.0, "promote", warehouse=warehouse)

    assert (again.decision, again.reason, again.run_id, again.decided_at) == (
        "advance",
        "recovered",
        "serve7",
        at,
    )
    steps = deployments(v2, warehouse)
    assert [(s.deployment_id, s.step, s.traffic_share, s.decision) for s in steps] == [
        ("d1", 0, 0.05, "advance"),
        ("d1", 1, 0.25, "advance"),
    ]
    assert [(s.deployment_id, s.version) for s in deployments(warehouse=warehouse)] == [
        ("d0", v1),
        ("d1", v2),
        ("d1", v2),
    ]


@pytest.mark.parametrize(
    ("share", "decision", "message"),
    [
        (1.5, "advance", "traffic_share must be a fraction between 0 and 1 .* got 1.5"),
        (-0.1, "advance", "traffic_share .* got -0.1"),
        (float("nan"), "advance", "traffic_share .* got nan"),
        (0.1, "ship", "decision must be one of advance, hold, rollback, promote, got 'ship'"),
    ],
)
def test_bad_shares_and_decisions_are_refused_with_the_field_named(
    warehouse: Warehouse, register: Callable[[int], str], share: float, decision: str, message: str
) -> None:
    version = register(1)
    with pytest.raises(ValueError, match=f"deployment 'd1' step 0: {message}"):
        record_deployment_step("d1", version, 0, share, decision, warehouse=warehouse)
    assert deployments(warehouse=warehouse) == []


def test_a_deployment_rolls_out_one_known_version(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    v1, v2 = register(1), register(2)
    with pytest.raises(RegistryError, match="no model version 'v0042'"):
        record_deployment_step("d1", "v0042", 0, 0.05, "advance", warehouse=warehouse)
    record_deployment_step("d1", v1, 0, 0.05, "advance", warehouse=warehouse)
    with pytest.raises(RegistryError, match="'d1' rolls out v0001, not v0002: start a new deployment_id"):
        record_deployment_step("d1", v2, 1, 0.25, "advance", warehouse=warehouse)
    assert [s.version for s in deployments(warehouse=warehouse)] == [v1]
