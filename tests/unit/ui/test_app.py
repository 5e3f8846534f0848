"""The Flywheel page's app (flywheel.ui): no route answers without an Airflow login, the overview shows what
the warehouse holds (and names the DAG behind each empty section), a busy warehouse gives the last read at
once without ever failing the task that writes, reports come only from inside the home, and every URL the
page uses is relative."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import time
from datetime import datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from flywheel import registry
from flywheel.config import PROJECT_ROOT, Settings, get_settings
from flywheel.monitoring.drift import FEATURE_DRIFT_SCHEMA, ensure_feature_drift_table
from flywheel.monitoring.rows import insert_rows
from flywheel.monitoring.tasks import request_retrain
from flywheel.serving.state import CanaryState, open_state
from flywheel.ui import overview
from flywheel.ui.app import create_app
from flywheel.ui.plugin import DeferredApp, FlywheelPlugin
from flywheel.warehouse import open_warehouse

pytestmark = pytest.mark.timeout(180)

STATIC = PROJECT_ROOT / "plugins" / "flywheel" / "ui" / "static"
SECRET = "flywheel-ui-unit-test-secret-" * 3  # 64 bytes or more: PyJWT warns about shorter HMAC keys
T0 = datetime(2026, 3, 1)
FEATURES = ("category", "position", "price")
#: Evaluations as evaluate_model names them: <candidate>-vs-<champion or none>-<window end>.
FIRST_EVALUATION = "v0001-vs-none-20260302T0000"
SECOND_EVALUATION = "v0002-vs-v0001-20260302T0600"
#: Links into Airflow's UI, relative to the page, run ids percent-encoded (':' and '+' are in Airflow's).
TRAINED_V1 = "../dags/train_model/runs/asset_triggered__2026-03-01T00%3A00%3A00%2B00%3A00"
REQUESTED = "../dags/detect_drift/runs/scheduled__2026-03-01T06%3A00%3A00%2B00%3A00"

#: Holds the DuckDB file open for writing, as a running warehouse task does, until its stdin closes.
HOLD = """
import duckdb, sys
con = duckdb.connect(sys.argv[1])
print("holding", flush=True)
sys.stdin.read()
"""
#: A task's writes, one short transaction each, through the warehouse's own retrying connection.
WRITE = """
import sys, time
from flywheel.warehouse.duckdb import DuckDBWarehouse
warehouse, started = DuckDBWarehouse(sys.argv[1]), time.monotonic()
for i in range(int(sys.argv[2])):
    with warehouse.transaction() as conn:
        conn.execute("insert into main.ui_probe values (:i)", {"i": i})
    time.sleep(0.05)
