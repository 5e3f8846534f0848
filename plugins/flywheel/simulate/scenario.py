"""A drift scenario on one machine: simulated events through ingest and dbt, one registered model whose
training window is profiled, ready for ``detect_drift``. Used by tests, the benchmark and the docs."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from flywheel.config import Settings

START = datetime(2026, 1, 1)


def prepare_drift_world(
    settings: Settings,
    drift: str,
    *,
    hours: int = 72,
    drift_at: int = 48,
    impressions_per_hour: int = 800,
    reference_hours: tuple[int, int] = (24, 48),
    seed: int = 7,
    start: datetime = START,
) -> str:
    """Fill the warehouse of ``settings`` and register a model trained on ``reference_hours``; its version.

    The model record stands in for a trained one (no search is run): drift detection only reads its
    training window, through the reference profile stored under its version. ``start`` is the first
    simulated hour (serving tests start it a day before now, so online features are fresh).
    """
    from flywheel.features.dbt import run_dbt
    from flywheel.ingest.load import load_events
    from flywheel.monitoring.tasks import profile_reference
    from flywheel.registry import register_candidate
    from flywheel.simulate import SimulationConfig, simulate
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import publish_hours

    settings.ensure_dirs()
    config = SimulationConfig(
        start=start,
        hours=hours,
        drift=drift,
        drift_at=drift_at,
        impressions_per_hour=impressions_per_hour,
        seed=seed,
    )
    simulate(config, settings.landing_dir)
    load_events(start, start + timedelta(hours=hours + 1), settings=settings)
    run_dbt(["build"], settings)
    # As build_features leaves it once every gate passed: drift reads published hours only.
    publish_hours(open_warehouse(settings.warehouse_url), start, start + timedelta(hours=hours), "scenario")
    window = (start + timedelta(hours=reference_hours[0]), start + timedelta(hours=reference_hours[1]))
    version = register_candidate(
        data_version=f"scenario-{drift}-{seed}",
        artifact_uri=str(settings.artifacts_dir / "scenario-model"),
        params={},
        metrics={},
        window=window,
        warehouse=open_warehouse(settings.warehouse_url),
    )
    profile_reference(settings)  # as detect_drift's first task does for a new model in service
    return version


def parse_ts(value: str) -> datetime:
    """A timestamp from Airflow's REST API (ISO 8601, ``Z`` for UTC)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def retrain_decision_time(api: Any, run_id: str) -> datetime:
    """When the rule and the debounce decided, for the ``detect_drift`` run that requested retraining:
    the end of its ``should_retrain`` task."""
    ti = api.task_instance("detect_drift", run_id, "should_retrain")
    return parse_ts(ti["end_date"])
