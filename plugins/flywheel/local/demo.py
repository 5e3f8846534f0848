"""``make demo`` and ``make up``: the loop on the embedded defaults, driven through a real Airflow."""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from functools import partial

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS, naive_utc
from flywheel.local.api import AirflowAPI
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

#: The demo replays a fixed stretch of simulated time, so its output is the same on every machine.
DEMO_START = datetime(2026, 1, 1)
#: The DAGs the demo lets the scheduler run (new DAGs start paused).
DEMO_DAGS = ("ingest_events", "build_features", "detect_drift", "train_model", "evaluate_model")
#: Training settings for the demo's two searches (a deployment sets its own).
DEMO_TRAINING_ENV = {
    "FLYWHEEL_TRAIN_CRON": "",
    "FLYWHEEL_TRAIN_BUDGET": "4",
    "FLYWHEEL_TRAIN_MAX_EPOCHS": "4",
}


def _say(message: str) -> None:
    print(f"[flywheel demo] {message}", flush=True)


SUMMARY_TABLES = [
    *(f"raw.{t}" for t in EVENT_SCHEMAS),
    "raw.loads",
    "quarantine.files",
    "marts.user_features",
    "marts.item_features",
    "marts.training_examples",
    "quarantine.validations",
    "features.published_hours",
    "registry.model_versions",
    "registry.evaluations",
    "monitoring.feature_drift",
    "monitoring.retrain_requests",
]


def table_counts(settings: Settings) -> dict[str, int]:
    """Rows per table of the loop, for the summary the demo prints."""
    warehouse = open_warehouse(settings.warehouse_url)
    counts = {}
    for table in SUMMARY_TABLES:
        if warehouse.table_exists(table):
            sql = render_sql("count_rows.sql", table=table)
            counts[table] = warehouse.read_arrow(sql).column("n")[0].as_py()
        else:
            counts[table] = 0
    return counts


def run_demo(
    hours: int = 72,
    seed: int = 7,
    impressions_per_hour: int = 2000,
    drift: str = "interest_shift",
    drift_at: int = 48,
) -> int:
    """The loop end to end: events -> ingest -> features -> a first model -> drift -> retraining."""
    from flywheel.simulate import SimulationConfig, simulate

    settings = get_settings()
    settings.ensure_dirs()
    _say(f"home: {settings.home}")
    t0 = time.monotonic()
    config = SimulationConfig(
        start=DEMO_START,
        hours=hours,
        drift=drift,
        drift_at=drift_at,
        seed=seed,
        impressions_per_hour=impressions_per_hour,
    )
    summary = simulate(config, landing_dir=settings.landing_dir)
    _say(
        f"simulated {hours} h ({drift} from hour {drift_at}): {summary['impressions']} impressions, "
        f"{summary['clicks']} clicks, {summary['orders']} orders in {time.monotonic() - t0:.1f}s"
    )
    # A small search, and drift as the only trigger of training (no weekly run on unpausing).
    for name, value in DEMO_TRAINING_ENV.items():
        os.environ.setdefault(name, value)
    start = DEMO_START.replace(tzinfo=UTC)
    _say("starting Airflow (scheduler, dag-processor, triggerer, api-server) ...")
    backfill = partial(
        queue_backfill, dag_id="ingest_events", start=start, end=start + timedelta(hours=hours - 1)
    )
    try:
        with AirflowProcesses(settings, setup=lambda env: backfill(env, unpause=DEMO_DAGS)) as procs:
            api = admin_api(procs)
            _say(
                f"Airflow is up at {procs.base_url} (user admin, password in "
                f"{settings.airflow_home}/simple_auth_manager_passwords.json.generated)"
            )
            _ingest_and_build_features(api, procs, hours)
            if drift != "none" and drift_at < hours:
                _first_model(api, procs, drift_at)
                _drift_and_retrain(api, procs, drift_at, hours)
            api.close()
    except (RuntimeError, TimeoutError) as exc:
        _say(f"FAILED: {exc}")
        _say(f"task logs: {settings.airflow_home}/logs (or the UI: make up)")
        return 1
    _print_summary(settings)
    _say(f"done in {time.monotonic() - t0:.0f}s")
    return 0


def _ingest_and_build_features(api: AirflowAPI, procs: AirflowProcesses, hours: int) -> None:
    _say(f"backfilling ingest_events for {hours} hourly intervals through the scheduler ...")
    runs = api.wait_for_runs(
        "ingest_events",
        hours,
        run_type="backfill",
        progress=lambda done, total, states: _say(f"  ingest_events: {done}/{total} runs done {states}"),
        check=procs.check_alive,
    )
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise RuntimeError(f"ingest_events run(s) failed: {', '.join(failed)}")
    demo_end = DEMO_START + timedelta(hours=hours)
    _say("waiting for build_features (gates, dbt models, Feast) to publish the last hour ...")
    _ti, published = api.wait_for_task_result(
        "build_features",
        "publish_features",
        lambda value: bool(value) and naive_utc(value["end"]) >= demo_end,
        check=procs.check_alive,
    )
    # A later run may still rebuild hours whose load finished after the publishing run looked: while it
    # runs, its hours are withdrawn from publication, so training and drift wait for it to finish.
    runs = _wait_until_idle(api, procs, "build_features")
    _say(
        f"  build_features: {len(runs)} run(s) {_states(runs)}; features published up to "
        f"{published['end']}: {published.get('materialized')}"
    )


