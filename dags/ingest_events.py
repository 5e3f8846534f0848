"""
### ingest_events

Loads each hour of landed event files (`landing/<table>/date=…/hour=…/*.parquet`) into `raw.impressions`,
`raw.clicks`, `raw.orders` and `raw.predictions` (the gateway's log of served scores), replacing the hour's
partition in one transaction, then updates the `raw_events` asset. A file that cannot be read or has the
wrong schema is moved to the quarantine folder, recorded in `quarantine.files` against its hour with the
reason and named in the task log; the hour's good files still load, and that hour's raw gate in
`build_features` fails until a repaired file loads under its name.

Runs hourly for the hour just ended (a data-interval timetable); backfill a range from the UI or with
`airflow backfill create --dag-id ingest_events --from-date … --to-date …`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import CronDataIntervalTimetable, dag, task

from flywheel.assets import RAW_EVENTS


@dag(
    # Each run owns the hour [data_interval_start, data_interval_end): a cron *data-interval* timetable.
    schedule=CronDataIntervalTimetable("0 * * * *", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=4,
    tags=["flywheel", "ingest"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    doc_md=__doc__,
)
def ingest_events():
    # Loading comes first in the shared warehouse slot: during a backfill, build_features then waits and
    # handles the accumulated hours in one run instead of interleaving with every hour's load.
    @task(pool="warehouse", outlets=[RAW_EVENTS], priority_weight=100, weight_rule="absolute")
    def load_events(data_interval_start=None, data_interval_end=None, run_id=None, outlet_events=None):
        from flywheel.ingest.tasks import load_events

        loaded = load_events(data_interval_start, data_interval_end, run_id)
        outlet_events[RAW_EVENTS].extra = loaded
        return loaded

    load_events()


ingest_events()
