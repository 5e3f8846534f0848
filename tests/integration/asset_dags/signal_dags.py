"""Test-only Airflow DAG: a consumer started by an asset whose task fails once and retries, or fails for
good until an operator repairs the cause and clears the run (tests/integration/test_asset_retries.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import Asset, dag, task

SIGNAL = Asset("flywheel_test_signal")


@dag(
    schedule=[SIGNAL],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,  # a second event queues a run (start_date NULL) while the first one retries
    default_args={"retries": 2, "retry_delay": timedelta(seconds=2)},
)
def consume_signal():
    @task
    def consume(triggering_asset_events=None, ti=None):
        from airflow.sdk.exceptions import AirflowFailException

        extras = [dict(e.extra) for e in triggering_asset_events[SIGNAL]]
        plan = extras[0]["plan"]
        if plan == "retry" and ti.try_number == 1:
            raise RuntimeError("planned failure on the first try")
        if plan == "retry":
            # Hold the retry until the test has seen the next event's run queued behind this one.
            import time

            proceed = Path(extras[0]["proceed"])
            deadline = time.monotonic() + 300
            while not proceed.exists() and time.monotonic() < deadline:
                time.sleep(0.5)
        if plan == "fail" and Path(extras[0]["blocker"]).exists():
            raise AirflowFailException(f"blocked by {extras[0]['blocker']}: remove it and clear the run")
        return {"extras": extras, "try_number": ti.try_number}

    consume()


consume_signal()
