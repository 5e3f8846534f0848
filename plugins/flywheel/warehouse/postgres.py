"""PostgreSQL backend: the same interface over psycopg2, bulk loads through ``COPY``."""

from __future__ import annotations

import io
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pyarrow as pa
import pyarrow.csv as pacsv

from flywheel.warehouse.base import (
    READER_STATEMENT_TIMEOUT_S,
    Connection,
    Warehouse,
    bind_style,
    used_params,
    validate_identifier,
)
from flywheel.warehouse.templates import render_sql


def _dsn(url: str) -> str:
    # SQLAlchemy-style URLs (postgresql+psycopg2://) are accepted too.
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest


class PostgresConnection(Connection):
    def __init__(self, con: Any) -> None:
        self._con = con

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        with self._con.cursor() as cur:
            cur.execute(bind_style(sql, "%%(%s)s", escape_percent=True), used_params(sql, params))

    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        with self._con.cursor() as cur:
            cur.execute(bind_style(sql, "%%(%s)s", escape_percent=True), used_params(sql, params))
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        columns = list(zip(*rows, strict=True)) if rows else [[] for _ in names]
        return pa.table({name: pa.array(list(col)) for name, col in zip(names, columns, strict=True)})

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        validate_identifier(table)
        columns = [validate_identifier(name) for name in data.column_names]
        sql = render_sql("copy_from_stdin.sql", table=table, column_names=columns)
        buffer = io.BytesIO()
        # Quote every value so NULL (unquoted empty) and '' (quoted empty) stay distinct.
        pacsv.write_csv(data, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
        buffer.seek(0)
        with self._con.cursor() as cur:
            cur.copy_expert(sql, buffer)


class PostgresWarehouse(Warehouse):
    dialect = "postgres"

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        import psycopg2

        con = psycopg2.connect(_dsn(self.url))
        try:
            with con:  # commits on success, rolls back on error
                yield PostgresConnection(con)
        finally:
            con.close()

    @contextmanager
    def reader(
        self, statement_timeout_s: float = READER_STATEMENT_TIMEOUT_S, lock_wait_s: float | None = None
    ) -> Iterator[Connection]:
        """A read-only transaction whose statements are cancelled after ``statement_timeout_s``.

        Readers never block writers here (MVCC); ``lock_wait_s`` bounds the wait for the connection
        (libpq's ``connect_timeout``, whole seconds, at least 2), and a read waiting on a lock counts
        towards ``statement_timeout_s``.
        """
        import psycopg2

        waiting = {} if lock_wait_s is None else {"connect_timeout": max(2, math.ceil(lock_wait_s))}
        con = psycopg2.connect(_dsn(self.url), **waiting)
        try:
            # The server enforces both for the whole transaction; set_config(..., true) is transaction-local.
            con.set_session(readonly=True)
            with con:
                connection = PostgresConnection(con)
                timeout = f"{max(1, round(statement_timeout_s * 1000))}ms"
                # A read: set_config returns the value it set (and the connection writes nothing).
                connection.read_arrow(render_sql("set_statement_timeout.sql"), {"timeout": timeout})
                yield connection
        finally:
            con.close()
