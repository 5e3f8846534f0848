"""The project's DAGs in Airflow's own UI, as an operator meets them: a real Airflow (scheduler,
dag-processor, triggerer, api-server) over a copy of dags/, and Chromium signed in through the login form.

The DAG list shows all six DAGs and the dashboard no import error (and does show one for a broken file, so
that check can fail); the asset graph draws the retraining chain detect_drift -> retrain_requested ->
train_model -> model_candidate -> evaluate_model -> model_blessed -> deploy_model; a run triggered from the
trigger form, with a parameter typed into it, runs to success with that parameter."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest

from flywheel.config import PROJECT_ROOT, get_settings
from flywheel.local.api import AirflowAPI
from flywheel.local.processes import AirflowProcesses, admin_api

# Slow as the other tests of real services: preparing and starting Airflow takes about a minute here.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

DAGS = ("build_features", "deploy_model", "detect_drift", "evaluate_model", "ingest_events", "train_model")
#: The retraining half of the loop, as the asset graph must draw it (DAG, asset, DAG, ...).
CHAIN = (
    "detect_drift",
    "retrain_requested",
    "train_model",
    "model_candidate",
    "evaluate_model",
    "model_blessed",
    "deploy_model",
)
#: What the dashboard says when a DAG file fails to import (Airflow's English UI text).
IMPORT_ERROR_TEXT = "Dag Import Error"
#: Per node of the asset graph: its id ("dag:train_model", "asset:3") and its label.
NODES = """() => [...document.querySelectorAll(".react-flow__node")].map(n => [n.dataset.id, n.innerText])"""
EDGES = """() => [...document.querySelectorAll("[aria-roledescription=edge]")].map(e => e.dataset.id)"""


@pytest.fixture(scope="module")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AirflowProcesses, AirflowAPI, Path]]:
    """Airflow over a copy of dags/ (so a test can add a broken file), the admin's client, the DAG folder."""
    root = tmp_path_factory.mktemp("airflow-ui")
    dags = root / "dags"
    shutil.copytree(PROJECT_ROOT / "dags", dags, ignore=shutil.ignore_patterns("__pycache__"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLYWHEEL_HOME", str(root / "home"))
        patch.delenv("FLYWHEEL_WAREHOUSE_URL", raising=False)
        settings = get_settings()
        with AirflowProcesses(settings, dags_folder=dags) as procs:
            api = admin_api(procs)
            procs.wait_for(lambda: _parsed(api) >= len(DAGS), "the DAGs to be parsed", timeout=240)
            yield procs, api, dags
            api.close()


def _parsed(api: AirflowAPI) -> int:
    try:
        return len(api.dags())
    except httpx.HTTPError:
        return 0


def _sign_in(page, procs: AirflowProcesses, api: AirflowAPI) -> None:
    page.goto(f"{procs.base_url}/auth/login?next=%2F")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(api.password)
    page.locator("button[type=submit]").click()
    page.wait_for_url(lambda url: "/auth/" not in url)


@pytest.fixture
def allowed_urls(allowed_urls: tuple[str, ...], airflow) -> tuple[str, ...]:
    return (*allowed_urls, f"{airflow[0].base_url}/")


def test_the_dag_list_shows_every_dag_and_no_import_error(airflow, browser_page) -> None:
    procs, api, dags = airflow
    page = browser_page.page
    _sign_in(page, procs, api)
    page.goto(f"{procs.base_url}/dags")
    page.get_by_text(f"{len(DAGS)} Dags").wait_for(timeout=30_000)
    for dag_id in DAGS:
        assert page.get_by_role("link", name=dag_id, exact=True).count() == 1, dag_id
    page.goto(f"{procs.base_url}/")
    page.get_by_role("link", name="Flywheel").wait_for(timeout=30_000)  # the dashboard has drawn
    page.wait_for_load_state("networkidle")
    assert page.get_by_text(IMPORT_ERROR_TEXT).count() == 0
    assert api.import_errors() == []

    # The same check sees a DAG file that fails to import.
    # Airflow's safe mode parses only files that mention both "airflow" and "dag".
    (dags / "broken_dag.py").write_text("from airflow.sdk import dag\nimport flywheel.no_such_module\n")
    try:
        errors = procs.wait_for(lambda: api.import_errors(), "the broken file's import error", timeout=120)
        assert "broken_dag.py" in errors[0]["filename"]
        page.reload()
        page.get_by_text(IMPORT_ERROR_TEXT).first.wait_for(timeout=30_000)
    finally:
        (dags / "broken_dag.py").unlink()
    browser_page.assert_clean()


def test_the_asset_graph_draws_the_retraining_chain(airflow, browser_page) -> None:
    procs, api, _ = airflow
    page = browser_page.page
    _sign_in(page, procs, api)
    page.goto(f"{procs.base_url}/assets")
    page.get_by_role("link", name="retrain_requested", exact=True).click()
    for name in CHAIN:  # drawn on the canvas, not just present in the page
        page.locator(".react-flow__node").filter(has_text=name).first.wait_for(timeout=30_000)
    names = {node_id: text.strip() for node_id, text in page.evaluate(NODES)}
    edges = set(page.evaluate(EDGES))
    by_name = {name: node_id for node_id, name in names.items()}
    assert set(CHAIN) <= set(by_name), names
    for upstream, downstream in zip(CHAIN, CHAIN[1:], strict=False):
        edge = f"{by_name[upstream]}-{by_name[downstream]}"
        assert edge in edges, f"no edge {upstream} -> {downstream} in the asset graph ({sorted(edges)})"
    browser_page.assert_clean()


def test_a_run_triggered_from_the_form_runs_with_its_parameter(airflow, browser_page) -> None:
    procs, api, _ = airflow
    page = browser_page.page
    _sign_in(page, procs, api)
    page.goto(f"{procs.base_url}/dags/detect_drift")
    page.get_by_role("button", name="Trigger").first.click()
    dialog = page.get_by_role("dialog")
    # The form's field for the DAG's `window_end` Param; this home has no model in service, so the run
    # profiles nothing and requests nothing, and succeeds.
    dialog.locator("input#element_window_end").fill("2026-01-02T00:00:00+00:00")
    dialog.get_by_role("button", name="Trigger").click()
    page.wait_for_url("**/dags/detect_drift/runs/manual__*", timeout=30_000)
    run_id = unquote(page.url.rsplit("/runs/", 1)[1])
    run = procs.wait_for(
        lambda: (r := api.dag_run("detect_drift", run_id))["state"] in ("success", "failed") and r,
        f"detect_drift run {run_id}",
        timeout=300,
        every=2.0,
    )
    assert run["state"] == "success", json.dumps(run, default=str)
    assert run["conf"] == {"window_end": "2026-01-02T00:00:00+00:00"}
    assert run["run_type"] == "manual"
    browser_page.assert_clean()
