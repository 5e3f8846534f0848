"""The steps of ``build_features`` around dbt: which interval a run owns, the gates, and publishing to Feast.

Each function is what one Airflow task calls; they take and return small JSON-able pointers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import hours_between

log = logging.getLogger(__name__)

RAW_SUITES = ("raw_impressions", "raw_clicks", "raw_orders")
#: Feature snapshots at feature_ts use events before it, so the interval [s, e) yields snapshots (s, e].
SNAPSHOT_SUITES = ("marts_user_features", "marts_item_features")
EXAMPLE_SUITES = ("marts_training_examples",)


def _naive(value: datetime | str) -> datetime:
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def resolve_interval(
    asset_events: Iterable[Any] | None, params: Mapping[str, Any] | None = None
) -> dict[str, str]:
    """The interval a run owns: the span of its triggering ``raw_events``, or the ``params`` of a manual run.

    Several ingest runs may finish before one ``build_features`` run starts; the run then owns the
    union of their intervals.
    """
    params = params or {}
    if params.get("interval_start") and params.get("interval_end"):
        start, end = _naive(params["interval_start"]), _naive(params["interval_end"])
    else:
        extras = [e.extra for e in asset_events or [] if e.extra and "interval_start" in e.extra]
        if not extras:
            raise ValueError(
                "build_features needs an interval: it is started by raw_events (whose extra carries "
                "interval_start/interval_end) or triggered with params interval_start and interval_end"
            )
        start = min(_naive(x["interval_start"]) for x in extras)
        end = max(_naive(x["interval_end"]) for x in extras)
    if not start < end:
        raise ValueError(f"empty interval [{start}, {end}): interval_start must be before interval_end")
    return {"start": start.isoformat(), "end": end.isoformat()}


def _run_gates(suites: Iterable[str], hours: list[datetime], run_id: str, settings: Settings) -> int:
    """Run every suite on every hour, then fail once listing every failed gate; return how many passed."""
    from flywheel.quality import DataQualityError, GateFailed, run_gate

    failures: list[str] = []
    passed = 0
    for suite in suites:
        for hour in hours:
            end = hour + timedelta(hours=1)
            try:
                result = run_gate(suite, start=hour, end=end, settings=settings, run_id=run_id)
            except GateFailed as exc:
                failures.append(str(exc))
                continue
            passed += 1
            log.info("gate passed: %s", result.summary())
    if failures:
        # Every gate ran first, so each failing partition is already in quarantine when the run stops.
        raise DataQualityError(f"{len(failures)} quality gate(s) failed:\n" + "\n".join(failures))
    return passed


def gate_raw_events(interval: Mapping[str, str], run_id: str, settings: Settings | None = None) -> dict:
    """Validate each hour of ``raw.*`` in the interval; failing partitions move to quarantine."""
    settings = settings or get_settings()
    hours = hours_between(_naive(interval["start"]), _naive(interval["end"]))
    return {**interval, "gates_passed": _run_gates(RAW_SUITES, hours, run_id, settings)}


def gate_feature_marts(interval: Mapping[str, str], run_id: str, settings: Settings | None = None) -> dict:
    """Validate the snapshots and training examples the interval produced."""
    settings = settings or get_settings()
    start, end = _naive(interval["start"]), _naive(interval["end"])
    snapshot_hours = hours_between(start + timedelta(hours=1), end + timedelta(hours=1))
    passed = _run_gates(SNAPSHOT_SUITES, snapshot_hours, run_id, settings)
    passed += _run_gates(EXAMPLE_SUITES, hours_between(start, end), run_id, settings)
    return {**interval, "gates_passed": passed}


def publish_features(interval: Mapping[str, str], settings: Settings | None = None) -> dict:
    """Register the feature definitions with Feast and materialize the interval's snapshots online."""
    from flywheel.features.store import apply_and_materialize

    start, end = _naive(interval["start"]), _naive(interval["end"])
    counts = apply_and_materialize(start + timedelta(hours=1), end + timedelta(hours=1), settings=settings)
    log.info("materialized %s", counts)
    return {**interval, "materialized": counts.get("rows", {})}