def _wait_until_idle(api: AirflowAPI, procs: AirflowProcesses, dag_id: str, timeout: float = 1800) -> list:
    """The runs of ``dag_id`` once none is queued or running; fails when one failed."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        procs.check_alive()
        runs = api.dag_runs(dag_id)
        states = _states(runs)
        if states.get("failed"):
            raise RuntimeError(f"{dag_id} run(s) failed: see their task logs in the UI")
        if not states.get("queued") and not states.get("running"):
            return runs
        time.sleep(3)
    raise TimeoutError(f"{dag_id} still has runs going after {timeout:.0f}s")


def _wait_for_training(api: AirflowAPI, procs: AirflowProcesses, count: int) -> dict:
    """The ``register_candidate`` result of the newest of at least ``count`` finished train_model runs.

    Drift may start more runs than the demo asked for (a features event checks the newest hour too), so
    the runs still going are left alone and any failed one stops the demo.
    """
    runs = api.wait_for_runs("train_model", count, timeout=1800, check=procs.check_alive)
    failed = [r["dag_run_id"] for r in runs if r["state"] == "failed"]
    if failed:
        raise RuntimeError(f"train_model run(s) failed: {', '.join(failed)}")
    done = sorted((r for r in runs if r["state"] == "success"), key=lambda r: r["end_date"])
    return api.task_result("train_model", done[-1]["dag_run_id"], "register_candidate")


def _first_model(api: AirflowAPI, procs: AirflowProcesses, drift_at: int) -> None:
    window_end = DEMO_START + timedelta(hours=drift_at)
    _say(f"training the first model on the 24 h before hour {drift_at} (train_model, Ray Tune) ...")
    api.trigger("train_model", conf={"window_end": window_end.isoformat(), "window_hours": 24})
    registered = _wait_for_training(api, procs, 1)
    _say(f"  {_model_line(registered)}")
    _say(f"  {_verdict_line(_wait_for_verdict(api, procs, registered['version']))}")


def _drift_and_retrain(api: AirflowAPI, procs: AirflowProcesses, drift_at: int, hours: int) -> None:
    _say(f"detect_drift on the hours after the onset (hour {drift_at}) ...")
    for hour in range(drift_at + 1, min(drift_at + 4, hours + 1)):
        api.trigger("detect_drift", conf={"window_end": (DEMO_START + timedelta(hours=hour)).isoformat()})
    # Followed through the request task's result: the warehouse has one writer, and listing asset events
    # fails in Airflow 3.3.2 while the run the event created is queued.
    _ti, request = api.wait_for_task_result(
        "detect_drift", "request_retrain", lambda value: bool(value), check=procs.check_alive
    )
    drifting = ", ".join(f"{f} PSI {v:.2f}" for f, v in request["features"].items())
    _say(f"  drift confirmed in the window ending {request['window_end']}: {drifting}")
    _say("  retrain_requested -> train_model (asset-triggered) ...")
    registered = _wait_for_training(api, procs, 2)
    _say(f"  {_model_line(registered)}")
    _say(f"  {_verdict_line(_wait_for_verdict(api, procs, registered['version']))}")


def _wait_for_verdict(api: AirflowAPI, procs: AirflowProcesses, version: str) -> dict:
    """The ``judge`` result of ``version``: model_candidate -> evaluate_model (asset-triggered)."""
    _say(f"  model_candidate -> evaluate_model judges {version} on the held-out hours ...")
    _ti, verdict = api.wait_for_task_result(
        "evaluate_model",
        "judge",
        lambda value: isinstance(value, dict) and value.get("version") == version,
        timeout=900,
        check=procs.check_alive,
    )
    return verdict


def _verdict_line(verdict: dict) -> str:
    against = f"against {verdict['baseline']}" if verdict.get("baseline") else "as the first model"
    line = f"{verdict['version']} {verdict['status']} {against}"
    if verdict.get("failed"):
        line += f" (failed: {', '.join(verdict['failed'])})"
    return f"{line}; report {verdict.get('report') or 'not written'}"


def _model_line(registered: dict) -> str:
    auc = registered.get("val_auc")
    score = f"validation AUC {auc:.4f}" if auc is not None else "no validation AUC"
    return f"registered candidate {registered.get('version')}: {score}"


def _print_summary(settings: Settings) -> None:
    _say("warehouse row counts:")
    for table, n in table_counts(settings).items():
        print(f"    {table:<28} {n:>10,}")


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
