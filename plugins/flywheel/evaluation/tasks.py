"""What the ``evaluate_model`` DAG calls: find the candidates nobody judged yet, judge each against its
baseline on the held-out hours, and move it to ``blessed`` or ``rejected`` with its reasons. One function
per task, named as the task; they pass versions and small summaries, never data.

The consumer owns "every candidate since my last success": a candidate stays ``candidate`` in the registry
until a run judges it, so a run started by one ``model_candidate`` event judges every version registered
since (Airflow hands a deferred asset-triggered run only the first queued event), and a failed run leaves
its candidates for the next one.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings

log = logging.getLogger(__name__)

#: The evaluation's Prometheus metrics; alert rules may use only these (monitoring/prometheus/rules.yml).
METRICS = {
    "flywheel_evaluation_passed": "1 when the latest evaluated candidate passed the gate, 0 when rejected",
    "flywheel_evaluation_failed_checks": "Checks the latest evaluated candidate failed (0 when it passed)",
    "flywheel_evaluation_timestamp_seconds": "Unix time of the latest evaluation",
}
TEXTFILE_NAME = "flywheel_evaluation.prom"
PUSH_JOB = "flywheel_evaluation"


def pending_candidates(params: Mapping[str, Any], settings: Settings | None = None) -> list[str]:
    """The versions to judge, oldest first: the form's ``candidate``, else every version still in status
    ``candidate`` (registered and not judged yet)."""
    from flywheel.registry import get_version, list_versions
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    warehouse = open_warehouse(settings.warehouse_url)
    if params.get("candidate"):
        model = get_version(str(params["candidate"]), warehouse)  # RegistryError names the known versions
        return [model.version]
    pending = [m.version for m in list_versions(warehouse) if m.status == "candidate"]
    log.info("candidates to judge: %s", ", ".join(pending) or "none")
    return pending


def judge(
    version: str, params: Mapping[str, Any], run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Evaluate ``version`` (``flywheel.evaluation.evaluate``), log the gate's table and the report, export
    the verdict to Prometheus, then bless or reject it with every reason.

    A version that is no longer a candidate (a rerun after its verdict) is not judged again: its recorded
    status is returned. A version whose model folder lacks its files can never be scored: it is rejected
    with that reason. The status moves last, so a task that fails before it (no held-out window yet, the
    baseline's files missing) leaves the version to a retry or the next run.
    """
    from flywheel.evaluation.evaluate import evaluate
    from flywheel.evaluation.scoring import MissingArtifacts, check_artifacts
    from flywheel.registry import get_version, set_status
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    warehouse = open_warehouse(settings.warehouse_url)
    model = get_version(version, warehouse)
    if model.status != "candidate":
        log.info("%s is already %s: not judged again", version, model.status)
        return {"version": version, "status": model.status, "passed": model.status == "blessed"}
    try:
        check_artifacts(model)
    except MissingArtifacts as exc:  # it can never be scored: rejected, not retried forever
        log.error("%s cannot be judged: %s", version, exc)
        export_metrics(version, None, False, 0, settings=settings)
        set_status(version, "rejected", warehouse, reason=f"not judged: {exc}", run_id=run_id)
        return {"version": version, "status": "rejected", "passed": False, "failed": ["artifacts"]}
    result = evaluate(version, champion=params.get("champion") or None, settings=settings)
    decision = result.decision
    against = f"against {result.champion}" if result.champion else "on the first model's absolute thresholds"
    table = decision.table()
    if decision.passed:
        log.info("%s %s on %d held-out impressions:\n%s", version, against, result.rows, table)
    else:
        log.warning("%s %s on %d held-out impressions:\n%s", version, against, result.rows, table)
    log.info("report: %s", report_link(result.report_uri))
    export_metrics(version, result.champion, decision.passed, len(decision.failed), settings=settings)
    status = "blessed" if decision.passed else "rejected"
    set_status(version, status, warehouse, reason=verdict_reason(decision, result.champion), run_id=run_id)
    log.info("%s is now %s", version, status)
    return {
        "version": version,
        "status": status,
        "passed": decision.passed,
        "baseline": result.champion,
        "evaluation_id": result.evaluation_id,
        "failed": [f"{c.name} on {c.slice}" for c in decision.failed],
        "report": result.report_uri,
    }


def verdict_reason(decision: Any, baseline: str | None) -> str:
    """The status change's reason: what was compared, and every failed check with its own reason."""
    checks = [c for c in decision.checks if c.passed is not None]
    against = f"against {baseline}" if baseline else "on absolute thresholds (first model)"
    if decision.passed:
        return f"gate passed {against}: {len(checks)} check(s) passed"
    failed = "; ".join(f"{c.name} on {c.slice}: {c.reason}" for c in decision.failed)
    return f"gate failed {against}: {len(decision.failed)} of {len(checks)} check(s) failed: {failed}"


def report_link(uri: str | None) -> str:
    """A link the task log shows: ``file://`` for a local report, the object store URI otherwise."""
    if not uri:
        return "not written"
    return Path(uri).resolve().as_uri() if "://" not in uri else uri


def announce_blessed(results: Sequence[Mapping[str, Any] | None]) -> dict[str, Any] | None:
    """The ``model_blessed`` event's extra for the blessed versions of this run (newest last), or ``None``
    when none passed: the DAG then skips the task and emits nothing."""
    blessed = [r["version"] for r in results if r and r.get("passed")]
    if not blessed:
        log.info("no candidate passed the gate: model_blessed is not updated")
        return None
    log.info("blessed: %s", ", ".join(blessed))
    return {"version": blessed[-1], "versions": blessed}


def export_metrics(
    candidate: str,
    baseline: str | None,
    passed: bool,
    failed_checks: int,
    *,
    evaluated_at: datetime | None = None,
    settings: Settings | None = None,
) -> Path:
    """Publish the latest verdict (``flywheel_evaluation_*``): ``<FLYWHEEL_HOME>/metrics/`` textfile, and
    the Pushgateway when configured."""
    from prometheus_client import CollectorRegistry, Gauge

    from flywheel.metrics import publish

    registry = CollectorRegistry()
    labels = {"candidate": candidate, "baseline": baseline or "none"}
    Gauge(
        "flywheel_evaluation_passed", METRICS["flywheel_evaluation_passed"], list(labels), registry=registry
    ).labels(**labels).set(1 if passed else 0)
    Gauge(
        "flywheel_evaluation_failed_checks",
        METRICS["flywheel_evaluation_failed_checks"],
        list(labels),
        registry=registry,
    ).labels(**labels).set(failed_checks)
    Gauge(
        "flywheel_evaluation_timestamp_seconds",
        METRICS["flywheel_evaluation_timestamp_seconds"],
        registry=registry,
    ).set((evaluated_at or datetime.now(UTC)).timestamp())
    return publish(registry, textfile=TEXTFILE_NAME, job=PUSH_JOB, settings=settings)
