"""What monitoring reads from: a table name or one read-only ``select``, checked before anything runs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.warehouse import Warehouse, WarehouseError, validate_identifier
from flywheel.warehouse.base import Connection
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).parent / "sql"
PROBE_SQL = SQL_DIR / "relation_probe.sql"
WINDOW_SQL = SQL_DIR / "relation_window.sql"

_FEATURE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_QUERY_START = re.compile(r"^\s*(\(|select\b|with\b)", re.IGNORECASE)

#: Words (and functions) that make a query more than a read: a data-changing CTE, ``select ... into``,
#: sequence bumps. A column really called one of these must be quoted.
_WRITE_KEYWORDS = frozenset(
    """alter attach call checkpoint copy create delete detach drop export grant import insert install
    into merge nextval pragma revoke set_config setval truncate update upsert vacuum""".split()
)
#: PostgreSQL functions that read the server's files or reach other servers, which a read-only transaction
#: still allows to a privileged role (DuckDB's file readers are refused by the engine itself).
_SERVER_FILE_FUNCTIONS = frozenset(
    "dblink dblink_exec lo_export lo_import pg_ls_dir pg_read_binary_file pg_read_file pg_stat_file".split()
)


#: Database errors whose first line names only identifiers, files or limits, never a row's values: DuckDB
#: exception classes, and PostgreSQL SQLSTATEs by prefix (42 syntax and names, 57014 a cancelled
#: statement, 25006 a write in a read-only transaction, 3F schema, 53 resources, 54 limits, 0A unsupported).
_SAFE_DUCKDB_ERRORS = frozenset(
    """BinderException CatalogException InterruptException OutOfMemoryException ParserException
    PermissionException""".split()
)
_SAFE_SQLSTATES = ("42", "57014", "25006", "3F", "53", "54", "0A")
_WITHHELD = "the database's message is withheld as it may quote row values: run the query yourself to see it"


class RelationError(WarehouseError):
    """A relation, feature or query was refused before anything ran; the message says what to change."""


class RelationFailed(WarehouseError):
    """An analyst's relation failed in the warehouse (a timeout, a refused file, a bad value); the message
    names the relation and the error, and never quotes row values."""


def safe_message(exc: BaseException) -> str:
    """The first line of a database error if its kind names only identifiers, else only its kind: an error
    such as "could not convert 'secret' to DOUBLE" quotes the data an analyst's query touched."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    sqlstate = getattr(exc, "pgcode", None)
    if sqlstate:
        if first and sqlstate.startswith(_SAFE_SQLSTATES):
            return first
        return f"SQLSTATE {sqlstate} ({type(exc).__name__}); {_WITHHELD}"
    if first and type(exc).__name__ in _SAFE_DUCKDB_ERRORS:
        return first
    return f"{type(exc).__name__}; {_WITHHELD}"


@contextmanager
def reading(*relations: Relation) -> Iterator[None]:
    """Turn a database error raised while reading ``relations`` into ``RelationFailed`` (safe message)."""
    try:
        yield
    except WarehouseError:
        raise
    except Exception as exc:  # each driver raises its own types; what matters is what may be shown
        names = " and ".join(str(r) for r in relations)
        raise RelationFailed(f"reading {names} failed: {safe_message(exc)}") from None


@dataclass(frozen=True)
class Relation:
    """A source of rows: ``sql`` is what goes after ``from`` (a table name, or the query in parentheses).

    ``params`` are the values ``sql`` binds (a window's bounds): every statement that reads the relation
    passes them along. ``window`` only says, in messages, which rows those are.
    """

    text: str
    sql: str
    is_query: bool
    params: Mapping[str, Any] = field(default_factory=dict, hash=False)
    window: str | None = None

    def __str__(self) -> str:
        if not self.is_query:
            name = f"table {self.text}"
        else:
            text = " ".join(self.text.split())
            name = f"query ({text[:57]}...)" if len(text) > 60 else f"query ({text})"
        return f"{name}, {self.window}" if self.window else name


def within_window(
    relation: Relation, timestamp_column: str, start: datetime, end: datetime, role: str = "relation"
) -> Relation:
    """The rows of ``relation`` with ``start <= timestamp_column < end``, the bounds bound as
    ``:<role>_start`` and ``:<role>_end`` (never written into the SQL)."""
    (column,) = validate_features([timestamp_column], "timestamp column")
    validate_identifier(role)
    if end <= start:
        raise RelationError(f"{role} window end {end} must be after its start {start}")
    sql = render_sql(WINDOW_SQL, relation=relation, timestamp_column=column, role=role)
    return Relation(
        text=relation.text,
        sql="(\n" + sql.strip() + "\n)",
        is_query=relation.is_query,
        params={**relation.params, f"{role}_start": start, f"{role}_end": end},
        window=f"{column} in [{start}, {end})",
    )


