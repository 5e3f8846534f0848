"""A ``retrain_requested`` asset event starts ``train_model`` through a real Airflow scheduler, and the
run registers one candidate whose validation AUC on simulated data is clearly better than chance."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from flywheel.config import Settings
from flywheel.feature_store.store import apply_and_materialize
from flywheel.features.dbt import run_dbt
from flywheel.ingest.load import load_events
from flywheel.local.processes import AirflowProcesses, admin_api, airflow_cli
from flywheel.registry import list_versions
from flywheel.simulate import SimulationConfig, simulate
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.published import publish_hours

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

START = datetime(2026, 1, 1)
HOURS = 30


def test_retrain_request_trains_and_registers_a_candidate_once(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Features as build_features leaves them (its own run through the scheduler is tested elsewhere).
    simulate(SimulationConfig(start=START, hours=HOURS, impressions_per_hour=600, seed=11), home.landing_dir)
    load_events(START, START + timedelta(hours=HOURS + 1), settings=home)
    run_dbt(["build"], home)
    apply_and_materialize(START, START + timedelta(hours=HOURS + 1), settings=home)
    publish_hours(open_warehouse(home.warehouse_url), START, START + timedelta(hours=HOURS), "test")
    # A small search: scheduled runs take the DAG's defaults, which a deployment sets from the environment.
    monkeypatch.setenv("FLYWHEEL_TRAIN_BUDGET", "3")
    monkeypatch.setenv("FLYWHEEL_TRAIN_MAX_EPOCHS", "3")
    # Drift as the only trigger: unpausing a weekly schedule would also run last Monday's interval.
    monkeypatch.setenv("FLYWHEEL_TRAIN_CRON", "")

    window_end = (START + timedelta(hours=HOURS)).isoformat()
    with AirflowProcesses(
        home, setup=lambda env: airflow_cli(["dags", "unpause", "train_model"], env)
    ) as procs:
        api = admin_api(procs)
        api.emit_asset_event("retrain_requested", {"window_end": window_end, "reason": "test"})
        runs = api.wait_for_runs("train_model", 1, timeout=900, check=procs.check_alive)
        run = runs[0]
        log = api.task_log("train_model", run["dag_run_id"], "register_candidate")
        train_log = api.task_log("train_model", run["dag_run_id"], "train")
        api.close()

    assert run["run_type"] == "asset_triggered" and run["state"] == "success"
    versions = list_versions(open_warehouse(home.warehouse_url))
    assert len(versions) == 1 and versions[0].status == "candidate"
    auc = versions[0].metrics["val_auc"]
    assert auc > 0.6, f"validation AUC {auc:.3f} is not clearly above chance"
    assert f"candidate {versions[0].version}: validation AUC {auc:.4f}" in log
    assert "trial" in train_log.lower()  # the search's progress streamed into the task log
