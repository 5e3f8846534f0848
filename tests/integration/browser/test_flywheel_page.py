"""The Flywheel page in a real Airflow: the api-server loads the plugin from plugins/, a user signs in through
Airflow's login form in Chromium and opens Flywheel from the navigation. The PSI chart draws every feature,
the model versions are listed, the page logs nothing, and a run link opens the run in Airflow's UI; a
browser without a login is refused. The page's screenshot is docs/images/flywheel-page.png (README)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from flywheel import registry
from flywheel.config import PROJECT_ROOT, Settings, get_settings
from flywheel.local import processes
from flywheel.local.processes import AirflowProcesses, airflow_cli
from flywheel.monitoring.drift import FEATURE_DRIFT_SCHEMA, FEATURE_DRIFT_TABLE, ensure_feature_drift_table
from flywheel.monitoring.rows import insert_rows
from flywheel.monitoring.tasks import CATEGORICAL_FEATURES, NUMERIC_FEATURES, request_retrain
from flywheel.serving.state import CanaryState, open_state
from flywheel.warehouse import open_warehouse

# Slow as the other tests of real services: migrating Airflow's database and starting its api-server take
# about 15 s here, the browser a few more.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]

SCREENSHOT = PROJECT_ROOT / "docs" / "images" / "flywheel-page.png"
FEATURES = (*NUMERIC_FEATURES, *CATEGORICAL_FEATURES)
START = datetime(2026, 3, 1)
#: The users' interests shift here, as in `make demo`: price and category drift after it.
SHIFT_HOUR = 48
CHECKED_HOURS = range(24, 60)
#: Airflow's own notice about its sandbox attributes on every plugin frame, logged in the frame's console
#: whatever the page does: the only message the page's console may show.
AIRFLOW_FRAME_NOTICE = "An iframe which has both allow-scripts and allow-same-origin"


def _run(hour: int) -> str:
    """The id Airflow gives a run its scheduler started for an asset event at ``hour``."""
    return f"asset_triggered__{(START + timedelta(hours=hour)).isoformat()}+00:00"


def fill_world(settings: Settings) -> None:
    """The loop after three days: v0001 (trained on day one) is champion; drift in price and category after
    hour 48 requested a retrain; v0002 failed its gate on a slice, v0003 passed and is a canary at 25%."""
    warehouse = open_warehouse(settings.warehouse_url)
    reports = settings.artifacts_dir / "evaluations"
    reports.mkdir(parents=True, exist_ok=True)

    def version(n: int, end_hour: int, auc: float) -> str:
        return registry.register_candidate(
            data_version=f"published-hours-{end_hour - 24:03d}-{end_hour:03d}",
            artifact_uri=str(settings.artifacts_dir / f"run-{n}"),
            params={"lr": 0.003, "embedding_dim": 16},
            metrics={"val_auc": auc, "val_logloss": 0.19},
            run_id=_run(end_hour),
            window=(START + timedelta(hours=end_hour - 24), START + timedelta(hours=end_hour)),
            warehouse=warehouse,
        )

    def evaluate(candidate: str, champion: str | None, hour: int, passed: dict[str, bool | None]) -> str:
        evaluation_id = f"{candidate}-vs-{champion or 'none'}-{START + timedelta(hours=hour):%Y%m%dT%H%M}"
        rows = [
            {"metric": metric, "slice": where, "value": 0.7, "lower": 0.68, "upper": 0.72, "passed": ok}
            for (metric, where), ok in ((tuple(k.split("@")), v) for k, v in passed.items())
        ]
        registry.record_evaluation(
            evaluation_id, candidate, rows, baseline_version=champion, warehouse=warehouse
        )
        (reports / f"{evaluation_id}.html").write_text(f"<html><body>{evaluation_id}</body></html>")
        return evaluation_id

    v1 = version(1, 24, 0.712)
    evaluate(v1, None, 30, {"auc@all": True, "ece@all": True})
    registry.set_status(v1, "blessed", warehouse, reason="gate passed", run_id=_run(30))
    for step, share in enumerate((0.05, 0.10, 0.25, 0.50, 1.0)):
        decision = "promote" if share == 1.0 else "advance"
        registry.record_deployment_step(f"{v1}@d1", v1, step, share, decision, run_id=_run(31))
    registry.set_status(v1, "canary", warehouse, reason="first model", run_id=_run(31))
    registry.set_status(v1, "champion", warehouse, reason="promoted", run_id=_run(31))
    rng = random.Random(7)
    drift = []
    for hour in CHECKED_HOURS:
        for feature in FEATURES:
            shifted = feature in ("price", "category") and hour >= SHIFT_HOUR
            psi = (
                rng.uniform(0.18, 0.32) + (hour - SHIFT_HOUR) * 0.01 if shifted else rng.uniform(0.005, 0.04)
            )
            drift.append(
                {
                    "window_start": START + timedelta(hours=hour - 1),
                    "window_end": START + timedelta(hours=hour),
                    "feature": feature,
                    "kind": "categorical" if feature in CATEGORICAL_FEATURES else "numeric",
                    "psi": psi,
                    "status": "ok",
                    "window_rows": rng.randint(9000, 11000),
                    "bins": "[]",
                    "profile_id": v1,
                    "model_version": v1,
                }
            )
    with warehouse.transaction() as conn:
        ensure_feature_drift_table(conn)
        insert_rows(conn, FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA, drift)
    summary = {"window_end": (START + timedelta(hours=50)).isoformat(), "drifting": {"price": 0.24}}
    request_retrain(summary, _run(50), settings)
    v2 = version(2, 50, 0.724)
    evaluate(v2, v1, 56, {"auc_difference@all": True, "auc_difference@user_tenure=new": False})
    registry.set_status(v2, "rejected", warehouse, reason="slice regression", run_id=_run(56))
    v3 = version(3, 52, 0.731)
    evaluate(v3, v1, 58, {"auc_difference@all": True, "ece_difference@all": True, "gmv_at_10@all": None})
    registry.set_status(v3, "blessed", warehouse, reason="gate passed", run_id=_run(58))
    registry.set_status(v3, "canary", warehouse, reason="canary started", run_id=_run(59))
    for step, share in enumerate((0.05, 0.10)):
        registry.record_deployment_step(f"{v3}@d3", v3, step, share, "advance", run_id=_run(59))
    open_state(settings).write(
        CanaryState(champion=v1, canary=v3, weight=0.25, step=2, deployment_id=f"{v3}@d3")
    )


def _answers(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/api/v2/version", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowProcesses, str]]:
    """A real api-server (the only component the page needs) over a home filled by :func:`fill_world`, and
    the admin's generated password."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLYWHEEL_HOME", str(tmp_path_factory.mktemp("flywheel-ui") / "home"))
        patch.delenv("FLYWHEEL_WAREHOUSE_URL", raising=False)
        patch.setattr(processes, "COMPONENTS", ("api-server",))
        settings = get_settings()
        settings.ensure_dirs()
        fill_world(settings)
        procs = AirflowProcesses(settings, setup=lambda env: airflow_cli(["db", "migrate"], env))
        try:
            procs.start(prepare_first=False)  # no DAG runs here: no dbt manifest, pools or serialized DAGs
            procs.wait_for(lambda: _answers(procs.base_url), "Airflow's api-server", timeout=180)
            passwords = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
            yield procs, json.loads(passwords.read_text())["admin"]
        finally:
            procs.stop()


