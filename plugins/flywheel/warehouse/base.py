"""The warehouse interface every stage uses, and what its backends share."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import sqlparse

from flywheel.warehouse.templates import render_sql

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# ``:name`` binds a value; ``::type`` casts and quoted text are left alone.
_PARAM = re.compile(r"('(?:[^']|'')*')|(?<![:\w]):([A-Za-z_]\w*)")

_ARROW_TO_SQL = {
    pa.string(): "varchar",
    pa.large_string(): "varchar",
    pa.int64(): "bigint",
    pa.int32(): "integer",
    pa.float64(): "double precision",
    pa.bool_(): "boolean",
    pa.timestamp("us"): "timestamp",
    pa.date32(): "date",
}


#: How long one statement of an analyst's relation may run before the warehouse cancels it.
READER_STATEMENT_TIMEOUT_S = 600.0


class WarehouseError(RuntimeError):
    """A warehouse operation was refused or failed; the message names the input and the fix."""


class WarehouseBusy(WarehouseError):
    """Another process held the warehouse for longer than the caller was willing to wait (DuckDB's one
    writer): worth a retry later, unlike other errors."""


def validate_identifier(name: str) -> str:
    """Return ``name`` if every dotted part is a plain SQL identifier, else raise ``WarehouseError``."""
    parts = name.split(".")
    if not 1 <= len(parts) <= 2 or not all(_IDENTIFIER.match(p) for p in parts):
        raise WarehouseError(
            f"unsafe SQL identifier {name!r}: use letters, digits and underscores, optionally as schema.table"
        )
    return name


def sql_type(arrow_type: pa.DataType) -> str:
    """The SQL column type both backends use for an Arrow type."""
    try:
        return _ARROW_TO_SQL[arrow_type]
    except KeyError:
        raise WarehouseError(f"no SQL type mapped for Arrow type {arrow_type}") from None


def bind_style(sql: str, placeholder: str, escape_percent: bool = False) -> str:
    """Rewrite ``:name`` parameters into a driver's placeholder (``placeholder % name``)."""

    def repl(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1).replace("%", "%%") if escape_percent else match.group(1)
        return placeholder % match.group(2)

    if escape_percent:
        # Percent signs outside string literals must be doubled for pyformat drivers.
        pieces = re.split(r"('(?:[^']|'')*')", sql)
        sql = "".join(p if p.startswith("'") else p.replace("%", "%%") for p in pieces)
    return _PARAM.sub(repl, sql)


def used_params(sql: str, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """The subset of ``params`` that ``sql`` names, so one record can feed several statements."""
    names = {m.group(2) for m in _PARAM.finditer(sql) if m.group(2)}
    missing = names - set(params or {})
    if missing:
        raise WarehouseError(f"SQL names parameter(s) {', '.join(sorted(missing))} but none were given")
    return {k: v for k, v in (params or {}).items() if k in names}


class Connection(ABC):
    """One open connection (inside a transaction when obtained from ``Warehouse.transaction``)."""

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run one statement with ``:name`` parameters bound (never formatted into the text)."""

    @abstractmethod
    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """Run a query and return its rows as an Arrow table."""

    @abstractmethod
    def insert_arrow(self, table: str, data: pa.Table) -> None:
        """Append ``data`` to ``table``, matching columns by name."""

    def execute_script(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        """Run several ``;``-separated statements; each gets the parameters it names."""
        for statement in sqlparse.split(sql):
            statement = statement.strip().rstrip(";").strip()
            if not sqlparse.format(statement, strip_comments=True).strip():
                continue
            self.execute(statement, params)

    def ensure_table(self, table: str, schema: pa.Schema) -> None:
        """Create ``schema.table`` with columns from an Arrow schema unless it exists."""
        validate_identifier(table)
        self.execute_script(
            render_sql(
                "create_table.sql",
                table=table,
                schema_name=table.split(".")[0] if "." in table else None,
                columns=[(f.name, sql_type(f.type)) for f in schema],
            )
        )

    def replace_partition(
        self, table: str, data: pa.Table, column: str, start: datetime, end: datetime
    ) -> int:
        """Delete rows of ``table`` with ``start <= column < end`` and insert ``data`` instead."""
        validate_identifier(table)
        validate_identifier(column)
        outside = data.num_rows and _rows_outside(data, column, start, end)
        if outside:
            raise WarehouseError(
                f"{outside} row(s) for {table} have {column} outside [{start}, {end}): "
                "they would survive a rerun and duplicate; fix the input or widen the partition"
            )
        self.execute(
            render_sql("delete_partition.sql", table=table, column=column),
            {"start": start, "end": end},
        )
        if data.num_rows:
            self.insert_arrow(table, data)
        return data.num_rows


def _rows_outside(data: pa.Table, column: str, start: datetime, end: datetime) -> int:
    import pyarrow.compute as pc

    values = data.column(column)
    inside = pc.and_(
        pc.greater_equal(values, pa.scalar(start, values.type)),
        pc.less(values, pa.scalar(end, values.type)),
    )
    return data.num_rows - pc.sum(pc.fill_null(inside, False).cast(pa.int64())).as_py()


class Warehouse(ABC):
    """A warehouse reached by URL. Connections are opened per operation: no process keeps it open."""

    dialect: str

    def __init__(self, url: str) -> None:
        self.url = url

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        """A connection whose work commits on exit and rolls back on error."""

    @abstractmethod
    @contextmanager
    def reader(
        self, statement_timeout_s: float = READER_STATEMENT_TIMEOUT_S, lock_wait_s: float | None = None
    ) -> Iterator[Connection]:
        """A least-privilege connection for analysts' relations: it reads the warehouse and nothing else.

        The engine, not only a parser, refuses writes and (DuckDB) any file, URL or extension outside the
        warehouse; a statement running longer than ``statement_timeout_s`` is cancelled (PostgreSQL).
        ``lock_wait_s`` bounds the wait for the warehouse (DuckDB: for another process to release the
        file, then :class:`WarehouseBusy`; PostgreSQL: for the connection); None keeps each backend's
        default, which suits a task that must not give up early.
        """

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with self.transaction() as conn:
            conn.execute_script(sql, params)

    def run_file(self, path: str | Path, params: Mapping[str, Any] | None = None, **context: Any) -> None:
        """Render a Jinja SQL file (identifiers in ``context``) and run it with bound ``params``."""
        with self.transaction() as conn:
            conn.execute_script(render_sql(path, **context), params)

    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        with self.transaction() as conn:
            return conn.read_arrow(sql, params)

    def replace_partition(
        self, table: str, data: pa.Table, column: str, start: datetime, end: datetime
    ) -> int:
        """Atomically swap one partition of ``table`` (created from ``data``'s schema if missing)."""
        with self.transaction() as conn:
            conn.ensure_table(table, data.schema)
            return conn.replace_partition(table, data, column, start, end)

    def table_exists(self, table: str) -> bool:
        schema, _, name = validate_identifier(table).rpartition(".")
        rows = self.read_arrow(
            render_sql("table_exists.sql"), {"schema": schema or self.default_schema, "name": name}
        )
        return rows.num_rows > 0

    @property
    def default_schema(self) -> str:
        return "main" if self.dialect == "duckdb" else "public"

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