print(round(time.monotonic() - started, 2), flush=True)
"""


@pytest.fixture
def token(monkeypatch: pytest.MonkeyPatch) -> str:
    """An admin's JWT, signed as Airflow's api-server signs them (``AIRFLOW__API_AUTH__JWT_SECRET``)."""
    from airflow import settings
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from airflow.models.revoked_token import RevokedToken

    monkeypatch.setenv("AIRFLOW__API_AUTH__JWT_SECRET", SECRET)
    # A token is checked against Airflow's revoked tokens: the one table of its database these tests need.
    RevokedToken.__table__.create(settings.engine, checkfirst=True)
    manager = create_auth_manager()
    manager._get_token_validator.cache_clear()  # cached with whichever secret it read first
    return manager.generate_jwt(SimpleAuthManagerUser(username="admin", role="admin"))


def fill_world(settings: Settings) -> None:
    """v0001 champion, v0002 rejected by its gate, v0003 a canary at 25%; six hours of PSI in which price
    drifts (the rule fires), the retraining request that followed, and v0001's report."""
    warehouse = open_warehouse(settings.warehouse_url)
    versions = []
    for n in (1, 2, 3):
        versions.append(
            registry.register_candidate(
                data_version=f"hours-{n}",
                artifact_uri=str(settings.home / "artifacts" / f"model-{n}"),
                params={"lr": 0.01},
                metrics={"val_auc": 0.70 + n / 100, "val_logloss": 0.2},
                run_id=f"asset_triggered__2026-03-0{n}T00:00:00+00:00",
                window=(T0, T0 + timedelta(hours=24 * n)),
                warehouse=warehouse,
            )
        )
    v1, v2, v3 = versions
    passed = [{"metric": "auc", "value": 0.71, "lower": 0.70, "upper": 0.72, "passed": True}]
    registry.record_evaluation(FIRST_EVALUATION, v1, passed, warehouse=warehouse)
    failed = [
        {"metric": "auc_difference", "value": -0.03, "lower": -0.04, "upper": -0.02, "passed": False},
        {"metric": "ece_difference", "value": 0.0, "lower": -0.01, "upper": 0.01, "passed": True},
        {"metric": "gmv_at_10", "value": 3.2, "passed": None},
    ]
    registry.record_evaluation(SECOND_EVALUATION, v2, failed, baseline_version=v1, warehouse=warehouse)
    for version, moves in (
        (v1, [("blessed", "e1"), ("canary", "d1"), ("champion", "d1")]),
        (v2, [("rejected", "e2")]),
        (v3, [("blessed", "e3"), ("canary", "d3")]),
    ):
        for status, run in moves:
            registry.set_status(version, status, warehouse, reason="test", run_id=f"manual__{run}")
    for step, share in enumerate((0.05, 0.10)):
        registry.record_deployment_step(
            f"{v3}@manual__d3", v3, step, share, "advance", run_id="manual__d3", warehouse=warehouse
        )
    open_state(settings).write(
        CanaryState(champion=v1, canary=v3, weight=0.25, step=2, deployment_id=f"{v3}@manual__d3")
    )
    rows = [
        {
            "window_start": T0 + timedelta(hours=h),
            "window_end": T0 + timedelta(hours=h + 1),
            "feature": feature,
            "kind": "categorical" if feature == "category" else "numeric",
            "psi": (0.05 * h if feature == "price" else 0.01 * (i + 1)) if h != 2 else None,
            "status": "ok" if h != 2 else "no_data",
            "window_rows": 1000,
            "bins": "[]",
            "profile_id": v1,
            "model_version": v1,
        }
        for h in range(6)
        for i, feature in enumerate(FEATURES)
    ]
    with warehouse.transaction() as conn:
        ensure_feature_drift_table(conn)
        insert_rows(conn, overview.FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA, rows)
    summary = {"window_end": (T0 + timedelta(hours=6)).isoformat(), "drifting": {"price": 0.25}, "model": v1}
    request_retrain(summary, "scheduled__2026-03-01T06:00:00+00:00", settings)
    reports = settings.artifacts_dir / "evaluations"
    reports.mkdir(parents=True)
    (reports / f"{FIRST_EVALUATION}.html").write_text("<html><body>report of v0001</body></html>")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_every_route_refuses_a_request_without_a_login(home: Settings, token: str) -> None:
    # The plugin's own app, built as the api-server builds it on its first request.
    (mounted,) = FlywheelPlugin.fastapi_apps
    assert isinstance(mounted["app"], DeferredApp)
    app = DeferredApp().app
    client = TestClient(app)
    forged = token.rsplit(".", 1)[0] + ".c2lnbmVkIGJ5IHNvbWVvbmUgZWxzZQ"
    checked = []
    for route in app.routes:
        # A mounted app (static files, a sub-app) would skip the app's dependencies: none may be there.
        assert isinstance(route, APIRoute), f"{route!r} is not an APIRoute: it would answer without a login"
        path = re.sub(r"{[^}]+}", "anything", route.path)
        for method in route.methods:
            assert client.request(method, path).status_code == 401, f"{method} {route.path}"
            refused = client.request(method, path, headers=bearer(forged)).status_code
            assert refused in (401, 403), f"{method} {route.path} took a forged token"
            checked.append(f"{method} {route.path}")
    assert {"GET /", "GET /api/overview", "GET /reports/{evaluation_id}"} <= set(checked)
    # FastAPI's generated pages would be open routes of their own.
    for path in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(path).status_code == 404, path


