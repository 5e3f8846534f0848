"""``make demo`` and ``make up``: the loop on the embedded defaults, driven through a real Airflow."""

from __future__ import annotations

import logging
import os
import signal
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS, naive_utc
from flywheel.local import story
from flywheel.local.api import FINISHED, AirflowAPI
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.local.story import Progress
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


def plan_windows(hours: int, drift_at: int, held_out_hours: int) -> dict[str, tuple[int, int]]:
    """The demo's windows in hours since the start: the first model's training window, the pre-drift hours
    it is scored on (never trained on), and the newest hours the gate judges every candidate on.

    Raises ``ValueError`` naming the flag when the world is too short for them."""
    first_end = drift_at - held_out_hours
    first = (max(0, first_end - 24), first_end)
    if first[1] - first[0] < 12:
        raise ValueError(
            f"--drift-at {drift_at} leaves {max(0, first[1] - first[0])} hours before the drift for the "
            f"first model's training window (it also keeps {held_out_hours} hours before the onset to "
            f"score it on); use --drift-at {held_out_hours + 12} or more"
        )
    if hours - drift_at < held_out_hours + 12:
        raise ValueError(
            f"--hours {hours} leaves {hours - drift_at} hours after the drift at {drift_at}: retraining "
            f"needs {held_out_hours + 12} or more (12 to learn from, {held_out_hours} to judge on); "
            f"use --hours {drift_at + held_out_hours + 12} or more"
        )
    return {
        "first_training": first,
        "before_drift": (first_end, drift_at),
        "after_drift": (hours - held_out_hours, hours),
    }


