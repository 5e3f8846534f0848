"""``ingest_events`` through a real Airflow (scheduler, dag-processor, api-server, LocalExecutor).

Run twice: Airflow on SQLite with the DuckDB warehouse (the embedded default), and Airflow's metadata
database plus the warehouse on the local PostgreSQL server (the production shape).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial

import pyarrow.parquet as pq
import pytest

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS, hour_dir
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.simulate import SimulationConfig, simulate
from flywheel.warehouse import open_warehouse

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

START = datetime(2026, 1, 1)
HOURS = 3


def _landed_rows(settings: Settings, table: str) -> int:
    return sum(
        pq.read_metadata(p).num_rows
        for h in range(HOURS)
        for p in hour_dir(settings.landing_dir, table, START + timedelta(hours=h)).glob("*.parquet")
    )


@pytest.mark.parametrize("backend", ["sqlite+duckdb", "postgres+postgres"])
def test_backfill_loads_every_hour_through_the_scheduler(
    backend: str, home: Settings, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    metadata_url = None
    if backend.startswith("postgres"):
        warehouse_url = request.getfixturevalue("postgres_url")
        monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", warehouse_url)
        # Airflow's metadata in its own fresh database, as in production.
        metadata_url = request.getfixturevalue("postgres_url").replace(
            "postgresql://", "postgresql+psycopg2://"
        )
    settings = get_settings()
    simulate(
        SimulationConfig(start=START, hours=HOURS, impressions_per_hour=300, seed=3), settings.landing_dir
    )
    expected = {table: _landed_rows(settings, table) for table in EVENT_SCHEMAS}
    broken = hour_dir(settings.landing_dir, "orders", START + timedelta(hours=1)) / "part-broken.parquet"
    broken.write_bytes(b"PAR1 not really parquet")

    start = START.replace(tzinfo=UTC)
    backfill = partial(
        queue_backfill, dag_id="ingest_events", start=start, end=start + timedelta(hours=HOURS - 1)
    )
    with AirflowProcesses(
        settings, metadata_url=metadata_url, setup=lambda env: backfill(env, unpause=["ingest_events"])
    ) as procs:
        api = admin_api(procs)
        runs = api.wait_for_runs(
            "ingest_events", HOURS, run_type="backfill", timeout=600, check=procs.check_alive
        )
        assert sorted(r["state"] for r in runs) == ["success"] * HOURS
        broken_run = next(r for r in runs if r["logical_date"].startswith("2026-01-01T01:00"))
        task_log = api.task_log("ingest_events", broken_run["dag_run_id"], "load_events")
        api.close()

    assert "part-broken.parquet" in task_log and "unreadable Parquet file" in task_log
    wh = open_warehouse(settings.warehouse_url)
    for table, n in expected.items():
        assert wh.read_arrow(f"select count(*) as n from raw.{table}").column("n")[0].as_py() == n
    quarantined = wh.read_arrow("select file_path, reason from quarantine.files").to_pylist()
    assert [q["file_path"].rsplit("/", 1)[1] for q in quarantined] == ["part-broken.parquet"]
    assert (settings.quarantine_dir / broken.relative_to(settings.landing_dir)).exists()
