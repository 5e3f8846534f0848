"""Online performance of the served model per window: CTR, predicted vs actual CTR, AUC, computed in SQL."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from flywheel.monitoring.drift import naive_utc
from flywheel.monitoring.rows import insert_rows
from flywheel.warehouse import Warehouse, validate_identifier
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
PERFORMANCE_SQL = "monitoring/online_performance.sql"
PERFORMANCE_TABLE = "monitoring.online_performance"
PERFORMANCE_SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("us")),
        ("window_end", pa.timestamp("us")),
        ("impressions", pa.int64()),
        ("predictions", pa.int64()),
        ("clicks", pa.int64()),
        ("ctr", pa.float64()),
        ("predicted_ctr", pa.float64()),
        ("ctr_ratio", pa.float64()),
        ("auc", pa.float64()),
    ]
)


@dataclass(frozen=True)
class OnlinePerformance:
    """One window's served-model metrics; the rates are None when the window has no predictions."""

    window_start: datetime
    window_end: datetime
    impressions: int
    predictions: int
    clicks: int
    ctr: float | None
    predicted_ctr: float | None
    ctr_ratio: float | None
    auc: float | None


def online_performance(
    warehouse: Warehouse,
    window_start: datetime,
    window_end: datetime,
    *,
    predictions_table: str = "raw.predictions",
    clicks_table: str = "raw.clicks",
    impressions_table: str = "raw.impressions",
) -> OnlinePerformance:
    """Compute the window's metrics and replace its row in ``monitoring.online_performance``.

    Only predictions of shown items count (their impression is in ``impressions_table``): the gateway scores
    every candidate, users see the top of the ranking. Before serving has logged anything (no
    ``raw.predictions`` yet) the row records zero predictions and NULL rates, so the table still shows that
    the window was checked.
    """
    window_start, window_end = naive_utc(window_start), naive_utc(window_end)
    validate_identifier(predictions_table)
    validate_identifier(clicks_table)
    validate_identifier(impressions_table)
    params = {"window_start": window_start, "window_end": window_end}
    if warehouse.table_exists(predictions_table):
        sql = render_sql(
            PERFORMANCE_SQL,
            predictions_table=predictions_table,
            clicks_table=clicks_table if warehouse.table_exists(clicks_table) else None,
            impressions_table=impressions_table if warehouse.table_exists(impressions_table) else None,
        )
        row = warehouse.read_arrow(sql, params).to_pylist()[0]
    else:
        log.warning(
            "no %s table yet: recording [%s, %s) with no predictions", predictions_table, *params.values()
        )
        row = {"impressions": 0, "predictions": 0, "clicks": 0}
    result = OnlinePerformance(
        window_start=window_start,
        window_end=window_end,
        impressions=int(row["impressions"]),
        predictions=int(row["predictions"]),
        clicks=int(row["clicks"]),
        **{name: _float(row.get(name)) for name in ("ctr", "predicted_ctr", "ctr_ratio", "auc")},
    )
    with warehouse.transaction() as conn:
        conn.ensure_table(PERFORMANCE_TABLE, PERFORMANCE_SCHEMA)
        conn.execute(render_sql(SQL_DIR / "delete_performance_window.sql", table=PERFORMANCE_TABLE), params)
        insert_rows(conn, PERFORMANCE_TABLE, PERFORMANCE_SCHEMA, [asdict(result)])
    log.info("online performance [%s, %s): %s", window_start, window_end, asdict(result))
    return result


def _float(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]
