"""``make demo`` and ``make up``: the loop on the embedded defaults, driven through a real Airflow."""

from __future__ import annotations

import logging
import signal
import time
from datetime import UTC, datetime, timedelta

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.warehouse import open_warehouse

log = logging.getLogger(__name__)

#: The demo replays a fixed stretch of simulated time, so its output is the same on every machine.
DEMO_START = datetime(2026, 1, 1)
#: The DAGs the demo lets the scheduler run (new DAGs start paused).
DEMO_DAGS = ("ingest_events", "build_features")


def _say(message: str) -> None:
    print(f"[flywheel demo] {message}", flush=True)


SUMMARY_TABLES = [
    *(f"raw.{t}" for t in EVENT_SCHEMAS),
    "quarantine.files",
    "marts.user_features",
    "marts.item_features",
    "marts.training_examples",
    "quarantine.validations",
]


def table_counts(settings: Settings) -> dict[str, int]:
    """Rows per table of the loop, for the summary the demo prints."""
    warehouse = open_warehouse(settings.warehouse_url)
    counts = {}
    for table in SUMMARY_TABLES:
        if warehouse.table_exists(table):
            counts[table] = warehouse.read_arrow(f"select count(*) as n from {table}").column("n")[0].as_py()
        else:
            counts[table] = 0
    return counts


def run_demo(hours: int = 72, seed: int = 7, impressions_per_hour: int = 2000) -> int:
    from flywheel.simulate import SimulationConfig, simulate

    settings = get_settings()
    settings.ensure_dirs()
    _say(f"home: {settings.home}")
    t0 = time.monotonic()
    summary = simulate(
        SimulationConfig(start=DEMO_START, hours=hours, seed=seed, impressions_per_hour=impressions_per_hour),
        landing_dir=settings.landing_dir,
    )
    _say(
        f"simulated {hours} h: {summary['impressions']} impressions, {summary['clicks']} clicks, "
        f"{summary['orders']} orders in {time.monotonic() - t0:.1f}s -> {settings.landing_dir}"
    )
    start = DEMO_START.replace(tzinfo=UTC)
    _say("starting Airflow (scheduler, dag-processor, triggerer, api-server) ...")
    with AirflowProcesses(
        settings,
        setup=lambda env: queue_backfill(
            env, "ingest_events", start, start + timedelta(hours=hours - 1), unpause=DEMO_DAGS
        ),
    ) as procs:
        api = admin_api(procs)
        _say(
            f"Airflow is up at {procs.base_url} (user admin, password in "
            f"{settings.airflow_home}/simple_auth_manager_passwords.json.generated)"
        )
        _say(f"backfilling ingest_events for {hours} hourly intervals through the scheduler ...")
        runs = api.wait_for_runs(
            "ingest_events",
            hours,
            run_type="backfill",
            progress=lambda done, total, states: _say(f"  ingest_events: {done}/{total} runs done {states}"),
            check=procs.check_alive,
        )
        failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
        if not failed:
            demo_end = (start + timedelta(hours=hours)).replace(tzinfo=None)
            _say("waiting for build_features (gates, dbt models, Feast) to publish the last hour ...")
            published = api.wait_for_asset_event(
                lambda e: datetime.fromisoformat((e.get("extra") or {}).get("end", "1970-01-01")) >= demo_end,
                watch_dag="build_features",
                source_dag_id="build_features",
                check=procs.check_alive,
            )
            runs = api.dag_runs("build_features")
            _say(
                f"  build_features: {len(runs)} run(s) {_states(runs)}; features published up to "
                f"{published['extra']['end']}: {published['extra'].get('materialized')}"
            )
        api.close()
    counts = table_counts(settings)
    _say("warehouse row counts:")
    for table, n in counts.items():
        print(f"    {table:<22} {n:>10,}")
    if failed:
        _say(f"{len(failed)} run(s) failed: {', '.join(failed)}; see {settings.airflow_home}/logs")
        return 1
    _say(f"done in {time.monotonic() - t0:.0f}s")
    return 0


def _states(runs: list[dict]) -> dict[str, int]:
    states: dict[str, int] = {}
    for run in runs:
        states[run["state"]] = states.get(run["state"], 0) + 1
    return states


def run_up(port: int = 8080) -> int:
    """Start Airflow for this home in the foreground; Ctrl-C stops every component."""
    settings = get_settings()
    procs = AirflowProcesses(settings, port=port)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        procs.start()
        api = admin_api(procs)
        print(
            f"Airflow UI: {procs.base_url}  user: admin  password: {api.password}\n"
            f"DAGs from {settings.dags_folder}; home {settings.home}. Ctrl-C stops it.",
            flush=True,
        )
        while not stop["now"]:
            procs.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        procs.stop()
    return 0
