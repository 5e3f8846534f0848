"""Setting a failed partition aside in ``quarantine.<suite>`` and recording each validation, atomically."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from flywheel.quality.messages import Failure
from flywheel.quality.suites import GatedTable
from flywheel.warehouse.base import Connection, Warehouse, WarehouseError, validate_identifier
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).parent / "sql"

VALIDATIONS_TABLE = "quarantine.validations"
VALIDATIONS_SCHEMA = pa.schema(
    [
        ("run_id", pa.string()),
        ("suite", pa.string()),
        ("table_name", pa.string()),
        ("interval_start", pa.timestamp("us")),
        ("interval_end", pa.timestamp("us")),
        ("success", pa.bool_()),
        ("row_count", pa.int64()),
        ("rows_quarantined", pa.int64()),
        ("failed_expectations", pa.string()),  # JSON list of {expectation, column, observed, message}
        ("validated_at", pa.timestamp("us")),
    ]
)


def record_validation(
    warehouse: Warehouse,
    gated: GatedTable,
    start: datetime,
    end: datetime,
    *,
    run_id: str,
    success: bool,
    row_count: int | None,
    failures: list[Failure],
    set_aside: bool,
) -> int:
    """Record the outcome; with ``set_aside`` also quarantine the partition. Return the rows quarantined.

    Raw partitions are moved (copied, then deleted from ``raw.*``), mart partitions only copied. The copy
    replaces any earlier quarantine copy of the same interval, and an empty partition (already moved by an
    earlier run) replaces nothing, so re-running a gate never doubles or loses quarantined rows.
    """
    now = datetime.now(UTC).replace(tzinfo=None)
    with warehouse.transaction() as conn:
        moved = _set_aside(conn, gated, start, end, run_id, now) if set_aside else 0
        conn.ensure_table(VALIDATIONS_TABLE, VALIDATIONS_SCHEMA)
        key = {"run_id": run_id, "suite": gated.suite, "interval_start": start, "interval_end": end}
        conn.execute(render_sql(SQL_DIR / "delete_validation.sql", table=VALIDATIONS_TABLE), key)
        record = {
            **key,
            "table_name": gated.table,
            "success": success,
            "row_count": row_count,
            "rows_quarantined": moved,
            "failed_expectations": json.dumps([f.as_record() for f in failures]),
            "validated_at": now,
        }
        conn.insert_arrow(VALIDATIONS_TABLE, pa.Table.from_pylist([record], schema=VALIDATIONS_SCHEMA))
    return moved


def _set_aside(
    conn: Connection,
    gated: GatedTable,
    start: datetime,
    end: datetime,
    run_id: str,
    now: datetime,
) -> int:
    table, column = gated.table, gated.partition_column
    bounds = {"start": start, "end": end}
    count = conn.read_arrow(
        render_sql(SQL_DIR / "count_partition.sql", table=table, column=column), bounds
    ).to_pylist()[0]["row_count"]
    if not count:
        return 0
    conn.execute_script(
        render_sql(
            SQL_DIR / "create_quarantine_table.sql", table=table, quarantine_table=gated.quarantine_table
        )
    )
    schema, _, name = table.partition(".")
    columns = [
        validate_identifier(row["column_name"])
        for row in conn.read_arrow(
            render_sql(SQL_DIR / "table_columns.sql"), {"schema": schema, "name": name}
        ).to_pylist()
    ]
    if not columns:
        raise WarehouseError(f"{table} has no columns in information_schema; cannot quarantine it")
    conn.execute_script(
        render_sql(
            SQL_DIR / "quarantine_partition.sql",
            table=table,
            quarantine_table=gated.quarantine_table,
            column=column,
            columns=columns,
        ),
        {**bounds, "run_id": run_id, "quarantined_at": now},
    )
    if gated.on_failure == "move":  # raw rows leave the table dbt reads, in the same transaction
        conn.execute(render_sql("delete_partition.sql", table=table, column=column), bounds)
    return int(count)
