"""The retrain rule for the model in service: PSI over a threshold in the latest window, or over a lower one
for several consecutive hours."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

from flywheel.config import DriftRule
from flywheel.events import naive_utc
from flywheel.monitoring.drift import FEATURE_DRIFT_TABLE, has_model_version
from flywheel.warehouse import Warehouse, WarehouseError
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

DECISION_SQL = "monitoring/drift_decision.sql"


@dataclass(frozen=True)
class Decision:
    """Whether to retrain; ``features`` maps each feature that fired to its latest PSI."""

    fire: bool
    features: dict[str, float] = field(default_factory=dict)
    reason: str = ""


def drift_decision(
    warehouse: Warehouse,
    model_version: str,
    window_end: datetime,
    psi_threshold: float = DriftRule.psi_threshold,
    sustained_threshold: float = DriftRule.sustained_threshold,
    sustained_windows: int = DriftRule.sustained_windows,
) -> Decision:
    """Apply the rule of ``sql/monitoring/drift_decision.sql`` to the windows recorded for ``model_version``
    up to ``window_end``; the thresholds default to :class:`flywheel.config.DriftRule`'s.

    Reads ``monitoring.feature_drift`` only. Windows measured against another model never count, the
    sustained branch needs each of the last ``sustained_windows`` hours (a missing hour breaks it), and a
    window with no data never fires.
    """
    if sustained_windows < 1:
        raise ValueError(f"sustained_windows must be at least 1, got {sustained_windows}")
    window_end = naive_utc(window_end)
    if not warehouse.table_exists(FEATURE_DRIFT_TABLE):
        return Decision(False, {}, f"no drift recorded yet ({FEATURE_DRIFT_TABLE} does not exist)")
    if not has_model_version(warehouse):
        raise WarehouseError(
            f"{FEATURE_DRIFT_TABLE} has no model_version column (written before rows named their model): "
            "the next compute_window_drift (detect_drift's check_window) adds it, filled from profile_id"
        )
    rows = warehouse.read_arrow(
        render_sql(DECISION_SQL),
        {
            "model_version": model_version,
            "window_end": window_end,
            "psi_threshold": float(psi_threshold),
            "sustained_threshold": float(sustained_threshold),
            "sustained_windows": int(sustained_windows),
        },
    ).to_pylist()
    fired = [r for r in rows if r["fire"]]
    if not rows:
        reason = f"no drift recorded for model {model_version} up to {window_end:%Y-%m-%d %H:%M}"
    elif fired:
        reason = "; ".join(_why(r, psi_threshold, sustained_threshold, sustained_windows) for r in fired)
    elif all(r["latest_status"] != "ok" for r in rows):
        statuses = sorted({r["latest_status"] for r in rows})
        reason = f"window ending {window_end:%Y-%m-%d %H:%M} has no PSI ({', '.join(statuses)}): not firing"
    else:
        highest = max((r for r in rows if r["latest_psi"] is not None), key=lambda r: r["latest_psi"])
        reason = (
            f"no feature drifted: highest PSI {highest['latest_psi']:.4f} ({highest['feature']}) "
            f"< {psi_threshold}, and none >= {sustained_threshold} for {sustained_windows} consecutive hours"
        )
    decision = Decision(bool(fired), {r["feature"]: float(r["latest_psi"]) for r in fired}, reason)
    log.info(
        "drift decision for model %s, window ending %s: fire=%s (%s)",
        model_version,
        window_end,
        decision.fire,
        reason,
    )
    return decision


def _why(row: dict, psi_threshold: float, sustained_threshold: float, sustained_windows: int) -> str:
    if row["over_threshold"]:
        return f"{row['feature']}: PSI {row['latest_psi']:.4f} >= {psi_threshold} in the latest window"
    return (
        f"{row['feature']}: PSI >= {sustained_threshold} in each of the last {sustained_windows} windows "
        f"(latest {row['latest_psi']:.4f})"
    )
