"""Drift through a real Airflow: in a stationary world ``detect_drift`` never requests training.

(That drift fires within 2 windows of an interest shift and its ``retrain_requested`` event starts
``train_model`` within a minute is checked by the loop's end-to-end test, tests/integration/
test_loop_postgres.py.)"""

from __future__ import annotations

from datetime import UTC, timedelta

import pytest

from flywheel.config import Settings
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.simulate.scenario import START, prepare_drift_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


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
