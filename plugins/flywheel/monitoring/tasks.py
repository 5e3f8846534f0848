"""What the ``detect_drift`` DAG calls: profile the model in service, check a window, decide, request.

The reference is the training window of the model in service (``flywheel.registry.in_service``). The
first run that sees a new model in service profiles that window once (``profile_reference``), so the
hourly check only scans the current window.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import naive_utc
from flywheel.warehouse.tables import RETRAIN_REQUESTS_TABLE
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

#: The monitored columns of marts.training_examples: what the model is shown about the impression and
#: the item. Volume-driven counts follow the daily traffic cycle, and 7-day windows (user history,
#: item_ctr_7d) keep filling for a week after data starts: both read as drift in a healthy world
#: (item_ctr_7d crept from PSI 0.03 to 0.14 over hours 44-72 of a stationary simulation). Add them here
#: once the warehouse holds more history than their longest window.
NUMERIC_FEATURES = ("price", "position", "item_price", "item_ctr_24h", "item_popularity_24h")
CATEGORICAL_FEATURES = ("category",)
CURRENT_RELATION = "marts.training_examples"
SQL_DIR = Path(__file__).parent / "sql"


def thresholds() -> dict[str, float]:
    """The rule's knobs, from ``FLYWHEEL_DRIFT_*`` (keep monitoring/prometheus/rules.yml in step)."""
    rule = get_settings().drift
    return {
        "psi_threshold": rule.psi_threshold,
        "sustained_threshold": rule.sustained_threshold,
        "sustained_windows": rule.sustained_windows,
        "cooldown_hours": rule.cooldown_hours,
    }


def profile_reference(settings: Settings | None = None) -> dict[str, Any]:
    """The model in service, with its reference profile stored: profiled from its training window the
    first time monitoring sees it, reused after. ``{"model": None}`` before any model is registered."""
    from flywheel import registry
    from flywheel.monitoring.profiles import has_profile, profile_reference
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    warehouse = open_warehouse(settings.warehouse_url)
    model = registry.in_service(warehouse)
    if model is None:
        log.warning(
            "no model in service (none registered yet, or a rollback left no champion; see %s): there "
            "is no reference to profile",
            registry.TABLE,
        )
        return {"model": None, "profiled": False}
    if has_profile(warehouse, model.version):
        log.info("the reference profile of %s (in service) is stored already", model.version)
        return {"model": model.version, "profiled": False}
    if model.window_start is None or model.window_end is None:
        raise ValueError(
            f"model {model.version} has no training window in {registry.TABLE}: monitoring cannot tell "
            "what its reference is; register it with its window (flywheel.registry.register_candidate(..., "
            "window=(start, end)))"
        )
    start, end = naive_utc(model.window_start), naive_utc(model.window_end)
    rows = profile_reference(
        warehouse,
        CURRENT_RELATION,
        NUMERIC_FEATURES,
        CATEGORICAL_FEATURES,
        profile_id=model.version,
        window=(start, end),
    )
    log.info(
        "profiled the training window [%s, %s) of %s, now in service: %d bins",
        start,
        end,
        model.version,
        rows.num_rows,
    )
    return {"model": model.version, "profiled": True, "bins": rows.num_rows}


def resolve_window(
    asset_events: Iterable[Any] | None, data_interval_end: datetime | None, params: Mapping[str, Any]
) -> tuple[datetime, datetime]:
    """The hour to check: ``params.window_end``, else the newest hour ``features`` published, else the
    run's data interval (hourly schedule)."""
    ends = [e.extra["end"] for e in asset_events or [] if e.extra and e.extra.get("end")]
    if params.get("window_end"):
        end = naive_utc(params["window_end"])
    elif ends:
        end = max(naive_utc(x) for x in ends)
    elif data_interval_end is not None:
        end = naive_utc(data_interval_end)
    else:
        raise ValueError(
            "detect_drift needs a window: a features event, a data interval or params.window_end"
        )
    end = end.replace(minute=0, second=0, microsecond=0)
    return end - timedelta(hours=1), end


