"""Drift through a real Airflow: ``detect_drift`` runs over the hours around an interest shift, fires
within 2 windows of the onset, and its ``retrain_requested`` event starts ``train_model``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from flywheel.config import Settings
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.simulate.scenario import START, parse_ts, prepare_drift_world, retrain_decision_time

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_drift_fires_and_starts_training(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    prepare_drift_world(home, "interest_shift", hours=52, impressions_per_hour=600)
    monkeypatch.setenv("FLYWHEEL_TRAIN_CRON", "")  # drift as train_model's only trigger in this test
    monkeypatch.setenv("FLYWHEEL_TRAIN_BUDGET", "1")
    monkeypatch.setenv("FLYWHEEL_TRAIN_MAX_EPOCHS", "1")
    first = START.replace(tzinfo=UTC) + timedelta(hours=46)  # windows [46,47) .. [50,51)

    def setup(env):
        queue_backfill(
            env, "detect_drift", first, first + timedelta(hours=4), unpause=["detect_drift", "train_model"]
        )

    with AirflowProcesses(home, setup=setup) as procs:
        api = admin_api(procs)
        # Followed through the request task's result, never by listing asset events (apache/airflow#71360).
        ti, request = api.wait_for_task_result(
            "detect_drift", "request_retrain", lambda value: bool(value), timeout=600, check=procs.check_alive
        )
        decided = retrain_decision_time(api, ti["dag_run_id"])
        deadline = datetime.now(UTC) + timedelta(minutes=5)
        training: list[dict] = []
        while not training and datetime.now(UTC) < deadline:
            training = [r for r in api.dag_runs("train_model") if r.get("start_date")]
            time.sleep(1)
        api.close()

    window_end = parse_ts(request["window_end"] + "+00:00")
    onset = START.replace(tzinfo=UTC) + timedelta(hours=48)
    assert onset < window_end <= onset + timedelta(hours=2), request
    assert "category" in request["features"]
    assert training, "train_model did not start from the retrain_requested event"
    run = training[0]
    assert run["run_type"] == "asset_triggered"
    delay = (parse_ts(run["start_date"]) - decided).total_seconds()
    print(f"drift decision -> train_model start: {delay:.1f} s (target < 30 s)")
    assert 0 < delay < 60


def test_a_stationary_world_never_requests_training(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # Every hour after the model's training window, checked by the scheduler's own runs: no request.
    prepare_drift_world(home, "none", hours=72, impressions_per_hour=600)
    monkeypatch.setenv("FLYWHEEL_TRAIN_CRON", "")
    first = START.replace(tzinfo=UTC) + timedelta(hours=48)  # windows [48,49) .. [71,72)

    def setup(env):
        queue_backfill(
            env, "detect_drift", first, first + timedelta(hours=23), unpause=["detect_drift", "train_model"]
        )

    with AirflowProcesses(home, setup=setup) as procs:
        api = admin_api(procs)
        runs = api.wait_for_runs(
            "detect_drift", 24, run_type="backfill", timeout=900, check=procs.check_alive
        )
        requests = api.task_instances("detect_drift", "request_retrain", state="success")
        training = api.dag_runs("train_model")
        api.close()

    assert sorted(r["state"] for r in runs) == ["success"] * 24
    assert requests == [] and training == []
