"""The Flywheel page's web app, which Airflow's api-server mounts under ``/flywheel``: the page, its script
and style, the overview as JSON, and the evaluation reports.

Airflow mounts a plugin's app without authentication, so this one denies by default: the login check is a
dependency of the app itself, which every route gets, including one added later. Nothing is mounted inside
it (a mounted app would skip that dependency) and Swagger's pages are off (they would be open).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

from flywheel.config import Settings, get_settings
from flywheel.serving.state import StateError, open_state
from flywheel.ui.overview import read_warehouse, report_path
from flywheel.ui.snapshot import Snapshots, Unavailable
from flywheel.warehouse import open_warehouse

STATIC = Path(__file__).with_name("static")
#: The files the page is made of, with their media types; only these are served (no folder is exposed).
ASSETS = {"flywheel.js": "text/javascript", "flywheel.css": "text/css"}
#: How long a page load waits for a task to release the DuckDB file before answering from its last read:
#: long enough to slip between two short writes, far below the 60 s a task's own writer waits for the page.
LOCK_WAIT_S = 2.0
#: Page loads within this many seconds of a read share it (the page itself refreshes every 30 s).
REFRESH_S = 5.0
#: The page loads nothing from elsewhere, runs no inline script and may only be framed by Airflow's UI.
PAGE_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; frame-ancestors 'self'"
)
#: A report is shown in a sandbox of its own origin: its scripts draw, but cannot act as the logged-in user.
REPORT_POLICY = "sandbox allow-scripts"
#: An evaluation id as evaluate_model writes it: it names a file and can never leave the reports folder.
_EVALUATION_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


def create_app(
    settings: Settings | None = None, *, lock_wait_s: float = LOCK_WAIT_S, refresh_s: float = REFRESH_S
) -> FastAPI:
    """The app for ``settings`` (default: :func:`flywheel.config.get_settings` now)."""
    # Airflow's security module loads its models: imported here, when the api-server builds the app, not
    # when every Airflow process (a task's too) imports the plugin.
    from airflow.api_fastapi.core_api.security import requires_authenticated

    settings = settings or get_settings()
    warehouse = open_warehouse(settings.warehouse_url)
    page = (STATIC / "index.html").read_text()

    def read() -> dict[str, Any]:
        state = _canary(settings)
        return read_warehouse(warehouse, settings, state.get("deployment_id"), lock_wait_s)

    snapshots = Snapshots(read, refresh_s)
    app = FastAPI(
        title="Flywheel",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(requires_authenticated())],
    )

    @app.get("/", response_class=HTMLResponse)
    def index() -> HTMLResponse:
        return HTMLResponse(
            page, headers={"Content-Security-Policy": PAGE_POLICY, "Cache-Control": "no-cache"}
        )

    @app.get("/static/{name}")
    def asset(name: str) -> FileResponse:
        if name not in ASSETS:
            raise HTTPException(404, f"no file {name!r} in the Flywheel page")
        return FileResponse(STATIC / name, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    @app.get("/api/overview")
    def overview() -> Response:
        try:
            sections = snapshots.get()
        except Unavailable as exc:
            return JSONResponse({"detail": str(exc), "busy": True}, status_code=503, headers=_NO_STORE)
        return JSONResponse({**sections, "canary": _canary(settings)}, headers=_NO_STORE)

    @app.get("/reports/{evaluation_id}")
    def report(evaluation_id: str) -> FileResponse:
        path = report_path(settings, evaluation_id) if _EVALUATION_ID.fullmatch(evaluation_id) else None
        if path is None:
            raise HTTPException(
                404,
                f"no report {evaluation_id!r} under {settings.home}: evaluate_model writes one per "
                "evaluation into <artifacts>/evaluations/, and only files inside FLYWHEEL_HOME are served",
            )
        return FileResponse(path, media_type="text/html", headers={"Content-Security-Policy": REPORT_POLICY})

    return app


_NO_STORE = {"Cache-Control": "no-store"}


def _canary(settings: Settings) -> dict[str, Any]:
    """The canary state as the gateway reads it (a file or Redis), with the configured steps."""
    store = open_state(settings)
    try:
        state = store.read()
    except StateError as exc:
        return {"message": str(exc)}
    finally:
        close = getattr(store, "close", None)
        if close:
            close()
    deployed = state.champion or state.canary
    return {
        "champion": state.champion,
        "canary": state.canary,
        "weight": state.weight,
        "step": state.step,
        "steps": list(settings.serving.canary_steps),
        "deployment_id": state.deployment_id,
        "updated_at": state.updated_at or None,
        "message": None if deployed else "nothing deployed yet: deploy_model writes the canary state",
    }