@pytest.fixture
def allowed_urls(allowed_urls: tuple[str, ...], airflow: tuple[AirflowProcesses, str]) -> tuple[str, ...]:
    return (*allowed_urls, f"{airflow[0].base_url}/")


#: Per feature drawn in the chart: its line's path and its points, with their boxes in page pixels.
MEASURE = """chart => [...chart.querySelectorAll("g.series")].map(g => ({
    feature: g.dataset.feature,
    path: g.querySelector("path.line").getAttribute("d"),
    points: [...g.querySelectorAll("circle.point")].map(c => {
        const r = c.getBoundingClientRect();
        return [r.width, r.height];
    }),
}))"""


def test_the_flywheel_page_shows_the_loop_to_a_signed_in_user(airflow, browser_page, tmp_path: Path) -> None:
    procs, password = airflow
    page = browser_page.page
    page.goto(f"{procs.base_url}/auth/login?next=%2F")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/" not in url)
    page.get_by_role("link", name="Flywheel").click()
    frame = page.frame_locator("iframe[title=Flywheel]")
    frame.locator("body[data-loaded=true]").wait_for(timeout=30_000)
    assert page.url == f"{procs.base_url}/plugin/flywheel/flywheel/"

    drawn = frame.locator("#psi-chart").evaluate(MEASURE)
    assert sorted(d["feature"] for d in drawn) == sorted(FEATURES)
    for series in drawn:
        assert series["path"].startswith("M") and series["path"].count("L") == len(CHECKED_HOURS) - 1, series
        assert len(series["points"]) == len(CHECKED_HOURS)
        assert all(w > 0 and h > 0 for w, h in series["points"]), f"{series['feature']}: points not visible"
    assert frame.locator("#psi-legend li").all_inner_texts() == sorted(FEATURES)
    rows = frame.locator("#versions-table tbody tr")
    assert [r.get_attribute("data-version") for r in rows.all()] == ["v0003", "v0002", "v0001"]
    statuses = frame.locator("#versions-table tbody tr td:nth-child(2)").all_inner_texts()
    assert statuses == ["canary", "rejected", "champion"]
    assert "failed" in rows.nth(1).inner_text() and "user_tenure=new" in rows.nth(1).inner_text()
    assert frame.locator("#decision .verdict").inner_text() == "retrain"
    assert "v0003 serves 25% of users" in frame.locator("#canary").inner_text()

    browser_page.console[:] = [m for m in browser_page.console if AIRFLOW_FRAME_NOTICE not in m]
    browser_page.assert_clean()

    # The whole page for the README: the frame's content fits a window tall enough for it.
    height = frame.locator("html").evaluate("e => e.scrollHeight")
    page.set_viewport_size({"width": 1280, "height": height + 40})
    # Written where the README shows it only when that file is missing, so a test run leaves git clean
    # (the page shows read and registration times); delete it to take a new one.
    shot = SCREENSHOT if not SCREENSHOT.exists() else tmp_path / SCREENSHOT.name
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000  # a drawn page, not a blank one
    page.set_viewport_size({"width": 1280, "height": 900})

    # A run link opens the run in Airflow's own UI, not a second Airflow inside the frame.
    link = frame.locator("#versions-table tbody tr[data-version=v0001] a.run").first
    assert link.inner_text() == "candidate"
    link.click()
    page.wait_for_url(f"{procs.base_url}/dags/train_model/runs/**")
    assert page.url.endswith("/runs/asset_triggered__2026-03-02T00%3A00%3A00%2B00%3A00")


def test_a_browser_without_a_login_is_refused(airflow, browser) -> None:
    procs, _ = airflow
    context = browser.new_context()
    try:
        page = context.new_page()
        for path in ("/flywheel/", "/flywheel/api/overview", "/flywheel/static/flywheel.js"):
            response = page.goto(f"{procs.base_url}{path}")
            assert response is not None and response.status == 401, path
            assert "v0001" not in page.content()
    finally:
        context.close()
