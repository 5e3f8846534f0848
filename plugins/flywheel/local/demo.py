"""``make demo`` and ``make up``: the loop on the embedded defaults, driven through a real Airflow."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import threading
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings, unset_variables
from flywheel.events import EVENT_SCHEMAS, naive_utc
from flywheel.local import story
from flywheel.local.api import FINISHED, AirflowAPI
from flywheel.local.processes import AirflowProcesses, admin_api, queue_backfill
from flywheel.local.story import Progress
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

#: The DAGs the demo lets the scheduler run (new DAGs start paused).
DEMO_DAGS = (
    "ingest_events",
    "build_features",
    "detect_drift",
    "train_model",
    "evaluate_model",
    "deploy_model",
)
#: The demo's settings, sized to its small world and its few minutes of live traffic (a deployment sets its
#: own; a variable already set wins). A small search, and drift as the only trigger of training.
DEMO_ENV = {
    "FLYWHEEL_TRAIN_CRON": "",
    "FLYWHEEL_TRAIN_BUDGET": "4",
    "FLYWHEEL_TRAIN_MAX_EPOCHS": "4",
    # Cold searches: in the demo's runs every retrain fine-tuned from v1 lost to v1 after the shift (AUC
    # 0.01-0.03 lower), a cold search on the same hours did not (docs/training.md, "Warm starts").
    "FLYWHEEL_TRAIN_WARM_START": "0",
    # The gate at about 9,000 held-out impressions (6 hours of 2,000): CTR@1's paired interval is about
    # +-0.015 and calibration's as wide, so those margins are widened to what the traffic resolves
    # (docs/evaluation.md, "Sizing"). AUC keeps its 0.01: with an interval of about +-0.014, a retrained
    # model merely as good as v1 after the shift is usually refused, a better one passes.
    "FLYWHEEL_EVAL_CTR_MARGIN": "0.03",
    "FLYWHEEL_EVAL_ECE_MARGIN": "0.03",
    # The canary at about 30 requests a second: three steps, each judged after 100 canary requests and
    # 10 s, a DID margin one request's CTR spread can resolve there, and a p99 guard for a 2-core machine
    # that also runs Airflow (production: 100 ms; docs/serving.md).
    "FLYWHEEL_CANARY_STEPS": "20,50,100",
    "FLYWHEEL_CANARY_MIN_REQUESTS": "100",
    "FLYWHEEL_CANARY_MIN_SECONDS": "10",
    "FLYWHEEL_CANARY_MAX_SECONDS": "150",
    "FLYWHEEL_CANARY_CTR_MARGIN": "0.05",
    "FLYWHEEL_CANARY_P99_MS": "500",
    "FLYWHEEL_PREDICTION_FLUSH_SECONDS": "1",
}
#: PSI the demo's rule asks to hold, hour after hour, before it retrains: the level the FlywheelFeatureDrift
#: alert fires at (monitoring/prometheus/rules.yml).
DEMO_SUSTAINED_PSI = "0.2"
#: The demo's single-window threshold: out of PSI's reach, so the sustained branch alone decides.
SINGLE_WINDOW_OFF = 1000.0


def demo_drift_rule(hours: int, drift_at: int, held_out_hours: int) -> dict[str, str]:
    """The demo's retrain rule: PSI >= 0.2 held in every hourly window from the onset until the gate's
    held-out hours begin, so the one retrain it asks for learns from every hour of the new world it may
    (with 72 hours and the onset at 48: 18 windows, a training window of [18, 66)).

    The default rule retrains one hour after the onset. In the demo's runs such a model learned from 47
    hours of the old world and 1 of the new, and the gate rightly kept v1 or blessed a model no better
    after the shift; quick models trained on [18, 66) scored 0.710 AUC on the last hours against v1's
    window's 0.684 (docs/monitoring.md, "Retraining on a new world"). The single-window branch is set out
    of reach (1000), so the sustained branch alone decides; the alert still fires at the first window over
    0.2, which the summary reports as the detection."""
    return {
        "FLYWHEEL_DRIFT_PSI": f"{SINGLE_WINDOW_OFF:g}",
        "FLYWHEEL_DRIFT_SUSTAINED_PSI": DEMO_SUSTAINED_PSI,
        "FLYWHEEL_DRIFT_SUSTAINED_WINDOWS": str(max(1, hours - drift_at - held_out_hours)),
    }


#: The simulated users served live: requests a second, items shown of the 20 candidates each request sends.
TRAFFIC_RPS, TRAFFIC_SHOWN = 30, 5
#: Seconds the promoted model serves alone at the end, so its served CTR rests on as many users as v1's.
SERVED_AFTER_SECONDS = 90


def world_start(hours: int, now: datetime | None = None) -> datetime:
    """The first hour of a world of ``hours`` that ends at the current hour: replayed history and live
    traffic are one timeline, and the online store (whose features expire after their TTL, counted from
    now) serves the hours the models were trained on."""
    now = now or datetime.now(UTC)
    return naive_utc(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours)


def set_aside_previous(settings: Settings) -> Path | None:
    """Make room for a new story: a home a previous demo left (its ``demo/summary.json``) is moved to
    ``<home>.previous`` (replacing an older one), so every ``make demo`` starts from an empty world and the
    last run stays readable; the new place, or None when the home held no demo.

    Raises ``ValueError`` saying what to do when the home cannot be set aside whole: Airflow runs on it
    (``make up``), or part of it lives elsewhere (a warehouse, landing zone or Airflow home outside it)."""
    from flywheel.local.up import _running

    home = Path(settings.home)
    if not (home / "demo" / "summary.json").exists():
        return None
    running = _running(settings)
    if running:
        raise ValueError(
            f"Airflow runs on {home} ({running['url']}); `make down` stops it, then run the demo again"
        )
    inside = [
        f"{name} {path}"
        for name, path in (
            ("FLYWHEEL_LANDING_DIR", settings.landing_dir),
            ("FLYWHEEL_AIRFLOW_HOME", settings.airflow_home),
            ("FLYWHEEL_ARTIFACTS_DIR", settings.artifacts_dir),
        )
        if not isinstance(path, Path) or not path.resolve().is_relative_to(home.resolve())
    ]
    if not settings.warehouse_url.startswith("duckdb:///") or not Path(
        settings.warehouse_url.removeprefix("duckdb:///")
    ).resolve().is_relative_to(home.resolve()):
        inside.append(f"FLYWHEEL_WAREHOUSE_URL {settings.warehouse_url}")
    if inside:
        raise ValueError(
            f"{home} holds a previous demo, and part of it lives outside that folder ({', '.join(inside)}); "
            "point FLYWHEEL_HOME at a new folder, and those variables inside it or unset, to tell the story "
            "again"
        )
    previous = home.with_name(home.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    home.rename(previous)
    return previous


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
    served_after: float = SERVED_AFTER_SECONDS,
) -> int:
    """:func:`_run_demo` with ``DEMO_ENV`` and :func:`demo_drift_rule` set for its duration (a variable
    already set wins); the process environment is as it was afterwards, whatever happened."""
    wanted = {**DEMO_ENV, **demo_drift_rule(hours, drift_at, get_settings().evaluation.held_out_hours)}
    added = unset_variables(wanted)
    for name in added:
        os.environ[name] = wanted[name]
    try:
        return _run_demo(hours, seed, impressions_per_hour, drift, drift_at, max_retrains, served_after)
    finally:
        for name in added:
            os.environ.pop(name, None)


def _run_demo(
    hours: int,
    seed: int,
    impressions_per_hour: int,
    drift: str,
    drift_at: int,
    max_retrains: int,
    served_after: float,
) -> int:
    """The loop end to end: events -> ingest -> features -> a first model, deployed -> live users through the
    gateway -> drift, hour by hour -> retraining until the gate blesses a retrained model (at most
    ``max_retrains``) -> its canary and promotion, then ``served_after`` seconds of users on it; then the
    summary table, ``<home>/demo/summary.json`` and ``report.html``. 0 when the loop closed (the drift was
    detected and a retrained model blessed, canaried and promoted), 1 when it did not, 130 on Ctrl-C or a
    kill; Airflow, Triton and the gateway are stopped in every case."""
    from flywheel.local.serving import ServingStack
    from flywheel.simulate import SimulationConfig, simulate

    # The users' progress every 10 s and Feast's registry refreshes would bury the story's lines.
    for name in ("flywheel.simulate.traffic", "feast"):
        logging.getLogger(name).setLevel(logging.WARNING)
    settings = get_settings()
    settings.ensure_dirs()
    progress = Progress()
    say = progress.say
    windows = plan_windows(hours, drift_at, settings.evaluation.held_out_hours) if drift != "none" else {}
    t0 = world_start(hours)
    say(f"home: {settings.home}")
    summary: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "world": {
            "start": t0.isoformat(),
            "hours": hours,
            "seed": seed,
            "impressions_per_hour": impressions_per_hour,
            "drift": drift,
            "drift_at": drift_at,
        },
        "world_line": (
            f"{hours} simulated hours from {t0:%Y-%m-%d %H:%M} to now, {impressions_per_hour} "
            f"impressions an hour, seed {seed}, {drift} from hour {drift_at}; then live users "
            f"({TRAFFIC_RPS} requests/s) through the gateway"
        ),
        "psi_threshold": settings.drift.psi_threshold,
        "drift_rule": _rule_text(settings),
        "stages": progress.stages,
        "closed": False,
        "outcome": "not started",
    }
    models: dict[str, str] = {}
    users = _LiveUsers(seed, drift)
    code = 1
    # `kill` or a closed terminal stops the demo as Ctrl-C does: Airflow's components run in sessions of
    # their own, so nothing else would stop them.
    handled = (signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, _interrupt) for sig in handled} if _main_thread() else {}
    try:
        with progress.stage("simulate the marketplace"):
            config = SimulationConfig(
                start=t0,
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
        start = t0.replace(tzinfo=UTC)
        backfill = partial(
            queue_backfill, dag_id="ingest_events", start=start, end=start + timedelta(hours=hours - 1)
        )
        procs = AirflowProcesses(settings, setup=lambda env: backfill(env, unpause=DEMO_DAGS))
        stack = ServingStack(settings)
        try:
            with progress.stage("start Triton and the gateway"):
                stack.start()
                say(f"   Triton at {settings.serving.triton_url}, the gateway at {stack.gateway_url}")
            with progress.stage("start Airflow: scheduler, dag-processor, triggerer, api-server"):
                procs.start()
            api = admin_api(procs)
            say(f"Airflow UI: {procs.base_url}  user: admin  password: {api.password}  (while the demo runs)")
            with progress.stage(f"ingest and build features for {hours} hours"):
                _ingest_and_build_features(api, procs, t0 + timedelta(hours=hours), hours, say)
            if drift == "none":
                summary["outcome"] = "no drift was simulated: nothing to retrain"
            else:
                with progress.stage("train and judge the first model (v1)"):
                    models["v1"] = _first_model(api, procs, t0, windows["first_training"], summary, say)
                with progress.stage("deploy v1 (deploy_model: Triton, smoke test); live users arrive"):
                    summary["deployments"] = [_wait_for_deployment(api, procs, models["v1"], say)]
                    users.start(stack.gateway_url, settings)
                    say(f"   live users: {TRAFFIC_RPS} requests/s to {stack.gateway_url}, {drift} on")
                with progress.stage("monitor hour by hour; retrain and judge on drift"):
                    recovered = _monitor_hourly(
                        api, procs, t0, drift_at, hours, max_retrains, summary, say, users.check
                    )
                retrains = summary.get("retrains", [])
                if retrains:
                    models["v2"] = recovered or retrains[-1]["version"]
                if recovered:
                    with progress.stage(f"canary {recovered} beside v1, then promote or roll back"):
                        summary["deployments"].append(_wait_for_deployment(api, procs, recovered, say))
                    if summary["deployments"][-1]["state"] == "success":
                        say(f"   {recovered} serves every user now: {served_after:.0f} s more of traffic")
                        procs.wait_for(
                            partial(_after, time.monotonic() + served_after, users.check),
                            f"{served_after:.0f} s of traffic to {recovered}",
                            timeout=served_after + 60,
                        )
                summary["closed"] = _closed(summary)
                summary["outcome"] = _outcome(summary)
            api.close()
        finally:
            summary["traffic"] = users.stop()
            procs.stop()
            stack.stop()
        with progress.stage("score the models on held-out hours and served traffic"):
            summary.update(_findings(settings, models, t0, windows, drift_at, summary.get("traffic")))
        code = 0 if summary["closed"] or drift == "none" else 1
    except (RuntimeError, TimeoutError, ValueError, OSError) as exc:
        summary["outcome"] = f"failed: {exc}"
        say(f"FAILED: {exc}")
        say(f"task logs: {settings.airflow_home}/logs (or the UI: make up)")
    except KeyboardInterrupt:
        summary["outcome"] = "interrupted; every process the demo started was stopped"
        say("interrupted: Airflow, Triton and the gateway stopped")
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


def _closed(summary: dict[str, Any]) -> bool:
    """The loop closed: a retrained model the drift asked for was blessed and promoted through the canary."""
    retrains, deployed = summary.get("retrains", []), summary.get("deployments", [])
    return bool(
        retrains
        and retrains[-1]["status"] == "blessed"
        and deployed
        and deployed[-1]["version"] == retrains[-1]["version"]
        and deployed[-1]["state"] == "success"
    )


def _outcome(summary: dict[str, Any]) -> str:
    retrains = summary.get("retrains", [])
    if not retrains:
        return "no retraining request after the onset: the drift was not detected"
    first, last = retrains[0], retrains[-1]
    detected = f"retraining first requested at hour {first['hour']}; {len(retrains)} retrain(s) judged"
    if last["status"] != "blessed":
        return f"{detected}: the gate kept v1 (no retrained model was good enough)"
    blessed = f"{detected}: {last['version']} (requested at hour {last['hour']}) blessed"
    deployed = summary.get("deployments", [])
    if not deployed or deployed[-1]["version"] != last["version"]:
        return f"{blessed}, not deployed"
    if deployed[-1]["state"] == "success":
        return f"{blessed}, canaried and promoted: it serves every user"
    return f"{blessed}, rolled back by the canary: v1 still serves"


def _rule_text(settings: Settings) -> str:
    rule = settings.drift
    held = f"PSI >= {rule.sustained_threshold:g} in {rule.sustained_windows} consecutive hourly windows"
    if rule.psi_threshold >= SINGLE_WINDOW_OFF:  # the demo's rule
        return f"retrain when {held}"
    return f"retrain when PSI >= {rule.psi_threshold:g} in one window, or {held}"


def _auc(row: dict[str, Any]) -> str:
    return "-" if row.get("auc") is None else f"{row['auc']:.4f}"


def _after(deadline: float, check) -> bool:
    check()
    return time.monotonic() >= deadline


class _LiveUsers:
    """The simulated users, served live by the gateway in a thread of the demo (``run_traffic``): the same
    world and seed as the history, its drift on (the history ends after the onset)."""

    def __init__(self, seed: int, drift: str) -> None:
        self.seed, self.drift = seed, drift
        self.halt = threading.Event()
        self.thread: threading.Thread | None = None
        self.report: Any = None
        self.error: BaseException | None = None

    def start(self, url: str, settings: Settings) -> None:
        from flywheel.simulate.traffic import run_traffic

        def serve() -> None:
            try:
                self.report = run_traffic(
                    url=url,
                    rps=TRAFFIC_RPS,
                    seconds=4 * 3600,  # until stopped
                    seed=self.seed,
                    settings=settings,
                    drift=self.drift,
                    shown=TRAFFIC_SHOWN,
                    stop=self.halt,
                )
            except BaseException as exc:  # reported by check() in the demo's thread
                self.error = exc

        self.thread = threading.Thread(target=serve, name="live-users", daemon=True)
        self.thread.start()

    def check(self) -> None:
        """Raise when the users stopped on their own (the gateway refused them before they began)."""
        if self.error is not None:
            raise RuntimeError(f"the simulated users stopped: {self.error}")

    def stop(self) -> dict[str, Any] | None:
        """Stop sending, wait for the answers in flight; what the users were served, per model version."""
        if self.thread is None:
            return None
        self.halt.set()
        self.thread.join(timeout=60)
        report = self.report
        if report is None:
            return {"error": str(self.error or "the users did not finish within 60 s")}
        from flywheel.evaluation.metrics import auc

        versions = {}
        for version in sorted(report.outcomes):
            ctr, error, impressions = report.served_ctr(version)
            scores, clicked = zip(*report.shown_scores[version], strict=True)
            online_auc = float(auc([float(c) for c in clicked], list(scores)))
            versions[version] = {
                "auc": None if online_auc != online_auc else online_auc,
                "requests": report.outcomes[version][0],
                "impressions": impressions,
                "clicks": report.outcomes[version][2],
                "ctr": None if ctr != ctr else ctr,
                "ctr_se": None if error != error else error,
            }
        return {
            "requests": report.requests,
            "failures": report.failures,
            "failures_by_status": report.failures_by_status,
            "seconds": round(report.elapsed_s, 1),
            "p99_ms": None if report.p99_ms != report.p99_ms else round(report.p99_ms, 1),
            "shown": TRAFFIC_SHOWN,
            "versions": versions,
        }


def _wait_for_deployment(api: AirflowAPI, procs: AirflowProcesses, version: str, say) -> dict[str, Any]:
    """model_blessed -> deploy_model: the run that planned ``version``, once it finished. A first model is
    put in service after its smoke test; a later one goes through the canary steps, and a rollback fails
    the run (its state is then ``failed``)."""
    say(f"   model_blessed -> deploy_model rolls {version} out through Triton ...")
    ti, plan = _result_naming(api, procs, version, "deploy_model", "plan")
    run_id = ti["dag_run_id"]
    run = procs.wait_for(
        lambda: (r := api.dag_run("deploy_model", run_id))["state"] in FINISHED and r,
        f"deploy_model run {run_id} of {version}",
        timeout=900,
        every=2.0,
    )
    beside = f"canary beside {plan['champion']}" if plan.get("champion") else "first model, no canary"
    result = "in service" if run["state"] == "success" else "rolled back (see the canary task's log)"
    say(f"   deploy_model {run['state']}: {version} ({beside}) {result}")
    return {"version": version, "champion": plan.get("champion"), "run_id": run_id, "state": run["state"]}


def _findings(
    settings: Settings,
    models: dict[str, str],
    t0: datetime,
    windows: dict[str, tuple[int, int]],
    drift_at: int,
    traffic: dict[str, Any] | None,
) -> dict[str, Any]:
    """Scores of the models on the pre- and post-drift held-out hours and on the live users, what
    detect_drift recorded, and the canary's steps."""

    def hours(span: tuple[int, int]) -> tuple[datetime, datetime]:
        return t0 + timedelta(hours=span[0]), t0 + timedelta(hours=span[1])

    found: dict[str, Any] = {"drift": story.drift_findings(settings, t0, t0 + timedelta(hours=drift_at))}
    if "v1" not in models:
        return found
    found["canary_steps"] = story.canary_steps(settings, list(models.values()))
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
    served = (traffic or {}).get("versions") or {}
    one, two = served.get(models["v1"]), served.get(models.get("v2", ""))
    if one and one["ctr"] is not None:
        line = f"served to the live users after the drift: v1 CTR {story.ctr_text(one)}"
        if two and two["ctr"] is not None:
            diff = two["ctr"] - one["ctr"]
            se = (one["ctr_se"] ** 2 + two["ctr_se"] ** 2) ** 0.5
            line += (
                f"; {labels['v2']} CTR {story.ctr_text(two)}: difference {diff:+.4f} "
                f"[{diff - 1.96 * se:+.4f}, {diff + 1.96 * se:+.4f}] (95%)"
            )
            found["served_difference"] = {"ctr": diff, "lower": diff - 1.96 * se, "upper": diff + 1.96 * se}
        lines.append(line)
        online = ", ".join(
            f"{name} {_auc(row)}" for name, row in (("v1", one), (labels.get("v2", "v2"), two)) if row
        )
        lines.append(f"online AUC (each model's scores against the clicks on the items it showed): {online}")
    found["comparison_lines"] = lines
    return found