def test_the_overview_shows_versions_gates_psi_the_decision_and_the_canary(
    warehouse_home: Settings, token: str
) -> None:
    # On DuckDB and on PostgreSQL: the page's SQL runs on both.
    fill_world(warehouse_home)
    client = TestClient(create_app(warehouse_home, refresh_s=0))
    data = client.get("/api/overview", headers=bearer(token)).json()
    assert data["stale"] is None
    versions = {v["version"]: v for v in data["versions"]["rows"]}
    assert [v["version"] for v in data["versions"]["rows"]] == ["v0003", "v0002", "v0001"]
    assert {k: v["status"] for k, v in versions.items()} == {
        "v0001": "champion",
        "v0002": "rejected",
        "v0003": "canary",
    }
    assert versions["v0001"]["gate"]["verdict"] == "passed"
    assert versions["v0001"]["gate"]["report"] == f"reports/{FIRST_EVALUATION}"
    gate = versions["v0002"]["gate"]
    assert (gate["verdict"], gate["baseline"], gate["failed"]) == ("failed", "v0001", "auc_difference (all)")
    assert gate["report"] is None  # no file was written for it
    assert versions["v0003"]["gate"] is None
    assert versions["v0001"]["run"] == TRAINED_V1
    assert [(h["status"], h["run"]) for h in versions["v0001"]["history"]] == [
        ("candidate", TRAINED_V1),
        ("blessed", "../dags/evaluate_model/runs/manual__e1"),
        ("canary", "../dags/deploy_model/runs/manual__d1"),
        ("champion", "../dags/deploy_model/runs/manual__d1"),
    ]
    series = {s["feature"]: s["points"] for s in data["drift"]["series"]}
    assert sorted(series) == sorted(FEATURES)
    assert [p[1] for p in series["price"]] == [0.0, 0.05, None, pytest.approx(0.15), 0.2, 0.25]
    assert series["price"][-1][0] == "2026-03-01T06:00:00Z"
    decision = data["decision"]
    assert [decision[k] for k in ("window_end", "model", "fire")] == ["2026-03-01T06:00:00Z", "v0001", True]
    assert decision["fired"] == {"price": 0.25}
    assert decision["request"]["run"] == REQUESTED
    canary = data["canary"]
    assert [canary[k] for k in ("champion", "canary", "weight", "step")] == ["v0001", "v0003", 0.25, 2]
    steps = data["deployment"]["steps"]
    assert [(s["step"], s["share"], s["run"]) for s in steps] == [
        (0, 0.05, "../dags/deploy_model/runs/manual__d3"),
        (1, 0.10, "../dags/deploy_model/runs/manual__d3"),
    ]


def test_a_fresh_home_gives_empty_sections_that_name_the_dag_filling_them(
    warehouse_home: Settings, token: str
) -> None:
    home = warehouse_home
    client = TestClient(create_app(home, refresh_s=0))
    for _ in range(2):  # no warehouse (DuckDB: no file) yet; then one holding none of the page's tables
        response = client.get("/api/overview", headers=bearer(token))
        assert response.status_code == 200, response.text
        data = response.json()
        assert data["versions"]["rows"] == [] and "train_model" in data["versions"]["message"]
        assert data["drift"]["series"] == [] and "detect_drift" in data["drift"]["message"]
        assert data["deployment"]["steps"] == [] and "deploy_model" in data["deployment"]["message"]
        assert "deploy_model" in data["canary"]["message"]
        open_warehouse(home.warehouse_url).execute("create table if not exists unrelated (i integer)")


def test_a_busy_warehouse_answers_from_the_last_read_quickly(home: Settings, token: str) -> None:
    fill_world(home)
    path = home.warehouse_url.split(":///", 1)[1]
    page = TestClient(create_app(home, refresh_s=0))  # the page's own wait for the lock (LOCK_WAIT_S)
    first = page.get("/api/overview", headers=bearer(token)).json()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, path], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        started = time.monotonic()
        response = page.get("/api/overview", headers=bearer(token))
        took = time.monotonic() - started
        assert response.status_code == 200 and took < 5, (response.status_code, took)
        data = response.json()
        assert data["stale"] == f"warehouse busy; data as of {first['as_of']}"
        assert data["versions"] == first["versions"] and data["drift"] == first["drift"]
        assert data["canary"]["canary"] == "v0003"  # not in the warehouse: read fresh all the same
        # A page that never read the warehouse has nothing to fall back on: a clear 503, as quickly.
        started = time.monotonic()
        fresh = TestClient(create_app(home, refresh_s=0))
        response = fresh.get("/api/overview", headers=bearer(token))
        assert response.status_code == 503 and time.monotonic() - started < 5
        assert response.json()["detail"].startswith("warehouse busy, and the page has not read it yet")
    finally:
        holder.stdin.close()
        holder.wait(timeout=10)
    assert page.get("/api/overview", headers=bearer(token)).json()["stale"] is None


def test_the_page_never_makes_a_writing_task_fail(home: Settings, token: str) -> None:
    # Many open tabs reading as fast as they can while a task writes: every write lands, no page load fails.
    fill_world(home)
    path = home.warehouse_url.split(":///", 1)[1]
    page = TestClient(create_app(home, refresh_s=0, lock_wait_s=0.5))
    assert page.get("/api/overview", headers=bearer(token)).status_code == 200
    open_warehouse(home.warehouse_url).execute("create table main.ui_probe (i integer)")
    writes = 20
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITE, f"duckdb:///{path}", str(writes)], stdout=subprocess.PIPE, text=True
    )
    loads = stale = 0
    while writer.poll() is None:
        response = page.get("/api/overview", headers=bearer(token))
        assert response.status_code == 200, response.text
        loads += 1
        stale += response.json()["stale"] is not None
        time.sleep(0.02)
    out, _ = writer.communicate(timeout=10)
    assert writer.returncode == 0
    assert float(out) < 30, f"the writer took {out} s for {writes} writes"
    count = open_warehouse(home.warehouse_url).read_arrow("select count(*) as n from main.ui_probe")
    assert count.to_pylist() == [{"n": writes}]
    assert loads >= 5 and loads - stale > 0, (loads, stale)  # the page kept loading, mostly fresh


