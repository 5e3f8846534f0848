"""
### build_features

Turns each new hour of `raw.*` into features, and stops bad data on the way:

1. `gate_raw_events` — Great Expectations suites (`expectations/raw_*.json`) on every new hour; a failing
   hour is moved to `quarantine.raw_*` with its validation result and the run stops here, without retries
   (bad data fails now; warehouse errors are retried), as does an hour with a file ingest refused;
2. `dbt_models` — the dbt project in `dbt/`, one task per model and its tests
   (staging → intermediate → marts);
3. `gate_feature_marts` — suites on the new snapshots of `marts.user_features`, `marts.item_features`
   and `marts.training_examples`;
4. `publish_features` — Feast apply and materialize of the new snapshots; updates the `features` asset.

Started by the `raw_events` asset. To re-run an interval by hand (after re-landing repaired files and
re-running `ingest_events`), trigger with `interval_start` / `interval_end`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from flywheel.assets import FEATURES, RAW_EVENTS
from flywheel.features.tasks import dbt_task_group


@dag(
    schedule=[RAW_EVENTS],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["flywheel", "features"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "interval_start": Param(None, type=["null", "string"], description="manual runs: ISO start"),
        "interval_end": Param(None, type=["null", "string"], description="manual runs: ISO end"),
    },
    doc_md=__doc__,
)
def build_features():
    @task(pool="warehouse")
    def gate_raw_events(triggering_asset_events=None, params=None, run_id=None):
        from flywheel.features.tasks import gate_raw_events

        events = triggering_asset_events[RAW_EVENTS] if triggering_asset_events else []
        return gate_raw_events(events, params, run_id)

    @task(pool="warehouse")
    def gate_feature_marts(interval, run_id=None):
        from flywheel.features.tasks import gate_feature_marts

        return gate_feature_marts(interval, run_id)

    @task(pool="warehouse", outlets=[FEATURES])
    def publish_features(interval, run_id=None, outlet_events=None):
        from flywheel.features.tasks import publish_features

        published = publish_features(interval, run_id)
        outlet_events[FEATURES].extra = published
        return published

    interval = gate_raw_events()
    # One task per dbt model (dbt build: unit tests, model, data tests), wired from dbt's manifest; each
    # receives the run's interval, so a rerun of an old interval rebuilds it (a skipped gate skips them).
    dbt_models = dbt_task_group("dbt_models", interval=interval, pool="warehouse")
    checked = gate_feature_marts(interval)
    interval >> dbt_models >> checked
    publish_features(checked)


build_features()