def _ingest_and_build_features(
    api: AirflowAPI, procs: AirflowProcesses, demo_end: datetime, hours: int, say
) -> None:
    say(f"   backfilling ingest_events for {hours} hourly intervals through the scheduler ...")
    runs = api.wait_for_runs(
        "ingest_events",
        hours,
        run_type="backfill",
        progress=_throttled(
            lambda done, total, states: say(f"   ingest_events: {done}/{total} runs done {states}")
        ),
        check=procs.check_alive,
    )
    failed = [r["dag_run_id"] for r in runs if r["state"] != "success"]
    if failed:
        raise RuntimeError(f"ingest_events run(s) failed: {', '.join(failed)}")
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


def _throttled(report, seconds: float = 15.0):
    """``report``, called at most once every ``seconds`` (and for the last call, when all are done)."""
    last = [-seconds]

    def call(done: int, total: int, states: dict) -> None:
        now = time.monotonic()
        if now - last[0] >= seconds or done >= total:
            last[0] = now
            report(done, total, states)

    return call


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


def _first_model(
    api: AirflowAPI, procs: AirflowProcesses, t0: datetime, window: tuple[int, int], summary, say
) -> str:
    window_end = t0 + timedelta(hours=window[1])
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
    t0: datetime,
    drift_at: int,
    hours: int,
    max_retrains: int,
    summary: dict[str, Any],
    say,
    check=lambda: None,
) -> str | None:
    """``detect_drift`` on each hour after the onset in turn, as its hourly schedule runs it while the world
    moves on. An hour whose request starts ``train_model`` waits for that training and for the gate's
    verdict before the next hour, so each request trains on the data of its own hour, as it would live.
    Stops at the first retrained model the gate blesses (the version) or after ``max_retrains``."""
    retrains = summary.setdefault("retrains", [])
    say(f"   detect_drift hour by hour from the onset (hour {drift_at}); each request retrains ...")
    for hour in range(drift_at + 1, hours + 1):
        check()
        window_end = t0 + timedelta(hours=hour)
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
    return _result_naming(api, procs, version, "evaluate_model", "judge")[1]


def _result_naming(
    api: AirflowAPI, procs: AirflowProcesses, version: str, dag_id: str, task_id: str
) -> tuple[dict, dict]:
    """The task instance and result of the first ``dag_id.task_id`` whose result names ``version``: the
    asset-triggered run that model's event started (followed by result, never by listing asset events)."""
    return api.wait_for_task_result(
        dag_id,
        task_id,
        lambda value: isinstance(value, dict) and value.get("version") == version,
        timeout=900,
        check=procs.check_alive,
    )


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
