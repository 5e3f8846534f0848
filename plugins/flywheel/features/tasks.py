"""What the ``build_features`` DAG calls: which interval a run owns, the gates, one task per dbt model
(``dbt_task_group``), and publishing to the feature store.

Each function is what one Airflow task calls; they take and return small JSON-able pointers.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import hours_between, naive_utc
from flywheel.features.dbt_group import dbt_task_group

__all__ = ["dbt_task_group", "gate_feature_marts", "gate_raw_events", "publish_features", "resolve_interval"]

log = logging.getLogger(__name__)

RAW_SUITES = ("raw_impressions", "raw_clicks", "raw_orders")
#: Feature snapshots at feature_ts use events before it, so the interval [s, e) yields snapshots (s, e].
SNAPSHOT_SUITES = ("marts_user_features", "marts_item_features")
EXAMPLE_SUITES = ("marts_training_examples",)


PUBLICATIONS_TABLE = "features.publications"
SQL_DIR = Path(__file__).parent / "sql"


def resolve_interval(
    asset_events: Iterable[Any] | None,
    params: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, str] | None:
    """The interval a run owns, or None when nothing is new since the last publication.

    A manual run owns its ``params``, extended to the end of the last publication when it reruns older
    hours (their rebuild changes every later snapshot). An asset-triggered run owns everything loaded
    since the last publication, widened to the start of any triggering ``raw_events`` that the last
    publication did not cover (an old hour loaded again after a fix). The loaded data, not the events
    alone, sets the end: while this DAG is at max_active_runs, Airflow 3.3 folds the ``raw_events``
    events that arrive into one queue entry but hands the next run only the first of them, so an interval
    read from the events alone would silently skip hours during a backfill.
    """
    params = params or {}
    resolved_at = datetime.now(UTC)
    if params.get("interval_start") and params.get("interval_end"):
        start, end = naive_utc(params["interval_start"]), naive_utc(params["interval_end"])
        if not start < end:
            raise ValueError(f"empty interval [{start}, {end}): interval_start must be before interval_end")
        published_end = _watermarks(settings or get_settings()).published_end
        if published_end is not None and start < published_end and end < published_end:
            # dbt rebuilds every snapshot from the interval on (their 24 h and 7 d windows include it), so
            # the run gates and republishes them too: the online store must not keep pre-repair values.
            log.info("rerun of [%s, %s) extends to the last publication's end %s", start, end, published_end)
            end = published_end
    else:
        marks = _watermarks(settings or get_settings())
        events = [e for e in asset_events or [] if e.extra and "interval_start" in e.extra]
        if not events and marks.loaded_end is None:
            raise ValueError(
                "build_features needs an interval: it is started by raw_events (whose extra carries "
                "interval_start/interval_end) or triggered with params interval_start and interval_end"
            )
        uncovered = [e for e in events if not marks.covers(e)]
        starts = [naive_utc(e.extra["interval_start"]) for e in uncovered]
        # Before the first publication, every loaded hour is new: the events alone may start later (a
        # backfill's hours load in any order, and a deferred run receives only the first queued event).
        first_new = marks.published_end or marks.loaded_start
        starts += [first_new] if first_new else []
        ends = [naive_utc(e.extra["interval_end"]) for e in uncovered]
        ends += [marks.loaded_end] if marks.loaded_end else []
        if not starts or not ends or min(starts) >= max(ends):
            log.info("nothing loaded since the last publication (through %s)", marks.published_end)
            return None
        start, end = min(starts), max(ends)
    return {"start": start.isoformat(), "end": end.isoformat(), "resolved_at": resolved_at.isoformat()}


@dataclass(frozen=True)
class Watermarks:
    """How far raw data is loaded, and what the last publication covered and when it looked."""

    loaded_end: datetime | None
    published_end: datetime | None
    published_resolved_at: datetime | None
    #: The first hour loaded: where the first publication starts, whichever hour's event came first.
    loaded_start: datetime | None = None

    def covers(self, event: Any) -> bool:
        """An event the last publication already saw: emitted before it resolved, within its range."""
        if self.published_end is None or self.published_resolved_at is None:
            return False
        timestamp = getattr(event, "timestamp", None)
        if timestamp is None:
            return False
        return (
            naive_utc(timestamp) <= self.published_resolved_at
            and naive_utc(event.extra["interval_end"]) <= self.published_end
        )


def _watermarks(settings: Settings) -> Watermarks:
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.templates import render_sql

    warehouse = open_warehouse(settings.warehouse_url)
    loaded = published = resolved = first = None
    if warehouse.table_exists("raw.impressions"):
        loaded_range = warehouse.read_arrow(render_sql(SQL_DIR / "impression_range.sql")).to_pylist()[0]
        if loaded_range["newest"] is not None:
            first = loaded_range["oldest"].replace(minute=0, second=0, microsecond=0)
            loaded = loaded_range["newest"].replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if warehouse.table_exists(PUBLICATIONS_TABLE):
        last = warehouse.read_arrow(
            render_sql(SQL_DIR / "last_publication.sql", table=PUBLICATIONS_TABLE)
        ).to_pylist()
        if last:
            published, resolved = last[0]["interval_end"], last[0]["resolved_at"]
    return Watermarks(loaded, published, resolved, first)


def record_publication(interval: Mapping[str, str], run_id: str, settings: Settings) -> None:
    """Remember what was published: the next run starts from here."""
    import pyarrow as pa

    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.templates import render_sql

    schema = pa.schema(
        [
            ("interval_start", pa.timestamp("us")),
            ("interval_end", pa.timestamp("us")),
            ("resolved_at", pa.timestamp("us")),
            ("run_id", pa.string()),
        ]
    )
    row = {
        "interval_start": naive_utc(interval["start"]),
        "interval_end": naive_utc(interval["end"]),
        "resolved_at": naive_utc(interval.get("resolved_at") or datetime.now(UTC)),
        "run_id": run_id,
    }
    with open_warehouse(settings.warehouse_url).transaction() as conn:
        conn.ensure_table(PUBLICATIONS_TABLE, schema)
        conn.execute(render_sql(SQL_DIR / "delete_publication.sql", table=PUBLICATIONS_TABLE), row)
        conn.insert_arrow(PUBLICATIONS_TABLE, pa.Table.from_pylist([row], schema=schema))


def _run_gates(suites: Iterable[str], hours: list[datetime], run_id: str, settings: Settings) -> int:
    """Run every suite on every hour, then fail once listing every failed gate; return how many passed.

    Bad data raises Airflow's fail-now exception (``GatesFailed`` as its cause): a retry would only
    re-check a partition already set aside. Any other error (the warehouse unreachable, a broken suite)
    propagates as itself, so the task's retries still apply.
    """
    from airflow.sdk.exceptions import AirflowFailException

    from flywheel.quality import GateFailed, GatesFailed, run_gate

    failed: list[GateFailed] = []
    passed = 0
    for suite in suites:
        for hour in hours:
            end = hour + timedelta(hours=1)
            try:
                result = run_gate(suite, start=hour, end=end, settings=settings, run_id=run_id)
            except GateFailed as exc:
                failed.append(exc)
                continue
            passed += 1
            log.info("gate passed: %s", result.summary())
    if failed:
        # Every gate ran first, so each failing partition is already in quarantine when the run stops.
        error = GatesFailed([exc.result for exc in failed])
        raise AirflowFailException(str(error)) from error
    return passed


def gate_raw_events(
    asset_events: Iterable[Any] | None, params: Mapping[str, Any] | None, run_id: str
) -> dict:
    """The run's interval (``resolve_interval``), its raw hours gated; skips the run (and every task
    after) when an earlier run already published everything loaded."""
    from airflow.exceptions import AirflowSkipException

    interval = resolve_interval(asset_events, params)
    if interval is None:
        raise AirflowSkipException("nothing loaded since the last publication")
    return gate_raw_hours(interval, run_id)


def gate_raw_hours(interval: Mapping[str, str], run_id: str, settings: Settings | None = None) -> dict:
    """Validate each hour of ``raw.*`` in the interval; failing partitions move to quarantine.

    The interval's hours leave ``features.published_hours`` first: training and drift do not read them
    again until this run has passed every gate and published them.
    """
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import withdraw_hours

    settings = settings or get_settings()
    start, end = naive_utc(interval["start"]), naive_utc(interval["end"])
    withdraw_hours(open_warehouse(settings.warehouse_url), start, end)
    hours = hours_between(start, end)
    return {**interval, "gates_passed": _run_gates(RAW_SUITES, hours, run_id, settings)}


def gate_feature_marts(interval: Mapping[str, str], run_id: str, settings: Settings | None = None) -> dict:
    """Validate the snapshots and training examples the interval produced."""
    settings = settings or get_settings()
    start, end = naive_utc(interval["start"]), naive_utc(interval["end"])
    snapshot_hours = hours_between(start + timedelta(hours=1), end + timedelta(hours=1))
    passed = _run_gates(SNAPSHOT_SUITES, snapshot_hours, run_id, settings)
    passed += _run_gates(EXAMPLE_SUITES, hours_between(start, end), run_id, settings)
    return {**interval, "gates_passed": passed}


def publish_features(interval: Mapping[str, str], run_id: str, settings: Settings | None = None) -> dict:
    """Register the feature definitions with Feast and materialize the interval's snapshots online."""
    from flywheel.feature_store.store import apply_and_materialize
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import publish_hours

    settings = settings or get_settings()
    start, end = naive_utc(interval["start"]), naive_utc(interval["end"])
    counts = apply_and_materialize(start + timedelta(hours=1), end + timedelta(hours=1), settings=settings)
    record_publication(interval, run_id, settings)
    # Every gate of these hours passed: training sets and drift windows may read them now.
    hours = publish_hours(open_warehouse(settings.warehouse_url), start, end, run_id)
    log.info("materialized %s; published %d hour(s) from %s", counts, hours, start)
    return {**interval, "materialized": counts.get("rows", {})}
