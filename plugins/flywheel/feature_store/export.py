"""Export the feature marts from the warehouse to the Parquet files Feast's offline store reads.

Feast never opens the warehouse (a DuckDB file admits one process): rows are read through the warehouse
API, the connection is closed, and Feast reads one Parquet file per day of ``feature_ts``.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel.feature_store.settings import FeatureStoreError
from flywheel.warehouse import open_warehouse, validate_identifier
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).resolve().parent / "sql"
TRAINING_TABLE = "marts.training_examples"
#: The tag on a feature view naming the mart it is exported from.
TABLE_TAG = "warehouse_table"

_ARROW_TYPES = {"Int64": pa.int64(), "Int32": pa.int32(), "Float64": pa.float64(), "String": pa.string()}
_DAY = timedelta(days=1)


def view_schema(view: Any) -> pa.Schema:
    """The Arrow schema of a feature view's export: join keys, the timestamp, then the features."""
    fields = [*view.entity_columns, *view.features]
    try:
        columns = [(f.name, _ARROW_TYPES[str(f.dtype)]) for f in fields]
    except KeyError as exc:
        raise FeatureStoreError(f"feature view {view.name}: no Arrow type for Feast type {exc}") from None
    columns.insert(len(view.entity_columns), (view.batch_source.timestamp_field, pa.timestamp("us")))
    return pa.schema(columns)


def day_files(data_dir: Path, view_name: str) -> Path:
    """The folder of one view's daily Parquet files (the ``*.parquet`` glob in the definitions)."""
    return data_dir / view_name


def export_views(
    views: list[Any], warehouse_url: str, start: datetime, end: datetime, data_dir: Path
) -> dict[str, pa.Table]:
    """Rewrite every day file touching ``[start, end)`` for each view; return the rows read per view.

    Whole days are exported so that every file is complete whichever window wrote it last, and a
    rerun (or a concurrent reader) sees the same rows: each file is replaced atomically.
    """
    day_start = start.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end = end.replace(hour=0, minute=0, second=0, microsecond=0)
    day_end += _DAY if day_end < end else timedelta(0)
    warehouse = open_warehouse(warehouse_url)
    tables = {view.name: _mart_table(view) for view in views}
    missing = [table for table in tables.values() if not warehouse.table_exists(table)]
    if missing:
        raise FeatureStoreError(
            f"{', '.join(missing)} not found in the warehouse {warehouse_url}: build the marts first "
            "(the dbt step of build_features), then apply and materialize"
        )
    exported = {}
    with warehouse.transaction() as conn:  # one short connection for all reads, closed before Feast runs
        for view in views:
            schema = view_schema(view)
            sql = render_sql(
                SQL_DIR / "feature_rows.sql",
                table=tables[view.name],
                columns=[validate_identifier(name) for name in schema.names],
                timestamp_column=view.batch_source.timestamp_field,
            )
            rows = conn.read_arrow(sql, {"start": day_start, "end": day_end})
            exported[view.name] = _conform(rows, schema, tables[view.name])
    for view in views:
        _write_days(
            exported[view.name],
            view.batch_source.timestamp_field,
            day_start,
            day_end,
            day_files(data_dir, view.name),
        )
    return exported


def read_training_entities(warehouse_url: str, start: datetime, end: datetime) -> pa.Table:
    """Labels and keys of the impressions with ``event_ts`` in ``[start, end)``, from the training mart."""
    warehouse = open_warehouse(warehouse_url)
    if not warehouse.table_exists(TRAINING_TABLE):
        raise FeatureStoreError(
            f"{TRAINING_TABLE} not found in the warehouse {warehouse_url}: build the marts first "
            "(the dbt step of build_features)"
        )
    return warehouse.read_arrow(render_sql(SQL_DIR / "training_entities.sql"), {"start": start, "end": end})


def _mart_table(view: Any) -> str:
    table = view.tags.get(TABLE_TAG)
    if not table:
        raise FeatureStoreError(
            f"feature view {view.name} has no {TABLE_TAG!r} tag: say which mart it is exported from "
            "in plugins/flywheel/feature_store/repo/definitions.py"
        )
    return validate_identifier(table)


def _conform(rows: pa.Table, schema: pa.Schema, table: str) -> pa.Table:
    # Backends differ (PostgreSQL numerics, typeless empty results); the file schema must not.
    try:
        return pa.Table.from_arrays([rows.column(f.name).cast(f.type) for f in schema], schema=schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise FeatureStoreError(
            f"{table} does not match its feature view ({schema}): {exc}; fix the mart or the definitions"
        ) from exc


def _write_days(rows: pa.Table, timestamp_column: str, start: datetime, end: datetime, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    ts = rows.column(timestamp_column)
    day = start
    while day < end:
        inside = pc.and_(
            pc.greater_equal(ts, pa.scalar(day, ts.type)), pc.less(ts, pa.scalar(day + _DAY, ts.type))
        )
        # An empty day still gets its file: it replaces stale rows, and DuckDB needs the glob to match.
        _write_atomic(rows.filter(inside), folder / f"{day:%Y-%m-%d}.parquet")
        day += _DAY


def _write_atomic(table: pa.Table, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".partial")
    os.close(fd)
    pq.write_table(table, tmp)
    os.replace(tmp, path)
