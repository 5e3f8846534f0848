"""What the Flywheel page shows, read in one short read-only connection: model versions with their gates,
PSI per feature over time, the last drift decision and the newest rollout's steps. A table that does not
exist yet (a fresh home) gives an empty section that names the DAG that fills it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from flywheel.config import DriftRule, Settings
from flywheel.registry.store import DEPLOYMENTS_TABLE, EVALUATIONS_TABLE, STATUS_CHANGES_TABLE, TABLE
from flywheel.warehouse import Warehouse
from flywheel.warehouse.base import Connection
from flywheel.warehouse.tables import RETRAIN_REQUESTS_TABLE
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).with_name("sql")
#: Written by detect_drift (flywheel.monitoring.drift, a stage this package does not import).
FEATURE_DRIFT_TABLE = "monitoring.feature_drift"
#: Where evaluate_model writes a report under the artifacts folder: ``evaluations/<evaluation_id>.html``
#: (flywheel.evaluation.evaluate.REPORTS_FOLDER; tests/unit/ui keeps the two equal).
REPORTS_FOLDER = "evaluations"
#: The DAG that creates each table the page reads: what an empty section tells the reader to run.
FILLED_BY = {
    TABLE: "train_model",
    STATUS_CHANGES_TABLE: "train_model",
    EVALUATIONS_TABLE: "evaluate_model",
    DEPLOYMENTS_TABLE: "deploy_model",
    FEATURE_DRIFT_TABLE: "detect_drift",
    RETRAIN_REQUESTS_TABLE: "detect_drift",
}
#: The DAG whose run moves a version into each status, so a recorded run id becomes a link to that run.
MOVED_BY = {
    "candidate": "train_model",
    "blessed": "evaluate_model",
    "rejected": "evaluate_model",
    "canary": "deploy_model",
    "champion": "deploy_model",
    "rolled_back": "deploy_model",
    "archived": "deploy_model",
}
#: The page lists this many versions and charts this many hours back from the newest drift window.
VERSIONS_SHOWN = 50
PSI_HOURS = 168
#: A statement of the page that runs longer is cancelled (PostgreSQL); these reads take milliseconds.
STATEMENT_TIMEOUT_S = 10.0


def run_link(dag_id: str, run_id: str | None) -> str | None:
    """The Airflow UI's page of a DAG run, relative to the Flywheel page (``<base>/flywheel/``), so it
    holds behind a proxy that serves Airflow under a path prefix."""
    if not run_id:
        return None
    return f"../dags/{quote(dag_id, safe='')}/runs/{quote(run_id, safe='')}"


def report_path(settings: Settings, evaluation_id: str) -> Path | None:
    """The report file of ``evaluation_id`` if it exists inside both the home and the reports folder (after
    following links), else None: the page never reads a file outside ``FLYWHEEL_HOME``."""
    if not isinstance(settings.artifacts_dir, Path):
        return None  # an object store: nothing on this machine to serve
    folder = (settings.artifacts_dir / REPORTS_FOLDER).resolve()
    path = (folder / f"{evaluation_id}.html").resolve()
    home = settings.home.resolve()
    inside = path.is_relative_to(folder) and path.is_relative_to(home)
    return path if inside and path.is_file() else None


def read_warehouse(
    warehouse: Warehouse, settings: Settings, deployment_id: str | None, lock_wait_s: float
) -> dict[str, Any]:
    """Every warehouse section of the page. Raises ``WarehouseBusy`` when another process holds a DuckDB
    file for longer than ``lock_wait_s``; the connection is closed before this returns."""
    if _never_created(warehouse):
        return _sections(settings, set(), {}, {}, {}, {})
    with warehouse.reader(STATEMENT_TIMEOUT_S, lock_wait_s=lock_wait_s) as conn:
        existing = {row["table_name"] for row in _rows(conn, "existing_tables.sql")}
        versions = _versions(conn, existing)
        psi = _rows(conn, "feature_psi.sql", {"hours": PSI_HOURS}, FEATURE_DRIFT_TABLE in existing)
        decision = _decision(conn, existing, settings.drift)
        params = {"deployment_id": deployment_id}
        steps = _rows(conn, "deployment_steps.sql", params, DEPLOYMENTS_TABLE in existing)
    return _sections(settings, existing, versions, psi, decision, steps)


def _never_created(warehouse: Warehouse) -> bool:
    # DuckDB cannot open a missing file read-only, and creating it is a write: a fresh home has no file.
    path = getattr(warehouse, "path", None)
    return warehouse.dialect == "duckdb" and path != ":memory:" and not Path(str(path)).exists()


def _rows(
    conn: Connection, name: str, params: dict[str, Any] | None = None, exists: bool = True
) -> list[dict[str, Any]]:
    if not exists:
        return []
    return conn.read_arrow(render_sql(SQL_DIR / name), params or {}).to_pylist()


def _versions(conn: Connection, existing: set[str]) -> dict[str, Any]:
    limit = {"limit": VERSIONS_SHOWN}
    return {
        "versions": _rows(conn, "model_versions.sql", limit, TABLE in existing),
        "changes": _rows(conn, "status_changes.sql", limit, {TABLE, STATUS_CHANGES_TABLE} <= existing),
        "gates": _rows(conn, "evaluation_gates.sql", None, EVALUATIONS_TABLE in existing),
    }


def _decision(conn: Connection, existing: set[str], rule: DriftRule) -> dict[str, Any]:
    """The drift rule (sql/monitoring/drift_decision.sql, as detect_drift applies it) on the newest window
    recorded, and the newest retraining request."""
    request = _rows(conn, "last_retrain_request.sql", None, RETRAIN_REQUESTS_TABLE in existing)
    window = _rows(conn, "latest_drift_window.sql", None, FEATURE_DRIFT_TABLE in existing)
    if not window:
        return {"window": None, "features": [], "request": request[0] if request else None}
    params = {
        "model_version": window[0]["model_version"],
        "window_end": window[0]["window_end"],
        "psi_threshold": float(rule.psi_threshold),
        "sustained_threshold": float(rule.sustained_threshold),
        "sustained_windows": int(rule.sustained_windows),
    }
    features = conn.read_arrow(render_sql("monitoring/drift_decision.sql"), params).to_pylist()
    return {"window": window[0], "features": features, "request": request[0] if request else None}


def _missing(tables: Iterable[str], existing: set[str]) -> str | None:
    absent = [t for t in tables if t not in existing]
    if not absent:
        return None
    dags = sorted({FILLED_BY[t] for t in absent})
    return f"{', '.join(absent)} not in the warehouse yet: {' and '.join(dags)} creates it on its first run"


def _sections(
    settings: Settings,
    existing: set[str],
    versions: dict[str, Any],
    psi: list[dict[str, Any]],
    decision: dict[str, Any],
    steps: list[dict[str, Any]],
) -> dict[str, Any]:
    rule = settings.drift
    return {
        "versions": {
            "rows": _version_rows(settings, versions),
            "message": _missing([TABLE], existing) or _missing([EVALUATIONS_TABLE], existing),
        },
        "drift": {
            "series": _series(psi),
            "thresholds": {"psi": rule.psi_threshold, "sustained": rule.sustained_threshold},
            "message": _missing([FEATURE_DRIFT_TABLE], existing),
        },
        "decision": {**_decision_view(decision, rule), "message": _missing([FEATURE_DRIFT_TABLE], existing)},
        "deployment": {
            "steps": [_step(s) for s in steps],
            "message": _missing([DEPLOYMENTS_TABLE], existing),
        },
    }


def _version_rows(settings: Settings, found: dict[str, Any]) -> list[dict[str, Any]]:
    gates = {g["version"]: g for g in found.get("gates", [])}
    history: dict[str, list[dict[str, Any]]] = {}
    for change in found.get("changes", []):
        dag_id = MOVED_BY.get(change["to_status"])
        history.setdefault(change["version"], []).append(
            {
                "status": change["to_status"],
                "at": iso(change["changed_at"]),
                "reason": change["reason"],
                "run": run_link(dag_id, change["run_id"]) if dag_id else None,
            }
        )
    rows = []
    for v in found.get("versions", []):
        metrics = json.loads(v["metrics"] or "{}")
        rows.append(
            {
                "version": v["version"],
                "status": v["status"],
                "parent": v["parent_version"],
                "data_version": v["data_version"],
                "window": [iso(v["window_start"]), iso(v["window_end"])],
                "registered": iso(v["created_at"]),
                "metrics": {k: x for k, x in metrics.items() if isinstance(x, int | float)},
                "run": run_link("train_model", v["run_id"]),
                "gate": _gate(settings, gates.get(v["version"])),
                "history": history.get(v["version"], []),
            }
        )
    return rows


def _gate(settings: Settings, gate: dict[str, Any] | None) -> dict[str, Any] | None:
    if gate is None:
        return None
    if gate["failed_checks"]:
        verdict = "failed"
    else:
        verdict = "passed" if gate["gated_checks"] else "not gated"
    evaluation_id = gate["evaluation_id"]
    report = report_path(settings, evaluation_id)
    return {
        "evaluation_id": evaluation_id,
        "baseline": gate["baseline_version"],
        "at": iso(gate["created_at"]),
        "verdict": verdict,
        "failed": gate["failed_metrics"],
        "report": f"reports/{quote(evaluation_id, safe='')}" if report else None,
    }


def _series(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    series: dict[str, list[list[Any]]] = {}
    for p in points:
        series.setdefault(p["feature"], []).append([iso(p["window_end"]), p["psi"], p["model_version"]])
    return [{"feature": feature, "points": pts} for feature, pts in sorted(series.items())]


def _decision_view(decision: dict[str, Any], rule: DriftRule) -> dict[str, Any]:
    request = decision.get("request")
    window = decision.get("window")
    fired = {f["feature"]: f["latest_psi"] for f in decision.get("features", []) if f["fire"]}
    view: dict[str, Any] = {"window_end": None, "model": None, "fire": False, "fired": fired}
    if window:
        view |= {
            "window_end": iso(window["window_end"]),
            "model": window["model_version"],
            "fire": bool(fired),
        }
        view["rule"] = (
            f"PSI >= {rule.psi_threshold} in the latest window, or >= {rule.sustained_threshold} "
            f"for {rule.sustained_windows} consecutive hours"
        )
    view["request"] = (
        {
            "window_end": iso(request["window_end"]),
            "features": json.loads(request["features"] or "{}"),
            "requested_at": iso(request["requested_at"]),
            "run": run_link("detect_drift", request["run_id"]),
        }
        if request
        else None
    )
    return view


def _step(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "deployment_id": step["deployment_id"],
        "version": step["version"],
        "step": step["step"],
        "share": step["traffic_share"],
        "decision": step["decision"],
        "reason": step["reason"],
        "at": iso(step["decided_at"]),
        "run": run_link("deploy_model", step["run_id"]),
    }


def iso(value: datetime | None) -> str | None:
    """A warehouse timestamp (naive UTC) as ISO 8601 with its zone, so a browser does not read it as local."""
    if value is None:
        return None
    return value.isoformat() + ("Z" if value.tzinfo is None else "")
