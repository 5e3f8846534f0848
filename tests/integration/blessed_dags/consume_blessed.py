"""Test-only Airflow DAG: stands where ``deploy_model`` will, started by ``model_blessed``, and returns the
events it was handed, so a test sees what ``evaluate_model`` announced (never by listing asset events:
apache/airflow#71360)."""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import dag, task

from flywheel.assets import MODEL_BLESSED


@dag(schedule=[MODEL_BLESSED], start_date=datetime(2026, 1, 1, tzinfo=UTC), catchup=False, max_active_runs=1)
def consume_blessed():
    @task
    def consume(triggering_asset_events=None):
        return [dict(e.extra) for e in triggering_asset_events[MODEL_BLESSED]]

    consume()


consume_blessed()
