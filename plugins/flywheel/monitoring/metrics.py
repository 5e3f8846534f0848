"""Publish the drift check to Prometheus: a node-exporter textfile always, a Pushgateway push if set."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from flywheel.config import Settings, get_settings
from flywheel.events import naive_utc
from flywheel.metrics import PUSHGATEWAY_ENV, publish
from flywheel.monitoring.decision import Decision
from flywheel.monitoring.drift import FeatureDrift
from flywheel.monitoring.performance import OnlinePerformance

log = logging.getLogger(__name__)

__all__ = ["METRICS", "PUSHGATEWAY_ENV", "PUSH_JOB", "TEXTFILE_NAME", "export_metrics"]

#: Every metric the check exports; the alert rules and the Grafana dashboard may use only these.
METRICS = {
    "flywheel_feature_psi": "Population stability index of a feature, latest window against the reference",
    "flywheel_model_auc": "AUC of the served model's predictions against clicks, latest window",
    "flywheel_ctr_ratio": "Actual CTR divided by mean predicted CTR, latest window (1 = calibrated)",
    "flywheel_drift_check_timestamp_seconds": "Unix time the drift check last ran",
    "flywheel_drift_decision": "1 when the latest drift check requested retraining, else 0",
}
#: The Pushgateway job: one group that each push replaces whole, so a feature dropped is dropped there too.
PUSH_JOB = "flywheel_drift"
TEXTFILE_NAME = "flywheel.prom"


def export_metrics(
    drifts: Sequence[FeatureDrift],
    performance: OnlinePerformance | None = None,
    decision: Decision | None = None,
    *,
    checked_at: datetime | float | None = None,
    settings: Settings | None = None,
    pushgateway_url: str | None = None,
) -> Path:
    """Write ``<FLYWHEEL_HOME>/metrics/flywheel.prom`` and, if ``FLYWHEEL_PUSHGATEWAY_URL`` (or
    ``pushgateway_url``) is set, push the same metrics there. Returns the textfile's path.

    A value that is unknown (a window without data, no predictions yet) is left out rather than exported
    as 0, which alerts would read as a real AUC or ratio.
    """
    from prometheus_client import CollectorRegistry, Gauge

    settings = settings or get_settings()
    registry = CollectorRegistry()
    psi = Gauge("flywheel_feature_psi", METRICS["flywheel_feature_psi"], ["feature"], registry=registry)
    for drift in drifts:
        if drift.psi is not None:
            psi.labels(feature=drift.feature).set(drift.psi)
    if performance is not None:
        for name, value in (
            ("flywheel_model_auc", performance.auc),
            ("flywheel_ctr_ratio", performance.ctr_ratio),
        ):
            if value is not None and math.isfinite(value):
                Gauge(name, METRICS[name], registry=registry).set(value)
    when = _unix_time(checked_at)
    Gauge(
        "flywheel_drift_check_timestamp_seconds",
        METRICS["flywheel_drift_check_timestamp_seconds"],
        registry=registry,
    ).set(when)
    if decision is not None:
        Gauge("flywheel_drift_decision", METRICS["flywheel_drift_decision"], registry=registry).set(
            1 if decision.fire else 0
        )

    return publish(
        registry, textfile=TEXTFILE_NAME, job=PUSH_JOB, settings=settings, pushgateway_url=pushgateway_url
    )


def _unix_time(value: datetime | float | None) -> float:
    if value is None:
        return time.time()
    if isinstance(value, datetime):
        return naive_utc(value).replace(tzinfo=UTC).timestamp()
    return float(value)
