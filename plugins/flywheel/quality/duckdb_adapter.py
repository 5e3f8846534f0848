"""A DuckDB SQLAlchemy dialect whose query results outlive the connection, so GX reads correct rows.

Why it exists: Great Expectations' ``SqlAlchemyExecutionEngine.execute_query`` runs a query inside
``with self.get_connection()`` and returns the *unread* ``CursorResult``; its callers
(``resolve_metric_bundle`` and the metric providers) call ``.fetchall()`` after the ``with`` block has
closed the connection, and closing rolls its transaction back. psycopg2 buffers rows client-side at
execute, so PostgreSQL is unaffected; but ``duckdb_engine``'s ``CursorWrapper`` is not a cursor of its own:
it forwards to the one ``DuckDBPyConnection``, whose pending result the ``ROLLBACK`` replaces. GX then
reads the rollback's empty result (``[]``): ``resolve_metric_bundle`` fails with ``IndexError: list index
out of range`` and every expectation "fails" on good and bad data alike, without an observed value.

The fix is where the contract breaks: this dialect fetches a query's rows when it executes (SQLAlchemy's
``FullyBufferedCursorFetchStrategy``, the same strategy its MSSQL dialect uses for results delivered after
the conversation ends), exactly what psycopg2 does. GX's queries return aggregates and capped samples of
unexpected values, so buffering costs nothing; the data itself never leaves the warehouse.
"""

from __future__ import annotations

import duckdb_engine
from sqlalchemy.dialects import registry
from sqlalchemy.engine import cursor as sa_cursor

#: The ``drivername`` of connection strings that use this dialect: ``duckdb+flywheel:///path.duckdb``.
DRIVERNAME = "duckdb+flywheel"


class BufferedExecutionContext(duckdb_engine.Dialect.execution_ctx_cls):  # type: ignore[misc, name-defined]
    """Fetch every row of a result as the statement executes, before anything can roll the connection back."""

    def post_exec(self) -> None:
        super().post_exec()
        if self.cursor.description is not None and self.cursor_fetch_strategy is sa_cursor._DEFAULT_FETCH:
            self.cursor_fetch_strategy = sa_cursor.FullyBufferedCursorFetchStrategy(
                self.cursor, self.cursor.description
            )


class BufferedDuckDBDialect(duckdb_engine.Dialect):
    """``duckdb_engine``'s dialect (name ``duckdb``, so GX treats it the same) with buffered results."""

    execution_ctx_cls = BufferedExecutionContext
    supports_statement_cache = False


def register() -> None:
    """Make ``duckdb+flywheel://`` URLs resolve to ``BufferedDuckDBDialect``; safe to call repeatedly."""
    registry.register("duckdb.flywheel", __name__, "BufferedDuckDBDialect")


def gx_connection_string(warehouse_url: str) -> str:
    """The SQLAlchemy URL GX should use for a ``duckdb:///path`` warehouse URL (registering the dialect)."""
    register()
    scheme, sep, rest = warehouse_url.partition(":")
    if scheme.split("+", 1)[0].lower() != "duckdb" or not sep:
        raise ValueError(f"not a DuckDB warehouse URL: {warehouse_url!r}")
    return DRIVERNAME + ":" + rest
