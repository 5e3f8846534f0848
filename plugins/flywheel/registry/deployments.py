"""Rollouts of model versions (``registry.deployments``): one row per step, with the share of traffic the
version served and the decision taken there (advance, hold, rollback, promote).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from typing import Any

from flywheel.registry.store import RegistryError, ensure_tables, statement, utcnow
from flywheel.registry.versions import require_version
from flywheel.warehouse import Warehouse, open_warehouse

#: What a rollout step may decide. Recording ``promote`` or ``rollback`` does not move the version's
#: status: the serving stage does that with ``set_status``, so the decision and the move stay auditable apart.
DECISIONS = ("advance", "hold", "rollback", "promote")


@dataclass(frozen=True)
class DeploymentStep:
    """One step of rollout ``deployment_id`` of ``version``."""

    deployment_id: str
    version: str
    step: int
    #: The share of traffic (0..1) the version served at this step.
    traffic_share: float
    decision: str
    reason: str | None
    run_id: str | None
    decided_at: datetime


def _read(conn: Any, params: dict[str, Any], **flags: bool) -> list[DeploymentStep]:
    rows = conn.read_arrow(statement("select_deployments.sql", **flags), params).to_pylist()
    return [DeploymentStep(**row) for row in rows]


def _check_step(deployment_id: str, step: Any, traffic_share: Any, decision: Any) -> None:
    where = f"deployment {deployment_id!r} step {step!r}"
    if not isinstance(deployment_id, str) or not deployment_id:
        raise ValueError(f"deployment_id must be a non-empty string, got {deployment_id!r}")
    if not isinstance(step, int) or isinstance(step, bool) or step < 0:
        raise ValueError(f"{where}: step must be a non-negative integer (0, 1, 2, ...), got {step!r}")
    if (
        not isinstance(traffic_share, Real)
        or isinstance(traffic_share, bool)
        or not math.isfinite(float(traffic_share))
        or not 0.0 <= float(traffic_share) <= 1.0
    ):
        raise ValueError(
            f"{where}: traffic_share must be a fraction between 0 and 1 (0.05 for 5%), got {traffic_share!r}"
        )
    if decision not in DECISIONS:
        raise ValueError(f"{where}: decision must be one of {', '.join(DECISIONS)}, got {decision!r}")


def record_deployment_step(
    deployment_id: str,
    version: str,
    step: int,
    traffic_share: float,
    decision: str,
    *,
    reason: str | None = None,
    run_id: str | None = None,
    decided_at: datetime | None = None,
    warehouse: Warehouse | None = None,
) -> DeploymentStep:
    """Write step ``step`` of rollout ``deployment_id`` of ``version``, merging on ``(deployment_id, step)``.

    ``traffic_share`` is a fraction in [0, 1] and ``decision`` one of ``DECISIONS`` (``ValueError``
    otherwise); an unknown version, or a deployment that already rolls out another version, raises
    ``RegistryError``. ``decided_at`` defaults to now (naive UTC).
    """
    _check_step(deployment_id, step, traffic_share, decision)
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        require_version(conn, version)
        others = {
            s.version
            for s in _read(conn, {"deployment_id": deployment_id}, by_deployment=True)
            if s.version != version
        }
        if others:
            raise RegistryError(
                f"deployment {deployment_id!r} rolls out {', '.join(sorted(others))}, not {version}: "
                "start a new deployment_id for another version"
            )
        conn.execute(
            statement("merge_deployment_step.sql"),
            {
                "deployment_id": deployment_id,
                "version": version,
                "step": step,
                "traffic_share": float(traffic_share),
                "decision": decision,
                "reason": reason,
                "run_id": run_id,
                "decided_at": decided_at or utcnow(),
            },
        )
        steps = _read(conn, {"deployment_id": deployment_id}, by_deployment=True)
    return next(s for s in steps if s.step == step)


def deployments(version: str | None = None, warehouse: Warehouse | None = None) -> list[DeploymentStep]:
    """Every rollout step (of ``version``, if given), each deployment's steps in order."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        if version is not None:
            require_version(conn, version)
        return _read(conn, {"version": version}, by_version=version is not None)
