"""What the ``deploy_model`` DAG calls: pick the blessed version to deploy, export and load it into Triton
beside the champion, smoke-test it, run the canary step by step, then promote it or roll it back.

One function per task (the canary's steps are one deferrable task, :mod:`flywheel.serving.operators`,
whose methods call :func:`start_step`, :func:`judge_step`, :func:`rollback` and :func:`promote`). They pass
a small ``plan`` dict between them, never data. Model state moves through the registry (``blessed`` ->
``canary`` -> ``champion`` | ``rolled_back``), the traffic split through the shared canary state the gateway
reads (:mod:`flywheel.serving.state`).

The consumer owns "everything since my last success": a run started by one ``model_blessed`` event
deploys the newest version still ``blessed`` (older blessed ones are archived as superseded), so events
that queued while a rollout ran are not lost.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings

log = logging.getLogger(__name__)

#: Inputs the smoke test scores through Triton and through PyTorch.
SMOKE_ROWS = 256
#: Triton and PyTorch must agree to this (the issue's acceptance: 1e-5).
SMOKE_TOLERANCE = 1e-5
#: The champion-only traffic the DID compares each step with: the minutes before the rollout began.
BEFORE_SECONDS = 300
#: A step's "after" window ends this long before the analysis, so the gateway's and the users' files
#: (closed every FLYWHEEL_PREDICTION_FLUSH_SECONDS) and the clicks that follow an impression have landed.
LANDING_LAG_SECONDS = 8.0
#: Between two judgements of a step that holds, collect this long.
HOLD_SECONDS = 15.0

#: The deployment's Prometheus metrics (monitoring/prometheus/rules.yml may use only these).
METRICS = {
    "flywheel_deployment_rollbacks_total": "Rollbacks of canaries since the textfile was created",
    "flywheel_deployment_canary_weight": "The share of users the current canary serves (0..1)",
    "flywheel_deployment_last_decision_timestamp_seconds": "Unix time of the latest promote or rollback",
}
TEXTFILE_NAME = "flywheel_deployment.prom"
PUSH_JOB = "flywheel_deployment"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _warehouse(settings: Settings) -> Any:
    from flywheel.warehouse import open_warehouse

    return open_warehouse(settings.warehouse_url)


def pending_deployment(
    params: Mapping[str, Any], run_id: str, settings: Settings | None = None
) -> dict[str, Any] | None:
    """The plan of this run: the form's ``version``, else the newest version still ``blessed``; ``None``
    when there is nothing to deploy. Older blessed versions are archived as superseded."""
    from flywheel.registry import get_version, in_service, list_versions, set_status

    settings = settings or get_settings()
    warehouse = _warehouse(settings)
    if params.get("version"):
        model = get_version(str(params["version"]), warehouse)
        if model.status not in ("blessed", "canary"):
            raise ValueError(
                f"{model.version} is {model.status}: only a blessed version deploys (evaluate_model blesses "
                "candidates that pass the gate)"
            )
    else:
        blessed = [m for m in list_versions(warehouse) if m.status in ("blessed", "canary")]
        if not blessed:
            log.info("no blessed version waits for deployment")
            return None
        blessed.sort(key=lambda m: m.ordinal)
        model = blessed[-1]
        for older in blessed[:-1]:
            if older.status == "blessed":
                set_status(older.version, "archived", warehouse, reason=f"superseded by {model.version}")
                log.info("%s archived: superseded by %s before it was deployed", older.version, model.version)
    champion = in_service(warehouse)
    champion_version = champion.version if champion is not None and champion.status == "champion" else None
    plan = {
        "version": model.version,
        "champion": champion_version,
        "deployment_id": f"{model.version}@{run_id}",
        "artifact_uri": model.artifact_uri,
    }
    log.info(
        "deploying %s %s",
        model.version,
        f"as a canary beside {champion_version}" if champion_version else "as the first model (no champion)",
    )
    return plan


def _local_model_dir(artifact_uri: str, scratch: Path) -> Path:
    from flywheel.artifacts.storage import is_local, local_path, resolve

    if is_local(artifact_uri):
        return local_path(artifact_uri)
    filesystem, root = resolve(artifact_uri)
    target = scratch / "model"
    filesystem.get(root.rstrip("/") + "/", str(target), recursive=True)
    return target


def export_and_load(plan: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Export the version into Triton's model repository and load it beside the champion (which is loaded
    too if Triton lost it, e.g. after a restart). Returns the seconds the load took."""
    from flywheel.serving.repository import export_version
    from flywheel.serving.triton import Triton

    settings = settings or get_settings()
    repository = settings.serving.model_repository
    assert repository is not None
    triton = Triton(settings.serving.triton_url)
    with tempfile.TemporaryDirectory(prefix="flywheel-export-") as scratch:
        folder = export_version(
            plan["version"], _local_model_dir(plan["artifact_uri"], Path(scratch)), repository
        )
    log.info("exported %s to %s", plan["version"], folder)
    if plan.get("champion") and not triton.ready(plan["champion"]):
        log.warning("the champion %s is not loaded in Triton: loading it first", plan["champion"])
        triton.load(plan["champion"])
    started = time.monotonic()
    triton.load(plan["version"])
    seconds = time.monotonic() - started
    log.info("loaded %s into Triton at %s in %.1f s", plan["version"], settings.serving.triton_url, seconds)
    return {**plan, "load_seconds": round(seconds, 3)}


