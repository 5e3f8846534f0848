"""``ingest_events`` → ``raw_events`` asset → ``build_features`` through a real Airflow scheduler.

The asset event starts the feature DAG; its gates, one task per dbt model and Feast's materialization
all run as real tasks, and the online store then serves what the marts hold.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flywheel.config import Settings
from flywheel.feature_store.store import online_features
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.simulate import SimulationConfig, simulate
from flywheel.warehouse import open_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

START = datetime(2026, 1, 1)
HOURS = 4


def test_raw_events_start_build_features_which_publishes_online_features(home: Settings) -> None:
    simulate(SimulationConfig(start=START, hours=HOURS, impressions_per_hour=400, seed=5), home.landing_dir)
    start = START.replace(tzinfo=UTC)

    def setup(env):
        queue_backfill(
            env,
            "ingest_events",
            start,
            start + timedelta(hours=HOURS - 1),
            unpause=["ingest_events", "build_features"],
        )

    with AirflowProcesses(home, setup=setup) as procs:
        api = admin_api(procs)
        api.wait_for_runs("ingest_events", HOURS, run_type="backfill", timeout=600, check=procs.check_alive)
        _ti, published = api.wait_for_task_result(
            "build_features",
            "publish_features",
            lambda value: (
                bool(value) and datetime.fromisoformat(value["end"]) >= START + timedelta(hours=HOURS)
            ),
            timeout=900,
            check=procs.check_alive,
        )
        runs = api.dag_runs("build_features")
        first = runs[0]
        ti = api.task_instances("build_features", run_id=first["dag_run_id"])
        api.close()

    assert first["run_type"] == "asset_triggered"
    task_ids = {t["task_id"] for t in ti}
    assert {
        "gate_raw_events",
        "dbt_models.user_features",
        "gate_feature_marts",
        "publish_features",
    } <= task_ids
    assert all(t["state"] == "success" for t in ti)
    assert published["materialized"]["user_features"] > 0

    wh = open_warehouse(home.warehouse_url)
    latest = wh.read_arrow(
        "select user_id, user_impressions_24h, feature_ts from marts.user_features "
        "where feature_ts = (select max(feature_ts) from marts.user_features) order by user_id limit 5"
    ).to_pylist()
    assert latest
    served = online_features(
        [r["user_id"] for r in latest],
        [1] * len(latest),
        as_of=latest[0]["feature_ts"] + timedelta(minutes=30),
    )
    assert served["user_impressions_24h"] == [r["user_impressions_24h"] for r in latest]
