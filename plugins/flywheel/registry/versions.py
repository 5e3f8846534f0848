"""The model registry (``registry.model_versions``): versions ``v0001, v0002, ...`` with their data version,
params, metrics, artifact and a status that moves only along allowed transitions.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.warehouse import Warehouse, open_warehouse
from flywheel.warehouse.templates import render_sql

TABLE = "registry.model_versions"
DDL = Path(__file__).with_name("sql") / "create_model_versions.sql"
STATUSES = ("candidate", "champion", "rejected", "rolled_back", "archived")
#: Where each status may go. A champion is archived when another is promoted; a rollback restores an
#: archived former champion; ``archived`` is otherwise final.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("champion", "rejected", "rolled_back", "archived"),
    "champion": ("rolled_back", "archived"),
    "rejected": ("archived",),
    "rolled_back": ("archived",),
    "archived": ("champion",),
}
_COLUMNS = (
    "version, ordinal, parent_version, data_version, window_start, window_end, params, metrics, "
    "artifact_uri, status, run_id, created_at, updated_at"
)
_INSERT_ATTEMPTS = 3


class RegistryError(RuntimeError):
    """A registry request was refused (unknown version, disallowed transition); the message says why."""


@dataclass(frozen=True)
class ModelVersion:
    version: str
    ordinal: int
    parent_version: str | None
    data_version: str
    #: The training window ``[window_start, window_end)``: monitoring profiles it as the drift reference.
    window_start: datetime | None
    window_end: datetime | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    artifact_uri: str
    status: str
    run_id: str | None
    created_at: datetime
    updated_at: datetime


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _ensure(conn: Any) -> None:
    conn.execute_script(render_sql(DDL))


def _rows(
    conn: Any, where: str = "", params: dict[str, Any] | None = None, tail: str = ""
) -> list[ModelVersion]:
    table = conn.read_arrow(f"select {_COLUMNS} from {TABLE} {where} {tail}", params or {})
    return [
        ModelVersion(**{**row, "params": json.loads(row["params"]), "metrics": json.loads(row["metrics"])})
        for row in table.to_pylist()
    ]


def register_candidate(
    *,
    data_version: str,
    artifact_uri: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    parent_version: str | None = None,
    run_id: str | None = None,
    window: tuple[datetime, datetime] | None = None,
    warehouse: Warehouse | None = None,
) -> str:
    """Record a trained model as a ``candidate`` and return its version.

    Idempotent on ``(data_version, artifact_uri)``: a retried task gets the version it registered before.
    The parent defaults to the champion at registration time (the model this one challenges).
    """
    warehouse = warehouse or open_warehouse()
    for attempt in range(_INSERT_ATTEMPTS):
        try:
            with warehouse.transaction() as conn:
                _ensure(conn)
                same = _rows(
                    conn,
                    "where data_version = :d and artifact_uri = :a",
                    {"d": data_version, "a": artifact_uri},
                )
                if same:
                    return same[0].version
                if parent_version is None:
                    champions = _rows(conn, "where status = 'champion'", tail="order by ordinal desc limit 1")
                    parent_version = champions[0].version if champions else None
                top = conn.read_arrow(f"select coalesce(max(ordinal), 0) as n from {TABLE}").to_pylist()[0][
                    "n"
                ]
                ordinal = int(top) + 1
                version = f"v{ordinal:04d}"
                now = _now()
                conn.execute(
                    f"insert into {TABLE} ({_COLUMNS}) values (:version, :ordinal, :parent_version, "
                    ":data_version, :window_start, :window_end, :params, :metrics, :artifact_uri, "
                    "'candidate', :run_id, :now, :now)",
                    {
                        "version": version,
                        "ordinal": ordinal,
                        "parent_version": parent_version,
                        "data_version": data_version,
                        "window_start": window[0] if window else None,
                        "window_end": window[1] if window else None,
                        "params": json.dumps(params, sort_keys=True, default=str),
                        "metrics": json.dumps(metrics, sort_keys=True, default=str),
                        "artifact_uri": artifact_uri,
                        "run_id": run_id,
                        "now": now,
                    },
                )
                return version
        except Exception as exc:
            # Two registrations at once (PostgreSQL) can race for the next ordinal: try again.
            text = str(exc).lower()
            if attempt + 1 == _INSERT_ATTEMPTS or not any(
                w in text for w in ("unique", "duplicate", "constraint")
            ):
                raise
    raise AssertionError("unreachable")


def get_version(version: str, warehouse: Warehouse | None = None) -> ModelVersion:
    """One version, or ``RegistryError`` naming the versions that exist."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        _ensure(conn)
        rows = _rows(conn, "where version = :v", {"v": version})
        if not rows:
            known = [r.version for r in _rows(conn, tail="order by ordinal desc limit 5")]
            raise RegistryError(
                f"no model version {version!r} in {TABLE}; "
                f"latest are {', '.join(known) or 'none (the registry is empty)'}"
            )
        return rows[0]


def latest(status: str | None = None, warehouse: Warehouse | None = None) -> ModelVersion | None:
    """The most recently registered version (with ``status``, if given), or ``None``."""
    if status is not None and status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        _ensure(conn)
        where, params = ("where status = :s", {"s": status}) if status else ("", {})
        rows = _rows(conn, where, params, tail="order by ordinal desc limit 1")
        return rows[0] if rows else None


def list_versions(warehouse: Warehouse | None = None) -> list[ModelVersion]:
    """Every version, oldest first."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        _ensure(conn)
        return _rows(conn, tail="order by ordinal")


def set_status(version: str, status: str, warehouse: Warehouse | None = None) -> ModelVersion:
    """Move ``version`` to ``status`` if the transition is allowed; the same status again is a no-op.

    Promoting a champion archives the previous one in the same transaction: there is one champion.
    """
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        _ensure(conn)
        rows = _rows(conn, "where version = :v", {"v": version})
        if not rows:
            raise RegistryError(f"no model version {version!r} in {TABLE}")
        current = rows[0].status
        if current == status:
            return rows[0]
        if status not in TRANSITIONS[current]:
            allowed = ", ".join(TRANSITIONS[current]) or "nothing"
            raise RegistryError(
                f"cannot move {version} from {current} to {status}: "
                f"from {current} it may only become {allowed}"
            )
        now = _now()
        if status == "champion":
            conn.execute(
                f"update {TABLE} set status = 'archived', updated_at = :now "
                "where status = 'champion' and version <> :v",
                {"now": now, "v": version},
            )
        conn.execute(
            f"update {TABLE} set status = :s, updated_at = :now where version = :v",
            {"s": status, "now": now, "v": version},
        )
        return _rows(conn, "where version = :v", {"v": version})[0]


def in_service(warehouse: Warehouse | None = None) -> ModelVersion | None:
    """The model in service: the champion, or until one is promoted, the latest registered model."""
    warehouse = warehouse or open_warehouse()
    if not warehouse.table_exists(TABLE):
        return None
    return latest("champion", warehouse=warehouse) or latest(warehouse=warehouse)