def smoke_test(plan: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """Score the same inputs through Triton and through the exported PyTorch model: they must agree to
    :data:`SMOKE_TOLERANCE`, or the version is unloaded and the task fails saying by how much."""
    import numpy as np

    from flywheel.artifacts.folder import score_exported
    from flywheel.artifacts.spec import FeatureSpec
    from flywheel.serving.repository import triton_model_name
    from flywheel.serving.triton import Triton

    settings = settings or get_settings()
    assert settings.serving.model_repository is not None
    folder = settings.serving.model_repository / triton_model_name(plan["version"])
    spec = FeatureSpec.load(folder / "feature_spec.json")
    rng = np.random.default_rng(0)
    cards = np.asarray(spec.cardinalities, dtype=np.int64)
    sparse = (rng.random((SMOKE_ROWS, len(cards))) * cards).astype(np.int64)
    dense = rng.standard_normal((SMOKE_ROWS, len(spec.dense_columns))).astype(np.float32)
    triton = Triton(settings.serving.triton_url)
    served = np.asarray(triton.infer(plan["version"], sparse, dense), dtype=np.float64)
    expected = score_exported(folder / "1", sparse, dense).astype(np.float64)
    diff = float(np.max(np.abs(served - expected))) if len(expected) else 0.0
    if not diff <= SMOKE_TOLERANCE:
        triton.unload(plan["version"], wait=False)
        raise RuntimeError(
            f"smoke test of {plan['version']}: Triton's scores differ from PyTorch's by up to {diff:.2e} on "
            f"{SMOKE_ROWS} inputs (allowed {SMOKE_TOLERANCE:g}): the exported model does not serve what was "
            "trained; it was unloaded and nothing was routed to it"
        )
    log.info("smoke test of %s: %d inputs, max |Triton - PyTorch| = %.2e", plan["version"], SMOKE_ROWS, diff)
    return {**plan, "smoke_max_abs_diff": diff}


def _state_store(settings: Settings) -> Any:
    from flywheel.serving.state import open_state

    return open_state(settings)


def _write_state(settings: Settings, **changes: Any) -> Any:
    from dataclasses import replace

    store = _state_store(settings)
    state = replace(store.read(), **changes, updated_at=_now().isoformat())
    store.write(state)
    return state


def start_step(plan: Mapping[str, Any], step: int, settings: Settings | None = None) -> dict[str, Any]:
    """Route step ``step``'s share of users to the canary (the registry status moves to ``canary`` at step
    0); returns the trigger's arguments: the requests the canary had served so far and the step's times."""
    from flywheel.registry import set_status

    settings = settings or get_settings()
    serving = settings.serving
    weight = serving.canary_steps[step] / 100
    if step == 0:
        set_status(
            plan["version"], "canary", _warehouse(settings), reason=f"canary beside {plan['champion']}"
        )
    state = _write_state(
        settings,
        champion=plan["champion"],
        canary=plan["version"],
        weight=weight,
        step=step,
        deployment_id=plan["deployment_id"],
    )
    now = time.time()
    log.info("step %d: %s serves %.0f%% of users (state %s)", step, plan["version"], weight * 100, state)
    return {
        "step": step,
        "weight": weight,
        "step_started": now,
        "canary_started": plan.get("canary_started", now),
        "baseline_requests": _canary_requests(settings, plan["version"]),
    }


def _canary_requests(settings: Settings, version: str) -> int:
    import httpx

    from flywheel.serving.canary import requests_served

    try:
        answer = httpx.get(f"{settings.serving.gateway_url}/v1/stats", timeout=5.0)
        answer.raise_for_status()
        return requests_served(answer.json(), version)
    except httpx.HTTPError as exc:
        raise RuntimeError(
            f"the gateway at {settings.serving.gateway_url} does not answer /v1/stats ({exc}): start it "
            "(flywheel serve) or set FLYWHEEL_GATEWAY_URL; nothing was routed yet"
        ) from exc


def trigger_arguments(step_info: Mapping[str, Any], plan: Mapping[str, Any], settings: Settings) -> dict:
    """The :class:`~flywheel.serving.triggers.CanaryStepTrigger` arguments for a step (or a held step)."""
    serving = settings.serving
    return {
        "gateway_url": serving.gateway_url,
        "version": plan["version"],
        "champion": plan.get("champion"),
        "baseline_requests": int(step_info["baseline_requests"]),
        "min_requests": serving.canary_min_requests,
        "ready_at": max(step_info["step_started"] + serving.canary_min_seconds, step_info.get("ready_at", 0)),
        "deadline": step_info["step_started"] + serving.canary_max_seconds,
        "max_error_rate": serving.canary_max_error_rate,
        "p99_ms": serving.canary_p99_ms,
    }


def judge_step(
    plan: Mapping[str, Any],
    step_info: Mapping[str, Any],
    event: Mapping[str, Any],
    run_id: str,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Judge a step from the trigger's event: ``rollback`` on a guard breach; otherwise the landing zone's
    analysis (:func:`flywheel.serving.canary.analyse_step`). Records the step in ``registry.deployments``
    unless it holds. Returns ``{"decision", "reason", "analysis"}``."""
    from flywheel.registry import record_deployment_step
    from flywheel.serving.canary import HOLD, ROLLBACK, analyse_step

    settings = settings or get_settings()
    step = int(step_info["step"])
    weight = float(step_info["weight"])
    if event.get("status") == "breach":
        decision, reason, analysis = ROLLBACK, f"guard breached at step {step}: {event['reason']}", None
    else:
        final = (
            event.get("status") == "timeout"
            or time.time() >= trigger_arguments(step_info, plan, settings)["deadline"]
        )
        canary_started = datetime.fromtimestamp(step_info["canary_started"], UTC).replace(tzinfo=None)
        step_started = datetime.fromtimestamp(step_info["step_started"], UTC).replace(tzinfo=None)
        result = analyse_step(
            settings.landing_dir,
            plan["version"],
            plan["champion"],
            weight,
            canary_start=canary_started,
            before_start=canary_started - timedelta(seconds=BEFORE_SECONDS),
            # The first seconds of a step may still be served at the previous weight by the gateway's cache.
            step_start=step_started + timedelta(seconds=2),
            after_end=_now() - timedelta(seconds=LANDING_LAG_SECONDS),
            ctr_margin=settings.serving.canary_ctr_margin,
            final=final,
        )
        decision, reason, analysis = result.decision, result.reason, result.as_dict()
        log.info("step %d: %s", step, result.summary())
    if decision != HOLD:
        recorded = "rollback" if decision == ROLLBACK else "advance"
        record_deployment_step(
            plan["deployment_id"],
            plan["version"],
            step,
            weight,
            recorded,
            reason=reason,
            run_id=run_id,
            warehouse=_warehouse(settings),
        )
    return {"decision": decision, "reason": reason, "analysis": analysis}


def rollback(plan: Mapping[str, Any], reason: str, run_id: str, settings: Settings | None = None) -> str:
    """Take the canary out: weight 0 first (the gateway stops routing to it within a second), then unload
    it from Triton, mark it ``rolled_back`` with ``reason``, and count it. Returns the message the task fails
    with."""
    from flywheel.registry import get_version, set_status
    from flywheel.serving.triton import Triton, TritonUnavailable

    settings = settings or get_settings()
    _write_state(settings, canary=None, weight=0.0, step=0, deployment_id=None, champion=plan["champion"])
    log.warning(
        "rolled back %s: weight 0, the champion %s serves everyone", plan["version"], plan["champion"]
    )
    try:
        Triton(settings.serving.triton_url).unload(plan["version"], wait=False)
    except TritonUnavailable as exc:
        log.warning(
            "could not unload %s from Triton (%s): it serves nothing at weight 0", plan["version"], exc
        )
    warehouse = _warehouse(settings)
    status = get_version(plan["version"], warehouse).status
    if (
        status == "blessed"
    ):  # failed before its first step: it still goes through canary, as the lifecycle says
        set_status(plan["version"], "canary", warehouse, reason="canary started", run_id=run_id)
    if status in ("blessed", "canary"):
        set_status(plan["version"], "rolled_back", warehouse, reason=reason, run_id=run_id)
    export_metrics(rolled_back=True, weight=0.0, settings=settings)
    return f"{plan['version']} rolled back, {plan['champion']} keeps all traffic: {reason}"


def promote(plan: Mapping[str, Any], run_id: str, settings: Settings | None = None) -> dict[str, Any]:
    """Make the version champion: registry first (the old champion is archived in the same transaction),
    then the state (all traffic), then unload the old champion from Triton. Returns the ``model_deployed``
    event's extra."""
    from flywheel.registry import get_version, record_deployment_step, set_status
    from flywheel.serving.triton import Triton, TritonUnavailable

    settings = settings or get_settings()
    warehouse = _warehouse(settings)
    version, old = plan["version"], plan.get("champion")
    if get_version(version, warehouse).status == "blessed":
        set_status(version, "canary", warehouse, reason="first model: no canary needed", run_id=run_id)
    set_status(version, "champion", warehouse, reason=f"promoted by {plan['deployment_id']}", run_id=run_id)
    last_step = len(settings.serving.canary_steps) if old else 0
    record_deployment_step(
        plan["deployment_id"],
        version,
        last_step,
        1.0,
        "promote",
        reason=f"replaces {old}" if old else "the first model goes to 100% after its smoke test",
        run_id=run_id,
        warehouse=warehouse,
    )
    _write_state(settings, champion=version, canary=None, weight=0.0, step=0, deployment_id=None)
    if old:
        try:
            Triton(settings.serving.triton_url).unload(old, wait=False)
        except TritonUnavailable as exc:
            log.warning("could not unload the old champion %s (%s)", old, exc)
    export_metrics(rolled_back=False, weight=0.0, settings=settings)
    log.info("%s is the champion%s", version, f"; {old} archived and unloaded" if old else "")
    model = get_version(version, warehouse)
    return {
        "version": version,
        "previous": old,
        "deployment_id": plan["deployment_id"],
        "window_start": model.window_start.isoformat() if model.window_start else None,
        "window_end": model.window_end.isoformat() if model.window_end else None,
    }


def export_metrics(*, rolled_back: bool, weight: float, settings: Settings | None = None) -> Path:
    """Publish the deployment's metrics: the textfile under ``<FLYWHEEL_HOME>/metrics/``, and the Pushgateway
    when configured. The rollback counter continues from the textfile's last value."""
    import re

    from prometheus_client import CollectorRegistry, Gauge

    from flywheel.metrics import publish

    settings = settings or get_settings()
    textfile = settings.home / "metrics" / TEXTFILE_NAME
    previous = 0.0
    if textfile.exists():
        match = re.search(r"^flywheel_deployment_rollbacks_total (\S+)$", textfile.read_text(), re.M)
        previous = float(match.group(1)) if match else 0.0
    registry = CollectorRegistry()
    rollbacks = Gauge(
        "flywheel_deployment_rollbacks_total",
        METRICS["flywheel_deployment_rollbacks_total"],
        registry=registry,
    )
    rollbacks.set(previous + (1 if rolled_back else 0))
    Gauge(
        "flywheel_deployment_canary_weight", METRICS["flywheel_deployment_canary_weight"], registry=registry
    ).set(weight)
    Gauge(
        "flywheel_deployment_last_decision_timestamp_seconds",
        METRICS["flywheel_deployment_last_decision_timestamp_seconds"],
        registry=registry,
    ).set(time.time())
    return publish(registry, textfile=TEXTFILE_NAME, job=PUSH_JOB, settings=settings)
