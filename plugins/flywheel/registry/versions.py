"""Model versions (``registry.model_versions``): ``v0001, v0002, ...`` with their data version, params,
metrics, artifact and training window, registered as candidates and read back by version or status.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flywheel.registry.store import TABLE, RegistryError, ensure_tables, statement, utcnow
from flywheel.warehouse import Warehouse, open_warehouse

STATUSES = ("candidate", "blessed", "rejected", "canary", "champion", "rolled_back", "archived")
#: Where each status may go. Evaluation blesses or rejects a candidate; serving tries a blessed model as a
#: canary, then promotes it (archiving the champion it replaces) or rolls it back. A rollback of a champion
#: restores an archived former champion; everything else ends ``archived``.
TRANSITIONS: dict[str, tuple[str, ...]] = {
    "candidate": ("blessed", "rejected"),
    "blessed": ("canary", "archived"),
    "canary": ("champion", "rolled_back"),
    "champion": ("archived", "rolled_back"),
    "archived": ("champion",),
    "rejected": ("archived",),
    "rolled_back": ("archived",),
}
_INSERT_ATTEMPTS = 3


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


def check_status(status: str) -> None:
    """Refuse a status the lifecycle does not know, naming the ones it does."""
    if status not in STATUSES:
        raise RegistryError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")


def read_versions(conn: Any, params: dict[str, Any] | None = None, **flags: bool) -> list[ModelVersion]:
    """The versions ``select_versions.sql`` returns for ``flags`` (see its contract) and ``params``."""
    table = conn.read_arrow(statement("select_versions.sql", **flags), params or {})
    return [
        ModelVersion(**{**row, "params": json.loads(row["params"]), "metrics": json.loads(row["metrics"])})
        for row in table.to_pylist()
    ]


def require_version(conn: Any, version: str) -> ModelVersion:
    """``version``, or ``RegistryError`` naming the newest versions that do exist."""
    rows = read_versions(conn, {"version": version}, by_version=True)
    if rows:
        return rows[0]
    known = [r.version for r in read_versions(conn, {"limit": 5}, newest_first=True, limited=True)]
    raise RegistryError(
        f"no model version {version!r} in {TABLE}; "
        f"latest are {', '.join(known) or 'none (the registry is empty: training registers candidates)'}"
    )


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
    The parent defaults to the champion at registration time (the model this one challenges). The
    registration is the first entry of the version's history.
    """
    warehouse = warehouse or open_warehouse()
    for attempt in range(_INSERT_ATTEMPTS):
        try:
            with warehouse.transaction() as conn:
                ensure_tables(conn)
                same = read_versions(
                    conn, {"data_version": data_version, "artifact_uri": artifact_uri}, by_origin=True
                )
                if same:
                    return same[0].version
                if parent_version is None:
                    champions = read_versions(conn, {"status": "champion"}, by_status=True)
                    parent_version = champions[0].version if champions else None
                ordinal = int(conn.read_arrow(statement("next_ordinal.sql")).to_pylist()[0]["ordinal"])
                version = f"v{ordinal:04d}"
                now = utcnow()
                conn.execute(
                    statement("insert_version.sql"),
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
                conn.execute(
                    statement("insert_status_change.sql"),
                    {
                        "version": version,
                        "from_status": None,
                        "to_status": "candidate",
                        "reason": "registered",
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
        ensure_tables(conn)
        return require_version(conn, version)


def latest(status: str | None = None, warehouse: Warehouse | None = None) -> ModelVersion | None:
    """The most recently registered version (with ``status``, if given), or ``None``."""
    if status is not None:
        check_status(status)
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        newest = {"newest_first": True, "limited": True}
        rows = read_versions(conn, {"status": status, "limit": 1}, by_status=status is not None, **newest)
        return rows[0] if rows else None


def list_versions(warehouse: Warehouse | None = None) -> list[ModelVersion]:
    """Every version, oldest first."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        return read_versions(conn)
