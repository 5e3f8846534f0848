"""Which hours of features are published: ``features.published_hours``, written by ``build_features`` once
every gate of an hour passed, and the only hours training sets and drift windows read.

An hour leaves the table when a run starts rebuilding it and comes back when that run publishes it, so
the hours of a failed gate stay out of training and monitoring until a rerun passes.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from flywheel.events import hours_between, naive_utc
from flywheel.warehouse.base import Warehouse
from flywheel.warehouse.tables import PUBLISHED_HOURS_TABLE
from flywheel.warehouse.templates import render_sql

__all__ = [
    "PUBLISHED_HOURS_TABLE",
    "held_out_window",
    "is_published",
    "keep_published_rows",
    "newest_published_hour",
    "publish_hours",
    "published_hours",
    "withdraw_hours",
]
log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
#: Before any hour the warehouse can hold: the lower bound when listing every published hour.
_EPOCH = datetime(1970, 1, 1)

SCHEMA = pa.schema(
    [("hour", pa.timestamp("us")), ("run_id", pa.string()), ("published_at", pa.timestamp("us"))]
)


def withdraw_hours(warehouse: Warehouse, start: datetime, end: datetime) -> None:
    """Take the hours of ``[start, end)`` out of publication while a run rebuilds them."""
    start, end = naive_utc(start), naive_utc(end)
    with warehouse.transaction() as conn:
        conn.ensure_table(PUBLISHED_HOURS_TABLE, SCHEMA)
        conn.execute(
            render_sql("delete_partition.sql", table=PUBLISHED_HOURS_TABLE, column="hour"),
            {"start": start, "end": end},
        )


def publish_hours(warehouse: Warehouse, start: datetime, end: datetime, run_id: str) -> int:
    """Mark every hour of ``[start, end)`` published by ``run_id`` (replacing earlier marks); how many."""
    start, end = naive_utc(start), naive_utc(end)
    now = naive_utc(datetime.now(UTC))
    rows = pa.Table.from_pylist(
        [{"hour": h, "run_id": run_id, "published_at": now} for h in hours_between(start, end)], schema=SCHEMA
    )
    with warehouse.transaction() as conn:
        conn.ensure_table(PUBLISHED_HOURS_TABLE, SCHEMA)
        return conn.replace_partition(PUBLISHED_HOURS_TABLE, rows, "hour", start, end)


def published_hours(warehouse: Warehouse, start: datetime, end: datetime) -> list[datetime]:
    """The published hours in ``[start, end)``, ascending; none before ``build_features`` first publishes."""
    start, end = naive_utc(start), naive_utc(end)
    if not warehouse.table_exists(PUBLISHED_HOURS_TABLE):
        return []
    rows = warehouse.read_arrow(render_sql("published_hours.sql"), {"start": start, "end": end})
    return [h.as_py() for h in rows.column("hour")]


def is_published(warehouse: Warehouse, hour: datetime) -> bool:
    """Whether the hour starting at ``hour`` is published."""
    hour = naive_utc(hour)
    return published_hours(warehouse, hour, hour + timedelta(hours=1)) == [hour]


def newest_published_hour(warehouse: Warehouse) -> datetime | None:
    """The start of the newest published hour; None before ``build_features`` first publishes."""
    if not warehouse.table_exists(PUBLISHED_HOURS_TABLE):
        return None
    return warehouse.read_arrow(render_sql("newest_published_hour.sql")).column("newest")[0].as_py()


def held_out_window(warehouse: Warehouse, hours: int) -> tuple[datetime, datetime]:
    """The evaluation's held-out window, ``[start, end)`` holding the newest ``hours`` published hours:
    end = the newest published hour + 1 h, start = the ``hours``-th newest published hour (earlier when
    unpublished hours lie between: those stay out of the held-out set, as they stay out of training).
    Training ends its windows at ``start`` at the latest, so no candidate learns from the hours it is
    judged on."""
    if int(hours) < 1:
        raise ValueError(f"held-out hours={hours}: give at least 1 (FLYWHEEL_EVAL_HELD_OUT_HOURS)")
    newest = newest_published_hour(warehouse)
    if newest is None:
        raise ValueError(
            f"no hour is published in {PUBLISHED_HOURS_TABLE}: build_features has not published features "
            "yet; run it (or the demo) before evaluating"
        )
    end = naive_utc(newest) + HOUR
    published = published_hours(warehouse, _EPOCH, end)
    if len(published) < hours:
        raise ValueError(
            f"the held-out window needs the newest {hours} published hours but {PUBLISHED_HOURS_TABLE} "
            f"holds {len(published)} (up to {newest:%Y-%m-%d %H:00}): let build_features publish more "
            "hours, or lower FLYWHEEL_EVAL_HELD_OUT_HOURS"
        )
    return published[-hours], end


def keep_published_rows(frame: Any, published: list[datetime], purpose: str) -> Any:
    """The rows of a pandas ``frame`` whose ``event_ts`` falls in one of the ``published`` hours; the
    impressions left out (a failed gate, or a rebuild under way) are counted in a warning that names
    ``purpose`` (what the rows are for: the training set, the held-out set)."""
    import pandas as pd

    hours = pd.to_datetime(frame["event_ts"]).dt.floor("h")
    keep = hours.isin(pd.DatetimeIndex(published)).to_numpy()
    if not keep.all():
        left_out = sorted(set(hours[~keep]))
        log.warning(
            "%s: left out %d impression(s) of %d unpublished hour(s) (a gate failed, or a rebuild is under "
            "way): %s",
            purpose,
            int((~keep).sum()),
            len(left_out),
            ", ".join(f"{h:%Y-%m-%d %H:00}" for h in left_out[:10]) + (" ..." if len(left_out) > 10 else ""),
        )
    return frame[keep].reset_index(drop=True)