def run_demo(
    hours: int = 72,
    seed: int = 7,
    impressions_per_hour: int = 2000,
    drift: str = "interest_shift",
    drift_at: int = 48,
    max_retrains: int = 4,
) -> int:
    """The loop end to end: events -> ingest -> features -> a first model -> drift, hour by hour ->
    retraining until the gate blesses a retrained model (at most ``max_retrains``); then the summary table,
    ``<home>/demo/summary.json`` and ``report.html``. 0 when the loop closed (the drift was detected and a
    retrained model judged), 1 when it did not, 130 on Ctrl-C or a kill; Airflow is stopped in every case."""
    from flywheel.simulate import SimulationConfig, simulate

    settings = get_settings()
    settings.ensure_dirs()
    progress = Progress()
    say = progress.say
    windows = plan_windows(hours, drift_at, settings.evaluation.held_out_hours) if drift != "none" else {}
    say(f"home: {settings.home}")
    summary: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "world": {
            "start": DEMO_START.isoformat(),
            "hours": hours,
            "seed": seed,
            "impressions_per_hour": impressions_per_hour,
            "drift": drift,
            "drift_at": drift_at,
        },
        "world_line": (
            f"{hours} simulated hours from {DEMO_START:%Y-%m-%d %H:%M}, {impressions_per_hour} "
            f"impressions an hour, seed {seed}, {drift} from hour {drift_at}"
        ),
        "psi_threshold": settings.drift.psi_threshold,
        "stages": progress.stages,
        "closed": False,
        "outcome": "not started",
    }
    models: dict[str, str] = {}
    code = 1
    # `kill` or a closed terminal stops the demo as Ctrl-C does: Airflow's components run in sessions of
    # their own, so nothing else would stop them.
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled} if _main_thread() else {}
    try:
        with progress.stage("simulate the marketplace"):
            config = SimulationConfig(
                start=DEMO_START,
                hours=hours,
                drift=drift,
                drift_at=drift_at,
                seed=seed,
                impressions_per_hour=impressions_per_hour,
            )
            made = simulate(config, landing_dir=settings.landing_dir)
            say(
                f"   {made['impressions']:,} impressions, {made['clicks']:,} clicks, "
                f"{made['orders']:,} orders ({summary['world_line']})"
            )
        # A small search, and drift as the only trigger of training (no weekly run on unpausing).
        for name, value in DEMO_TRAINING_ENV.items():
            os.environ.setdefault(name, value)
        start = DEMO_START.replace(tzinfo=UTC)
        backfill = partial(
            queue_backfill, dag_id="ingest_events", start=start, end=start + timedelta(hours=hours - 1)
        )
        procs = AirflowProcesses(settings, setup=lambda env: backfill(env, unpause=DEMO_DAGS))
        with progress.stage("start Airflow: scheduler, dag-processor, triggerer, api-server"):
            procs.__enter__()
        try:
            api = admin_api(procs)
            say(f"Airflow UI: {procs.base_url}  user: admin  password: {api.password}  (while the demo runs)")
            with progress.stage(f"ingest and build features for {hours} hours"):
                _ingest_and_build_features(api, procs, hours, say)
            if drift == "none":
                summary["outcome"] = "no drift was simulated: nothing to retrain"
            else:
                with progress.stage("train and judge the first model (v1)"):
                    models["v1"] = _first_model(api, procs, windows["first_training"], summary, say)
                with progress.stage("monitor hour by hour; retrain and judge on drift"):
                    recovered = _monitor_hourly(api, procs, drift_at, hours, max_retrains, summary, say)
                retrains = summary.get("retrains", [])
                if retrains:
                    models["v2"] = recovered or retrains[-1]["version"]
                summary["closed"] = bool(retrains)
                summary["outcome"] = _outcome(summary)
            api.close()
        finally:
            procs.stop()
        with progress.stage("score the models on held-out hours"):
            summary.update(_findings(settings, models, windows, drift_at))
        code = 0 if summary["closed"] or drift == "none" else 1
    except (RuntimeError, TimeoutError, ValueError) as exc:
        summary["outcome"] = f"failed: {exc}"
        say(f"FAILED: {exc}")
        say(f"task logs: {settings.airflow_home}/logs (or the UI: make up)")
    except KeyboardInterrupt:
        summary["outcome"] = "interrupted; every process the demo started was stopped"
        say("interrupted: Airflow stopped")
        code = 130
    finally:
        summary["seconds"] = round(progress.elapsed(), 1)
        summary["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
        for line in story.summary_lines(summary):
            print(line)
        # Written before the row counts are read: a warehouse that cannot be read still leaves the summary.
        json_path, html_path = story.write_outputs(summary, settings.home / "demo")
        _print_counts(settings)
        say(f"summary: {json_path}")
        say(f"report:  {html_path}")
        say("browse it all in the Airflow UI: make up (same home), then the Flywheel page")
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _outcome(summary: dict[str, Any]) -> str:
    retrains = summary.get("retrains", [])
    if not retrains:
        return "no retraining request after the onset: the drift was not detected"
    first, last = retrains[0], retrains[-1]
    detected = f"drift detected at hour {first['hour']}; {len(retrains)} retrain(s) judged"
    if last["status"] == "blessed":
        return f"{detected}: {last['version']} (requested at hour {last['hour']}) blessed to replace v1"
    return f"{detected}: the gate kept v1 (no retrained model was better)"


def _findings(
    settings: Settings, models: dict[str, str], windows: dict[str, tuple[int, int]], drift_at: int
) -> dict[str, Any]:
    """Scores of the models on the pre- and post-drift held-out hours, and what detect_drift recorded."""

    def hours(span: tuple[int, int]) -> tuple[datetime, datetime]:
        return DEMO_START + timedelta(hours=span[0]), DEMO_START + timedelta(hours=span[1])

    found: dict[str, Any] = {
        "drift": story.drift_findings(settings, DEMO_START, DEMO_START + timedelta(hours=drift_at))
    }
    if "v1" not in models:
        return found
    labels = {"v1": f"v1 {models['v1']}", "v2": f"retrained {models.get('v2')}"}
    scores = story.model_scores(
        settings, {labels["v1"]: models["v1"]}, {"before the drift": hours(windows["before_drift"])}
    )
    scores += story.model_scores(
        settings,
        {labels[name]: version for name, version in models.items()},
        {"after the drift": hours(windows["after_drift"])},
    )
    found["scores"] = scores
    after = {row["model"]: row for row in scores if row["window"] == "after the drift"}
    before, v1 = scores[0], after[labels["v1"]]
    ctr = f"ctr_at_{story.CTR_AT}"
    lines = [
        f"v1 before -> after the drift: AUC {before['auc']:.4f} -> {v1['auc']:.4f}, "
        f"CTR@{story.CTR_AT} {before[ctr]:.4f} -> {v1[ctr]:.4f}"
    ]
    if "v2" in models:
        v2 = after[labels["v2"]]
        lines.append(
            f"after the drift, {labels['v2']} against v1 on the same hours: "
            f"AUC {v2['auc'] - v1['auc']:+.4f}, "
            f"CTR@{story.CTR_AT} {v2[ctr] - v1[ctr]:+.4f}"
        )
    found["comparison_lines"] = lines
    return found


def _ingest_and_build_features(api: AirflowAPI, procs: AirflowProcesses, hours: int, say) -> None:
    say(f"   backfilling ingest_events for {hours} hourly intervals through the scheduler ...")
    runs = api.wait_for_runs(
        "ingest_events",
        hours,
        run_type="backfill",
        progress=lambda done, total, states: say(f"   ingest_events: {done}/{total} runs done {states}"),
        check=procs.check_alive,
    )
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise RuntimeError(f"ingest_events run(s) failed: {', '.join(failed)}")
    demo_end = DEMO_START + timedelta(hours=hours)
    say("   waiting for build_features (gates, dbt models, Feast) to publish the last hour ...")
    _ti, published = api.wait_for_task_result(
        "build_features",
        "publish_features",
        lambda value: bool(value) and naive_utc(value["end"]) >= demo_end,
        check=procs.check_alive,
    )
    # A later run may still rebuild hours whose load finished after the publishing run looked: while it
    # runs, its hours are withdrawn from publication, so training and drift wait for it to finish.
    runs = _wait_until_idle(api, procs, "build_features")
    say(
        f"   build_features: {len(runs)} run(s) {_states(runs)}; features published up to "
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


def _first_model(api: AirflowAPI, procs: AirflowProcesses, window: tuple[int, int], summary, say) -> str:
    window_end = DEMO_START + timedelta(hours=window[1])
    say(f"   train_model (Ray Tune) on hours [{window[0]}, {window[1]}) of the world, before the drift ...")
    api.trigger(
        "train_model", conf={"window_end": window_end.isoformat(), "window_hours": window[1] - window[0]}
    )
    registered = _wait_for_training(api, procs, 1)
    say(f"   {_model_line(registered)}")
    verdict = _wait_for_verdict(api, procs, registered["version"], say)
    summary.setdefault("verdicts", []).append(verdict)
    say(f"   {_verdict_line(verdict)}")
    if verdict["status"] != "blessed":
        raise RuntimeError(
            f"the gate rejected the first model {verdict['version']} "
            f"({', '.join(verdict.get('failed', []))}): "
            "nothing is in service for drift to be measured against; a larger world trains a better one "
            "(--impressions-per-hour, or a larger search: FLYWHEEL_TRAIN_BUDGET)"
        )
    return registered["version"]


def _monitor_hourly(
    api: AirflowAPI,
    procs: AirflowProcesses,
    drift_at: int,
    hours: int,
    max_retrains: int,
    summary: dict[str, Any],
    say,
) -> str | None:
    """``detect_drift`` on each hour after the onset in turn, as its hourly schedule runs it while the world
    moves on. An hour whose request starts ``train_model`` waits for that training and for the gate's
    verdict before the next hour, so each request trains on the data of its own hour, as it would live.
    Stops at the first retrained model the gate blesses (the version) or after ``max_retrains``."""
    retrains = summary.setdefault("retrains", [])
    say(f"   detect_drift hour by hour from the onset (hour {drift_at}); each request retrains ...")
    for hour in range(drift_at + 1, hours + 1):
        window_end = DEMO_START + timedelta(hours=hour)
        run_id = api.trigger("detect_drift", conf={"window_end": window_end.isoformat()})
        run = procs.wait_for(
            lambda run_id=run_id: (r := api.dag_run("detect_drift", run_id))["state"] in FINISHED and r,
            f"detect_drift for the hour ending {window_end}",
            timeout=600,
            every=1.0,
        )
        if run["state"] != "success":
            raise RuntimeError(f"detect_drift run {run_id} failed: see its task logs in the UI")
        # Followed through the request task's result: the warehouse has one writer, and listing asset
        # events fails in Airflow 3.3.2 while the run the event created is queued.
        if api.task_instance("detect_drift", run_id, "request_retrain")["state"] != "success":
            continue
        request = api.task_result("detect_drift", run_id, "request_retrain")
        drifting = ", ".join(f"{f} PSI {v:.2f}" for f, v in request["features"].items())
        say(f"   hour {hour}: drift confirmed ({drifting}) -> retrain_requested -> train_model")
        registered = _wait_for_training(api, procs, len(retrains) + 2)
        say(
            f"   {_model_line(registered)}, trained on [{registered.get('window_start')}, "
            f"{registered.get('window_end')})"
        )
        verdict = _wait_for_verdict(api, procs, registered["version"], say)
        summary.setdefault("verdicts", []).append(verdict)
        say(f"   {_verdict_line(verdict)}")
        retrains.append(
            {
                "hour": hour,
                "version": registered["version"],
                "window_start": registered.get("window_start"),
                "window_end": registered.get("window_end"),
                "val_auc": registered.get("val_auc"),
                "warm_start_from": registered.get("warm_start_from"),
                "status": verdict["status"],
            }
        )
        if verdict["status"] == "blessed":
            return registered["version"]
        if len(retrains) >= max_retrains:
            say(f"   {len(retrains)} retrain(s) judged, none blessed: stopping (max_retrains)")
            return None
    return None


def _wait_for_verdict(api: AirflowAPI, procs: AirflowProcesses, version: str, say) -> dict:
    """The ``judge`` result of ``version``: model_candidate -> evaluate_model (asset-triggered)."""
    say(f"   model_candidate -> evaluate_model judges {version} on the held-out hours ...")
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


def _print_counts(settings: Settings) -> None:
    print("  warehouse row counts:")
    for table, n in table_counts(settings).items():
        print(f"    {table:<28} {n:>10,}")


def _states(runs: list[dict]) -> dict[str, int]:
    states: dict[str, int] = {}
    for run in runs:
        states[run["state"]] = states.get(run["state"], 0) + 1
    return states
