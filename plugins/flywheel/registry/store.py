"""Where the registry keeps its state: the ``registry.*`` tables, created on first use, and the SQL templates
under ``registry/sql/`` that every statement is rendered from (values always bound, never in the text).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).with_name("sql")
TABLE = "registry.model_versions"
STATUS_CHANGES_TABLE = "registry.status_changes"
EVALUATIONS_TABLE = "registry.evaluations"
DEPLOYMENTS_TABLE = "registry.deployments"
#: The DDL, in dependency order; each file is ``create ... if not exists``, so running it twice is a no-op.
_DDL = (
    "create_model_versions.sql",
    "create_status_changes.sql",
    "create_evaluations.sql",
    "create_deployments.sql",
)


class RegistryError(RuntimeError):
    """A registry request was refused (unknown version, disallowed transition); the message says why."""


def statement(name: str, **flags: bool) -> str:
    """The SQL of ``registry/sql/<name>``; ``flags`` switch its optional clauses (booleans only)."""
    for key, value in flags.items():
        if not isinstance(value, bool):
            raise TypeError(f"{name}: flag {key}={value!r} must be a boolean; values are bound parameters")
    return render_sql(SQL_DIR / name, **flags)


def ensure_tables(conn: Any) -> None:
    """Create the registry's schema and tables unless they exist, inside the caller's transaction."""
    for name in _DDL:
        conn.execute_script(statement(name))


def utcnow() -> datetime:
    """Now, as the naive UTC timestamp the registry's columns hold."""
    return datetime.now(UTC).replace(tzinfo=None)
