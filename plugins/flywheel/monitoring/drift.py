"""PSI per feature in the warehouse: a window against a stored profile, or two relations side by side."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.events import naive_utc
from flywheel.monitoring.profiles import (
    checked_relation,
    edge_bindings,
    plan_features,
    reference_edges,
    stored_profile,
)
from flywheel.monitoring.reference import DEFAULT_BINS, SHARE_FLOOR, TOP_CATEGORIES
from flywheel.monitoring.relations import (
    check_columns,
    parse_relation,
    reading,
    relation_columns,
    validate_features,
)
from flywheel.monitoring.rows import insert_rows
from flywheel.warehouse import Warehouse
from flywheel.warehouse.base import READER_STATEMENT_TIMEOUT_S, Connection
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
PSI_SQL = "monitoring/psi.sql"
FEATURE_DRIFT_TABLE = "monitoring.feature_drift"
#: One row per window, model and feature: the PSI of the window against the reference of
#: ``model_version`` (the model in service when it was measured; its profile is ``profile_id``). ``bins`` is
#: the JSON list of the feature's bins (shares, edges).
FEATURE_DRIFT_SCHEMA = pa.schema(
    [
        ("window_start", pa.timestamp("us")),
        ("window_end", pa.timestamp("us")),
        ("feature", pa.string()),
        ("kind", pa.string()),
        ("psi", pa.float64()),
        ("status", pa.string()),
        ("window_rows", pa.int64()),
        ("bins", pa.string()),
        ("profile_id", pa.string()),
        ("model_version", pa.string()),
    ]
)
_BIN_FIELDS = (
    "bin",
    "bin_kind",
    "lower_edge",
    "upper_edge",
    "category",
    "reference_share",
    "current_share",
    "current_rows",
    "contribution",
)


@dataclass(frozen=True)
class FeatureDrift:
    """The PSI of one feature in one window; ``psi`` is None and ``status`` 'no_data' for an empty window."""

    feature: str
    kind: str
    psi: float | None
    status: str
    window_rows: int
    bins: list[dict[str, Any]] = field(default_factory=list)
    window_start: datetime | None = None
    window_end: datetime | None = None
    profile_id: str | None = None
    model_version: str | None = None


def flag_type(warehouse: Warehouse) -> str:
    """The type feature_histogram.sql counts comparisons as: the fastest one each engine can cast to."""
    return "smallint" if warehouse.dialect == "duckdb" else "integer"


def compute_window_drift(
    warehouse: Warehouse,
    profile_id: str,
    current_relation: str,
    window_start: datetime,
    window_end: datetime,
    *,
    timestamp_column: str | None = "event_ts",
    share_floor: float = SHARE_FLOOR,
    model_version: str | None = None,
) -> list[FeatureDrift]:
    """PSI of every feature of profile ``profile_id`` over ``window_start <= timestamp_column < window_end``
    of ``current_relation`` (a table or a select; ``timestamp_column=None`` takes it whole as the window).

    The rows record ``model_version``, the model the window was measured for (by default ``profile_id``:
    each model's reference is stored under its version). They replace that model's rows for the window in
    ``monitoring.feature_drift``, so a rerun changes nothing, and a window measured for a new model keeps
    the old model's rows beside it. An empty window is recorded with status 'no_data' and no PSI.
    """
    model_version = profile_id if model_version is None else model_version
    window_start, window_end = naive_utc(window_start), naive_utc(window_end)
    if window_end <= window_start:
        raise ValueError(f"window_end {window_end} must be after window_start {window_start}")
    current = parse_relation(current_relation, warehouse.dialect, "current relation")
    timestamp = validate_features([timestamp_column] if timestamp_column else [], "timestamp column")
    # One connection for every step: opening a DuckDB file costs more than the small reads done here.
    with warehouse.transaction() as conn:
        plan, edges = stored_profile(conn, profile_id)
        check_columns(relation_columns(conn, current), plan.features + timestamp, current)
        edge_counts, edge_params = edge_bindings(edges)
        sql = render_sql(
            PSI_SQL,
            reference=None,
            current=current,
            timestamp_column=timestamp_column,
            edge_counts=edge_counts,
            flag_type=flag_type(warehouse),
            **plan.context(),
        )
        params = {
            **edge_params,
            "profile_id": profile_id,
            "window_start": window_start,
            "window_end": window_end,
            "share_floor": share_floor,
        }
        drifts = _feature_drifts(
            conn.read_arrow(sql, params), window_start, window_end, profile_id, model_version
        )
        ensure_feature_drift_table(conn)
        conn.execute(
            render_sql(SQL_DIR / "delete_drift_window.sql", table=FEATURE_DRIFT_TABLE),
            {"window_start": window_start, "window_end": window_end, "model_version": model_version},
        )
        insert_rows(conn, FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA, _drift_rows(drifts))
    for drift in drifts:
        log.info("PSI %s [%s, %s): %s (%s)", drift.feature, window_start, window_end, drift.psi, drift.status)
    return drifts


def compare_relations(
    warehouse: Warehouse,
    reference: str,
    current: str,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    *,
    top_categories: int = TOP_CATEGORIES,
    share_floor: float = SHARE_FLOOR,
    statement_timeout_s: float = READER_STATEMENT_TIMEOUT_S,
) -> list[FeatureDrift]:
    """PSI of ``current`` against ``reference`` (tables or select queries), profiled on the fly.

    Only reads, with least privilege (``Warehouse.reader``): the analysts' question "how different are
    these two?" stores nothing and reaches no file. Unsafe names, unknown columns, an empty side and
    anything but a single select are refused with ``RelationError``; a failure while reading them (a
    timeout, a refused file) is ``RelationFailed``, whose message quotes no row values.
    """
    plan = plan_features(features, categorical, bins, top_categories)
    with warehouse.reader(statement_timeout_s) as conn:
        reference_relation = checked_relation(conn, warehouse.dialect, reference, plan.features, "reference")
        current_relation = checked_relation(conn, warehouse.dialect, current, plan.features, "current")
        # The edges are read first (two light scans of the reference); psi.sql then counts both sides
        # against them as bound constants, profiling the reference inside the same query.
        with reading(reference_relation):
            edges = reference_edges(conn, reference_relation, plan)
        edge_counts, edge_params = edge_bindings(edges)
        sql = render_sql(
            PSI_SQL,
            reference=reference_relation,
            current=current_relation,
            timestamp_column=None,
            edge_counts=edge_counts,
            flag_type=flag_type(warehouse),
            **plan.context(),
        )
        with reading(reference_relation, current_relation):
            params = {**reference_relation.params, **current_relation.params, **plan.params(), **edge_params}
            rows = conn.read_arrow(sql, {**params, "share_floor": share_floor})
    return _feature_drifts(rows, None, None, None, None)


def ensure_feature_drift_table(conn: Connection) -> None:
    """Create ``monitoring.feature_drift``, or give a table written before rows named their model the
    ``model_version`` column, filled from ``profile_id``. Idempotent."""
    conn.ensure_table(FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA)
    if not has_model_version(conn):
        conn.execute_script(render_sql(SQL_DIR / "add_model_version.sql", table=FEATURE_DRIFT_TABLE))


def has_model_version(source: Warehouse | Connection) -> bool:
    """Whether ``monitoring.feature_drift`` (which must exist) records the model of each row."""
    return "model_version" in relation_columns(source, parse_relation(FEATURE_DRIFT_TABLE))


def _feature_drifts(
    rows: pa.Table,
    window_start: datetime | None,
    window_end: datetime | None,
    profile_id: str | None,
    model_version: str | None,
) -> list[FeatureDrift]:
    by_feature: dict[str, list[dict[str, Any]]] = {}
    for row in rows.to_pylist():
        by_feature.setdefault(row["feature"], []).append(row)
    drifts = []
    for feature, feature_rows in by_feature.items():
        first = feature_rows[0]
        drifts.append(
            FeatureDrift(
                feature=feature,
                kind=first["kind"],
                psi=None if first["psi"] is None else float(first["psi"]),
                status=first["status"],
                window_rows=int(first["window_rows"]),
                bins=[{name: _plain(row[name]) for name in _BIN_FIELDS} for row in feature_rows],
                window_start=window_start,
                window_end=window_end,
                profile_id=profile_id,
                model_version=model_version,
            )
        )
    return drifts


def _plain(value: Any) -> Any:
    # Postgres hands back Decimal for some aggregates; JSON and comparisons want plain numbers.
    if value is None or isinstance(value, str | int | float):
        return value
    return float(value)


def _drift_rows(drifts: list[FeatureDrift]) -> list[dict[str, Any]]:
    return [
        {
            "window_start": d.window_start,
            "window_end": d.window_end,
            "feature": d.feature,
            "kind": d.kind,
            "psi": d.psi,
            "status": d.status,
            "window_rows": d.window_rows,
            "bins": json.dumps(d.bins),
            "profile_id": d.profile_id,
            "model_version": d.model_version,
        }
        for d in drifts
    ]