def test_reports_are_served_only_from_inside_the_home(
    home: Settings, token: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fill_world(home)
    client = TestClient(create_app(home, refresh_s=0))
    response = client.get(f"/reports/{FIRST_EVALUATION}", headers=bearer(token))
    assert response.status_code == 200 and "report of v0001" in response.text
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == "sandbox allow-scripts"
    outside = tmp_path / "outside" / "secret.html"
    outside.parent.mkdir()
    outside.write_text("the secret")
    (home.artifacts_dir / "evaluations" / "leak.html").symlink_to(outside)
    for evaluation_id in ("leak", "..%2F..%2F..%2Foutside%2Fsecret", "%2E%2E", "nothing-here"):
        response = client.get(f"/reports/{evaluation_id}", headers=bearer(token))
        assert response.status_code == 404 and "the secret" not in response.text, evaluation_id
    # Artifacts configured outside the home: their reports are not served either.
    monkeypatch.setenv("FLYWHEEL_ARTIFACTS_DIR", str(outside.parent))
    (outside.parent / "evaluations").mkdir()
    (outside.parent / "evaluations" / "elsewhere.html").write_text("the secret")
    client = TestClient(create_app(get_settings(), refresh_s=0))
    response = client.get("/reports/elsewhere", headers=bearer(token))
    assert response.status_code == 404 and "the secret" not in response.text


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.urls += [value or "" for name, value in attrs if name in ("href", "src", "action")]


def _absolute(url: str) -> bool:
    return url.startswith("/") or "://" in url


def test_every_url_of_the_page_is_relative(home: Settings, token: str) -> None:
    # Behind a proxy serving Airflow under a prefix, an absolute path would leave the prefix out.
    parser = _Links()
    parser.feed((STATIC / "index.html").read_text())
    assert parser.urls and not [u for u in parser.urls if _absolute(u)], parser.urls
    script = (STATIC / "flywheel.js").read_text()
    literals = re.findall(r"\"([^\"\n]*)\"|'([^'\n]*)'|`([^`]*)`", script)
    strings = [s for groups in literals for s in groups if s]
    assert "api/overview" in strings
    absolute = [s for s in strings if _absolute(s) and s != "http://www.w3.org/2000/svg"]
    assert not absolute, absolute
    assert not re.search(r"url\(", (STATIC / "flywheel.css").read_text()), "the style fetches a file"
    view = FlywheelPlugin.external_views[0]
    assert not _absolute(view["href"]) and view["icon"].startswith("data:")
    # The links the API hands the page.
    fill_world(home)
    data = TestClient(create_app(home)).get("/api/overview", headers=bearer(token)).json()
    links = re.findall(r'"(?:run|report)": "([^"]+)"', json.dumps(data))
    assert len(links) > 10 and not [u for u in links if _absolute(u)], links


def test_the_report_folder_is_the_one_evaluation_writes() -> None:
    # Read from the source: importing the evaluation stage would load its model libraries.
    source = (PROJECT_ROOT / "plugins" / "flywheel" / "evaluation" / "evaluate.py").read_text()
    (value,) = [
        node.value.value
        for node in ast.parse(source).body
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "REPORTS_FOLDER"
    ]
    assert overview.REPORTS_FOLDER == value


LOAD_PLUGINS = """
import sys
from airflow._shared.plugins_manager import _load_plugins_from_plugin_directory
plugins, errors = _load_plugins_from_plugin_directory(sys.argv[1], ignore_file_syntax="glob")
heavy = sorted(m for m in ("fastapi", "duckdb", "flywheel.ui.app", "airflow.api_fastapi.core_api.security")
               if m in sys.modules)
print([p.name for p in plugins], errors, heavy)
"""


def test_airflow_finds_the_plugin_and_loading_it_stays_light() -> None:
    # Every Airflow process (each task too) loads plugins: the app is built in the api-server only.
    result = subprocess.run(
        [sys.executable, "-c", LOAD_PLUGINS, str(PROJECT_ROOT / "plugins")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "['flywheel'] {} []", result.stdout + result.stderr


def test_an_unreachable_warehouse_is_a_clear_503_not_a_500(
    home: Settings, token: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Nothing listens on port 1: the read fails at once, and the page says so instead of erring.
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:1/flywheel")
    response = TestClient(create_app(get_settings())).get("/api/overview", headers=bearer(token))
    assert response.status_code == 503
    assert response.json()["detail"].startswith("warehouse unavailable (")
