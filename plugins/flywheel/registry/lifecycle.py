"""The lifecycle of a model version: guarded status changes recorded in ``registry.status_changes``, one
champion at a time, and which model is in service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flywheel.registry.store import TABLE, RegistryError, ensure_tables, statement, utcnow
from flywheel.registry.versions import (
    TRANSITIONS,
    ModelVersion,
    check_status,
    latest,
    read_versions,
    require_version,
)
from flywheel.warehouse import Warehouse, open_warehouse


@dataclass(frozen=True)
class StatusChange:
    """One move of a version; ``from_status`` is ``None`` for its registration."""

    version: str
    seq: int
    from_status: str | None
    to_status: str
    reason: str | None
    run_id: str | None
    changed_at: datetime


def _history(conn: Any, version: str) -> list[StatusChange]:
    rows = conn.read_arrow(statement("select_status_changes.sql"), {"version": version}).to_pylist()
    return [StatusChange(**row) for row in rows]


def _promotions(conn: Any, version: str | None = None) -> int:
    sql = statement("count_promotions.sql", by_version=version is not None)
    return int(conn.read_arrow(sql, {"version": version}).to_pylist()[0]["promotions"])


def _move(conn: Any, model: ModelVersion, status: str, reason: str | None, run_id: str | None) -> None:
    now = utcnow()
    conn.execute(statement("update_status.sql"), {"version": model.version, "status": status, "now": now})
    conn.execute(
        statement("insert_status_change.sql"),
        {
            "version": model.version,
            "from_status": model.status,
            "to_status": status,
            "reason": reason,
            "run_id": run_id,
            "now": now,
        },
    )


def _refuse_restoring_a_stranger(conn: Any, model: ModelVersion) -> None:
    # archived -> champion is how a rollback restores the champion before; a model archived after being
    # rejected or never promoted must go through evaluation and a canary instead.
    history = _history(conn, model.version)
    if history and not _promotions(conn, model.version):
        path = " -> ".join(change.to_status for change in history)
        raise RegistryError(
            f"cannot move {model.version} from archived to champion: only a former champion may be restored "
            f"from the archive, and {model.version} never was one ({path}); a model that never led reaches "
            "champion only as a new candidate, through blessed and canary"
        )


def set_status(
    version: str,
    status: str,
    warehouse: Warehouse | None = None,
    *,
    reason: str | None = None,
    run_id: str | None = None,
) -> ModelVersion:
    """Move ``version`` to ``status`` if ``TRANSITIONS`` allows it; the same status again is a no-op.

    Each move is recorded in ``registry.status_changes`` with ``reason`` and ``run_id``. Promoting a
    champion archives the previous one in the same transaction: there is one champion at a time.
    """
    check_status(status)
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        model = require_version(conn, version)
        current = model.status
        if current == status:
            return model
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(TRANSITIONS[current]) or "nothing"
            raise RegistryError(
                f"cannot move {version} from {current} to {status}: "
                f"from {current} it may only become {allowed}"
            )
        if current == "archived" and status == "champion":
            _refuse_restoring_a_stranger(conn, model)
        if status == "champion":
            for champion in read_versions(conn, {"status": "champion"}, by_status=True):
                if champion.version != version:
                    _move(conn, champion, "archived", f"superseded by {version}", run_id)
        _move(conn, model, status, reason, run_id)
        return require_version(conn, version)


def history(version: str, warehouse: Warehouse | None = None) -> list[StatusChange]:
    """Every status change of ``version``, its registration first; ``RegistryError`` if it is unknown."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        require_version(conn, version)
        return _history(conn, version)


def in_service(warehouse: Warehouse | None = None) -> ModelVersion | None:
    """The model in service: the champion.

    Until any model has been promoted (the loop running before serving exists), the newest blessed model;
    with none blessed yet, the newest candidate still in the running (evaluation not run or not finished):
    never a rejected, rolled-back or archived one. Once a promotion has happened, only a champion is in
    service: ``None`` while a rollback left none. ``None`` as well before anything is registered; nothing
    is created on the way.
    """
    warehouse = warehouse or open_warehouse()
    if not warehouse.table_exists(TABLE):
        return None
    champion = latest("champion", warehouse=warehouse)
    if champion is not None:
        return champion
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        if _promotions(conn):
            return None
        blessed = read_versions(conn, {"status": "blessed", "limit": 1}, **_NEWEST_BLESSED)
        if blessed:
            return blessed[0]
        rows = read_versions(conn, {"limit": 1}, in_running=True, newest_first=True, limited=True)
        return rows[0] if rows else None


def baseline_for(version: str, warehouse: Warehouse | None = None) -> ModelVersion | None:
    """The model a candidate is judged against: the champion; before any promotion, the newest blessed
    version registered before it (what would be in service without it). ``None`` when there is neither:
    the first model is judged on absolute thresholds. ``RegistryError`` if ``version`` is unknown."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        model = require_version(conn, version)
        champions = read_versions(conn, {"status": "champion"}, by_status=True)
        if champions:
            return champions[0] if champions[0].version != model.version else None
        if _promotions(conn):
            return None
        blessed = read_versions(conn, {"status": "blessed"}, by_status=True, newest_first=True)
        older = [b for b in blessed if b.ordinal < model.ordinal]
        return older[0] if older else None


_NEWEST_BLESSED = {"by_status": True, "newest_first": True, "limited": True}
