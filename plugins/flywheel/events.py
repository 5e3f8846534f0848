"""The event tables of the loop: their Arrow schemas and where their hourly files land.

The simulator writes impressions, clicks and orders, the serving gateway predictions; ``ingest_events`` reads
them all, and the warehouse DDL mirrors them. The feature marts built from them are specified in
``dbt/README.md`` (the contract for dbt, GX and Feast).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow as pa

TS = pa.timestamp("us")  # naive timestamps in UTC, microsecond precision, in every table

#: Columns every landing file of a table must have, in warehouse order. Extra columns are dropped.
EVENT_SCHEMAS: dict[str, pa.Schema] = {
    "impressions": pa.schema(
        [
            ("impression_id", pa.string()),
            ("request_id", pa.string()),
            ("event_ts", TS),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("position", pa.int32()),
            ("category", pa.string()),
            ("price", pa.float64()),
        ]
    ),
    "clicks": pa.schema(
        [
            ("click_id", pa.string()),
            ("impression_id", pa.string()),
            ("event_ts", TS),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
        ]
    ),
    "orders": pa.schema(
        [
            ("order_id", pa.string()),
            ("impression_id", pa.string()),
            ("event_ts", TS),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("quantity", pa.int32()),
            ("gmv", pa.float64()),
        ]
    ),
    # Written by the serving gateway, not the simulator: one row per scored candidate of a ranking request.
    # impression_id (= prediction_id) is f"{request_id}-{index}", index the item's place in the request's
    # item_ids, so an item the user was shown joins its impression and clicks; position is the item's
    # 1-based rank by score (the ranking served); user_hash is the stable hash the traffic split used.
    "predictions": pa.schema(
        [
            ("prediction_id", pa.string()),
            ("request_id", pa.string()),
            ("impression_id", pa.string()),
            ("event_ts", TS),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("position", pa.int32()),
            ("score", pa.float64()),
            ("model_version", pa.string()),
            ("bucket", pa.string()),
            ("user_hash", pa.float64()),
            ("latency_ms", pa.float64()),
        ]
    ),
}

#: The column every table is partitioned on (rows belong to the hour of this timestamp).
PARTITION_COLUMN = "event_ts"


def naive_utc(value: datetime | str) -> datetime:
    """A datetime (or ISO string) as the naive UTC time every table stores; aware times are converted."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


def hour_dir(landing_dir: Path, table: str, hour: datetime) -> Path:
    """Folder holding the files of ``table`` whose events fall in ``hour`` (a Hive-style layout)."""
    return landing_dir / table / f"date={hour:%Y-%m-%d}" / f"hour={hour:%H}"


def hours_between(start: datetime, end: datetime) -> list[datetime]:
    """Whole hours ``h`` with ``start <= h < end``; ``start`` is rounded down to its hour."""
    hour = start.replace(minute=0, second=0, microsecond=0)
    hours = []
    while hour < end:
        hours.append(hour)
        hour += timedelta(hours=1)
    return hours