def check_window(
    reference: Mapping[str, Any],
    asset_events: Iterable[Any] | None,
    data_interval_end: datetime | None,
    params: Mapping[str, Any],
    settings: Settings | None = None,
) -> dict[str, Any]:
    """PSI per feature and online performance for one hour; metrics exported; returns the summary."""
    from flywheel.monitoring import compute_window_drift, drift_decision, export_metrics, online_performance
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import is_published

    settings = settings or get_settings()
    start, end = resolve_window(asset_events, data_interval_end, params)
    version = reference.get("model")
    summary: dict[str, Any] = {
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "model": version,
    }
    if version is None:
        log.warning("no model in service: nothing to compare [%s, %s) against", start, end)
        return {**summary, "status": "no_reference"}
    warehouse = open_warehouse(settings.warehouse_url)
    if not is_published(warehouse, start):
        # Not (or no longer) published: a gate failed or a rebuild is under way. No PSI is recorded, so
        # the hour also breaks any sustained streak.
        log.warning(
            "hour %s is not published by build_features (features.published_hours): not checked", start
        )
        return {**summary, "status": "unpublished"}
    drifts = compute_window_drift(warehouse, version, CURRENT_RELATION, start, end, model_version=version)
    performance = online_performance(warehouse, start, end)
    knobs = thresholds()
    decision = drift_decision(
        warehouse,
        version,
        end,
        psi_threshold=knobs["psi_threshold"],
        sustained_threshold=knobs["sustained_threshold"],
        sustained_windows=int(knobs["sustained_windows"]),
    )
    export_metrics(drifts, performance, decision, settings=settings)
    psi = {d.feature: d.psi for d in drifts if d.psi is not None}
    status = "no_data" if all(d.status == "no_data" for d in drifts) else "ok"
    top = sorted(psi.items(), key=lambda kv: -kv[1])[:3]
    log.info(
        "window [%s, %s) vs reference of %s: %s; highest PSI %s; rule: %s",
        start,
        end,
        version,
        status,
        ", ".join(f"{f}={v:.3f}" for f, v in top) or "-",
        decision.reason,
    )
    return {
        **summary,
        "status": status,
        "psi": psi,
        "fire": decision.fire,
        "drifting": decision.features,
        "reason": decision.reason,
        "auc": performance.auc,
    }


def should_retrain(
    summary: Mapping[str, Any], active_training_runs: int, settings: Settings | None = None
) -> bool:
    """The rule fired, and no training run is queued or running, and the cooldown since the last request
    (in data time: backfills replay old hours fast) has passed."""
    if not summary.get("fire"):
        return False
    if active_training_runs:
        log.info(
            "drift confirmed but %d train_model run(s) queued or running: not asking again",
            active_training_runs,
        )
        return False
    last = last_request_end(settings or get_settings())
    cooldown = timedelta(hours=thresholds()["cooldown_hours"])
    end = naive_utc(summary["window_end"])
    if last is not None and last <= end < last + cooldown:
        log.info(
            "drift confirmed but the last request (window ending %s) is within the %s cooldown",
            last,
            cooldown,
        )
        return False
    return True


def last_request_end(settings: Settings) -> datetime | None:
    from flywheel.warehouse import open_warehouse

    warehouse = open_warehouse(settings.warehouse_url)
    if not warehouse.table_exists(RETRAIN_REQUESTS_TABLE):
        return None
    sql = render_sql(SQL_DIR / "last_retrain_request.sql", table=RETRAIN_REQUESTS_TABLE)
    return warehouse.read_arrow(sql).column("last_window_end")[0].as_py()


def request_retrain(
    summary: Mapping[str, Any], run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Remember the request (for the cooldown) and return the ``retrain_requested`` event's extra."""
    import json

    import pyarrow as pa

    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    end = naive_utc(summary["window_end"])
    schema = pa.schema(
        [
            ("window_end", pa.timestamp("us")),
            ("features", pa.string()),
            ("run_id", pa.string()),
            ("requested_at", pa.timestamp("us")),
        ]
    )
    row = {
        "window_end": end,
        "features": json.dumps(summary.get("drifting") or {}),
        "run_id": run_id,
        "requested_at": datetime.now(UTC).replace(tzinfo=None),
    }
    with open_warehouse(settings.warehouse_url).transaction() as conn:
        conn.ensure_table(RETRAIN_REQUESTS_TABLE, schema)
        conn.execute(render_sql(SQL_DIR / "delete_retrain_request.sql", table=RETRAIN_REQUESTS_TABLE), row)
        conn.insert_arrow(RETRAIN_REQUESTS_TABLE, pa.Table.from_pylist([row], schema=schema))
    extra = {
        "window_end": end.isoformat(),
        "features": summary.get("drifting") or {},
        "reason": summary.get("reason"),
        "model": summary.get("model"),
    }
    log.warning("retraining requested: %s", extra)
    return extra