def parse_relation(text: str, dialect: str = "duckdb", role: str = "relation") -> Relation:
    """A table name (``schema.table``) or one read-only ``select``/``with`` query, else ``RelationError``."""
    text = text.strip()
    if not text:
        raise RelationError(f"{role} is empty: give a table name such as raw.impressions or a select query")
    if not _QUERY_START.match(text):
        if re.search(r"\s", text):
            raise RelationError(
                f"{role} {text!r} is neither a table name nor a select query: give schema.table, or a "
                "single read-only select (or with ... select)"
            )
        try:
            validate_identifier(text)
        except WarehouseError as exc:
            raise RelationError(f"{role}: {exc}") from None
        return Relation(text=text, sql=text, is_query=False)
    _check_read_only_select(text, dialect, role)
    # The newline before ")" ends a trailing "-- comment" in the analyst's query.
    return Relation(text=text, sql=f"(\n{text}\n)", is_query=True)


def _check_read_only_select(text: str, dialect: str, role: str) -> None:
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    read = "postgres" if dialect == "postgres" else "duckdb"
    try:
        tokens = sqlglot.tokenize(text, read=read)
        statements = [s for s in sqlglot.parse(text, read=read) if s is not None]
    except SqlglotError as exc:
        first = str(exc).splitlines()[0]
        raise RelationError(f"{role} query does not parse as {read} SQL: {first}") from None
    if any(t.token_type.name == "SEMICOLON" for t in tokens):
        raise RelationError(f"{role} query contains ';': give exactly one select statement, without ';'")
    if len(statements) != 1:
        raise RelationError(f"{role} must be exactly one select statement, got {len(statements)}")
    statement = statements[0]
    if not isinstance(statement, exp.Query):
        raise RelationError(
            f"{role} is a {statement.key.upper()} statement, not a select: only read-only select queries "
            "are accepted"
        )
    for token in tokens:
        if token.token_type.name not in ("STRING", "IDENTIFIER") and token.text.lower() in _WRITE_KEYWORDS:
            raise RelationError(
                f"{role} query uses {token.text.upper()!r}, which writes or changes state: only read-only "
                "select queries are accepted (quote a column of that name)"
            )
    for token in tokens:
        if (
            token.token_type.name not in ("STRING", "IDENTIFIER")
            and token.text.lower() in _SERVER_FILE_FUNCTIONS
        ):
            raise RelationError(
                f"{role} query calls {token.text.lower()}(), which reads the server's files or another "
                "server: read tables of the warehouse only"
            )
    if any(isinstance(node, exp.Placeholder) for node in statement.walk()):
        raise RelationError(f"{role} query has a placeholder (?, :name, $1): write the values into the query")


def validate_features(names: Iterable[str], role: str = "feature") -> list[str]:
    """Feature (column) names, each a plain identifier, without duplicates, in the given order."""
    seen: list[str] = []
    for name in names:
        name = name.strip()
        if not _FEATURE.match(name):
            raise RelationError(
                f"unsafe {role} name {name!r}: a column name of letters, digits and underscores is expected"
            )
        if name not in seen:
            seen.append(name)
    return seen


def relation_columns(source: Warehouse | Connection, relation: Relation) -> list[str]:
    """The relation's column names, from a ``limit 0`` probe (reads no rows, changes nothing)."""
    try:
        probe = source.read_arrow(render_sql(PROBE_SQL, relation=relation, rows=False), relation.params)
    except WarehouseError:
        raise
    except Exception as exc:  # each driver raises its own types; the message is what matters
        raise RelationError(f"cannot read {relation}: {safe_message(exc)}") from None
    return list(probe.column_names)


def check_columns(columns: Sequence[str], wanted: Sequence[str], relation: Relation) -> None:
    """Refuse features that are not columns of the relation, naming the ones that are."""
    unknown = [name for name in wanted if name not in columns]
    if unknown:
        raise RelationError(
            f"unknown column(s) {', '.join(unknown)} in {relation}; its columns are: {', '.join(columns)}"
        )


def relation_is_empty(source: Warehouse | Connection, relation: Relation) -> bool:
    """Whether the relation has no rows (reads at most one)."""
    with reading(relation):
        rows = source.read_arrow(render_sql(PROBE_SQL, relation=relation, rows=True), relation.params)
    return rows.num_rows == 0
