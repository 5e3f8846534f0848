"""Writing the few rows a monitoring run produces, as bound values (no Arrow ingestion, no pandas import)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.monitoring.relations import validate_features
from flywheel.warehouse import validate_identifier
from flywheel.warehouse.base import Connection
from flywheel.warehouse.templates import render_sql

INSERT_ROW_SQL = Path(__file__).parent / "sql" / "insert_row.sql"


def insert_rows(conn: Connection, table: str, schema: pa.Schema, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert ``rows`` (dicts keyed by the schema's column names) one statement each; returns the count.

    Meant for tens of rows: DuckDB's Arrow ingestion imports pandas, which would double the hourly drift
    check's memory; bulk data belongs in ``Connection.insert_arrow``.
    """
    validate_identifier(table)
    columns = validate_features(schema.names, "column")
    sql = render_sql(INSERT_ROW_SQL, table=table, columns=columns)
    count = 0
    for row in rows:
        conn.execute(sql, {name: row.get(name) for name in columns})
        count += 1
    return count
