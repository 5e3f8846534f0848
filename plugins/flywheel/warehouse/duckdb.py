"""DuckDB backend: the embedded default, one file that one process may write at a time."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from flywheel.warehouse.base import (
    READER_STATEMENT_TIMEOUT_S,
    Connection,
    Warehouse,
    WarehouseBusy,
    WarehouseError,
    bind_style,
    used_params,
    validate_identifier,
)
from flywheel.warehouse.templates import render_sql

#: How long to wait for another process to release the file before giving up.
LOCK_WAIT_SECONDS = 60.0
#: An analyst's connection: the warehouse file only (no read_csv, glob, ATTACH, COPY, extensions), its
#: settings locked so a query cannot lift that. It may still spill to the warehouse's temporary folder.
READER_CONFIG = {"enable_external_access": False, "lock_configuration": True}


class DuckDBConnection(Connection):
    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._con.execute(bind_style(sql, "$%s"), used_params(sql, params))

    def read_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        # ``sql()`` hands Arrow the result directly; the DB-API cursor path would copy every row.
        relation = self._con.sql(bind_style(sql, "$%s"), params=used_params(sql, params) or None)
        return relation.to_arrow_table() if relation is not None else pa.table({})

    def insert_arrow(self, table: str, data: pa.Table) -> None:
        validate_identifier(table)
        columns = [validate_identifier(name) for name in data.column_names]
        sql = render_sql(
            "insert_registered.sql", table=table, column_names=columns, registered="_flywheel_incoming"
        )
        self._con.register("_flywheel_incoming", data)
        try:
            self._con.execute(sql)
        finally:
            self._con.unregister("_flywheel_incoming")


class DuckDBWarehouse(Warehouse):
    dialect = "duckdb"

    def __init__(self, url: str) -> None:
        super().__init__(url)
        path = url.split(":///", 1)[1] if ":///" in url else ""
        if not path:
            raise WarehouseError(f"DuckDB URL {url!r} names no file: use duckdb:///absolute/path.duckdb")
        self.path = path
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)

    def _connect(self, reader: bool = False, lock_wait_s: float | None = None) -> duckdb.DuckDBPyConnection:
        # Another process (a task, the CLI) may hold the file; DuckDB refuses rather than waits.
        deadline = time.monotonic() + (LOCK_WAIT_SECONDS if lock_wait_s is None else lock_wait_s)
        while True:
            try:
                if reader:
                    read_only = self.path != ":memory:"  # an in-memory database cannot be opened read-only
                    return duckdb.connect(self.path, read_only=read_only, config=dict(READER_CONFIG))
                return duckdb.connect(self.path)
            except duckdb.IOException as exc:
                locked = "lock" in str(exc).lower()
                if not locked or time.monotonic() > deadline:
                    # Busy is the lock held past the deadline: a caller may retry later (WarehouseError else).
                    error = WarehouseBusy if locked else WarehouseError
                    raise error(
                        f"cannot open the DuckDB warehouse {self.path}: {exc}. Another process holds it; "
                        "warehouse tasks share the Airflow pool 'warehouse' (1 slot) to avoid this"
                    ) from exc
                time.sleep(0.2)

    @contextmanager
    def transaction(self) -> Iterator[Connection]:
        con = self._connect()
        try:
            con.begin()
            try:
                yield DuckDBConnection(con)
            except BaseException:
                con.rollback()
                raise
            con.commit()
        finally:
            con.close()

    @contextmanager
    def reader(
        self, statement_timeout_s: float = READER_STATEMENT_TIMEOUT_S, lock_wait_s: float | None = None
    ) -> Iterator[Connection]:
        """A read-only connection without external access; DuckDB has no statement timeout to set.

        While it is open no other process can write the file: keep it short. ``lock_wait_s`` (default
        :data:`LOCK_WAIT_SECONDS`) bounds the wait for a writer to let go, then :class:`WarehouseBusy`.
        """
        con = self._connect(reader=True, lock_wait_s=lock_wait_s)
        try:
            yield DuckDBConnection(con)
        finally:
            con.close()
