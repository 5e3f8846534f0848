"""Reference profiles: the bins and shares of a model's training data, stored once per profile id."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pyarrow as pa

from flywheel.monitoring.quantiles import (
    edges_from_order_statistics,
    order_positions,
    quantile_steps,
    rank_fractions,
)
from flywheel.monitoring.reference import DEFAULT_BINS, TOP_CATEGORIES
from flywheel.monitoring.relations import (
    Relation,
    RelationError,
    check_columns,
    parse_relation,
    reading,
    relation_columns,
    relation_is_empty,
    validate_features,
    within_window,
)
from flywheel.monitoring.rows import insert_rows
from flywheel.warehouse import Warehouse, WarehouseError
from flywheel.warehouse.base import Connection
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
PROFILE_SQL = "monitoring/reference_profile.sql"
COUNTS_SQL = "monitoring/reference_counts.sql"
ORDER_STATISTICS_SQL = "monitoring/reference_order_statistics.sql"
PROFILE_TABLE = "monitoring.reference_profiles"
#: One row per (profile_id, feature, bin); see docs/monitoring.md for what each column means.
PROFILE_SCHEMA = pa.schema(
    [
        ("profile_id", pa.string()),
        ("feature", pa.string()),
        ("kind", pa.string()),
        ("bin", pa.int32()),
        ("bin_kind", pa.string()),
        ("lower_edge", pa.float64()),
        ("upper_edge", pa.float64()),
        ("category", pa.string()),
        ("bin_rows", pa.int64()),
        ("reference_rows", pa.int64()),
        ("share", pa.float64()),
        ("bins", pa.int32()),
        ("top_categories", pa.int32()),
    ]
)
#: The histogram template writes one comparison per edge and feature; more bins than this is a typo.
MAX_BINS = 200


@dataclass(frozen=True)
class FeaturePlan:
    """Which features to profile and how: numeric ones get ``bins`` quantile bins, categorical ones one per
    frequent category."""

    numeric: list[str]
    categorical: list[str]
    bins: int = DEFAULT_BINS
    top_categories: int = TOP_CATEGORIES

    @property
    def features(self) -> list[str]:
        return self.numeric + self.categorical

    def params(self) -> dict[str, object]:
        """The bound parameters of reference_profile.sql besides the edges (see ``edge_bindings``)."""
        return {"top_categories": self.top_categories}

    def context(self) -> dict[str, object]:
        """The identifiers reference_profile.sql is rendered with."""
        return {"numeric": self.numeric, "categorical": self.categorical}


def edge_bindings(edges: dict[str, list[float]]) -> tuple[dict[str, int], dict[str, float]]:
    """Per numeric feature, how many edges it has (a template identifier) and their bound values."""
    counts = {name: len(values) for name, values in edges.items()}
    params = {
        f"{name}__edge_{k}": value for name, values in edges.items() for k, value in enumerate(values, 1)
    }
    return counts, params


def profile_edges(rows: list[dict[str, object]], numeric: list[str]) -> dict[str, list[float]]:
    """The sorted edges of each numeric feature (bin k's lower edge for k >= 1) from profile rows."""
    edges: dict[str, list[float]] = {name: [] for name in numeric}
    for row in sorted(rows, key=lambda r: (r["feature"], r["bin"])):
        if row["bin_kind"] == "range" and row["bin"] >= 1 and row["feature"] in edges:
            edges[row["feature"]].append(float(row["lower_edge"]))  # type: ignore[arg-type]
    return edges


def plan_features(
    features: Sequence[str],
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    top_categories: int = TOP_CATEGORIES,
) -> FeaturePlan:
    """Split ``features`` into numeric and categorical: a name in ``categorical`` is categorical (whether or
    not it is also in ``features``), every other name is numeric."""
    if not isinstance(bins, int) or not 2 <= bins <= MAX_BINS:
        raise RelationError(f"bins must be a whole number from 2 to {MAX_BINS}, got {bins!r}")
    if not isinstance(top_categories, int) or top_categories < 1:
        raise RelationError(f"top_categories must be a positive whole number, got {top_categories!r}")
    categorical = validate_features(categorical, "categorical feature")
    names = validate_features([*features, *categorical])
    if not names:
        raise RelationError("no features given: name at least one column to monitor")
    numeric = [name for name in names if name not in categorical]
    return FeaturePlan(numeric, [n for n in names if n in categorical], bins, top_categories)


def checked_relation(
    conn: Connection,
    dialect: str,
    text: str,
    wanted: Sequence[str],
    role: str,
    *,
    window: tuple[datetime, datetime] | None = None,
    timestamp_column: str = "event_ts",
) -> Relation:
    """Parse ``text`` (with ``window``, keep its rows in ``[start, end)`` of ``timestamp_column``) and check
    it has the ``wanted`` columns and a row, else raise ``RelationError``."""
    relation = parse_relation(text, dialect, role)
    if window is None:
        check_columns(relation_columns(conn, relation), wanted, relation)
    else:
        (column,) = validate_features([timestamp_column], "timestamp column")
        check_columns(relation_columns(conn, relation), [*wanted, column], relation)
        relation = within_window(relation, column, *window, role=role)
    if relation_is_empty(conn, relation):
        raise RelationError(f"{role} {relation} has no rows: PSI needs rows on both sides")
    return relation


def reference_edges(conn: Connection, reference: Relation, plan: FeaturePlan) -> dict[str, list[float]]:
    """Each numeric feature's bin edges: NumPy's linear quantiles of its non-NULL reference values at
    1/B .. (B-1)/B, duplicates removed (none for a feature without values).

    Two scans, no sort of whole columns: the counts fix which sorted values each quantile lies between,
    then one aggregate per feature reads exactly those order statistics.
    """
    edges: dict[str, list[float]] = {name: [] for name in plan.numeric}
    if not plan.numeric:
        return edges
    counts = conn.read_arrow(
        render_sql(COUNTS_SQL, reference=reference, numeric=plan.numeric), reference.params
    )
    non_null = {
        name: int(counts.column(f"non_null_{i}")[0].as_py()) for i, name in enumerate(plan.numeric, 1)
    }
    present = [name for name in plan.numeric if non_null[name]]
    if not present:
        return edges
    steps = {name: quantile_steps(non_null[name], plan.bins) for name in present}
    positions = {name: order_positions(steps[name]) for name in present}
    params = {f"{name}__ranks": rank_fractions(positions[name], non_null[name]) for name in present}
    sql = render_sql(ORDER_STATISTICS_SQL, reference=reference, numeric=present)
    row = conn.read_arrow(sql, {**reference.params, **params})
    for i, name in enumerate(present, 1):
        values = [float(v) for v in row.column(f"values_{i}")[0].as_py()]
        edges[name] = edges_from_order_statistics(
            steps[name], dict(zip(positions[name], values, strict=True))
        )
    return edges


def compute_profile(conn: Connection, reference: Relation, plan: FeaturePlan) -> pa.Table:
    """The reference's profile rows (reference_profile.sql's output), computed, not stored."""
    edge_counts, edge_params = edge_bindings(reference_edges(conn, reference, plan))
    sql = render_sql(PROFILE_SQL, reference=reference, edge_counts=edge_counts, **plan.context())
    return conn.read_arrow(sql, {**reference.params, **plan.params(), **edge_params})


def profile_reference(
    warehouse: Warehouse,
    relation_sql_or_table: str,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    bins: int = DEFAULT_BINS,
    profile_id: str = "default",
    *,
    top_categories: int = TOP_CATEGORIES,
    window: tuple[datetime, datetime] | None = None,
    timestamp_column: str = "event_ts",
) -> pa.Table:
    """Profile the reference rows and store the profile as ``profile_id`` (replacing one of that id).

    With ``window=(start, end)`` the reference is the relation's rows with ``start <= timestamp_column <
    end`` (bound parameters, as a model's training window). Returns the stored rows (a few per feature).
    Refuses, with ``RelationError`` and nothing written, unsafe names, unknown columns and an empty
    reference.
    """
    plan = plan_features(features, categorical, bins, top_categories)
    if not profile_id:
        raise RelationError("profile_id is empty: name the profile (e.g. the model version)")
    # The reference may be an analyst's query: it runs with least privilege, the profile is stored apart.
    with warehouse.reader() as reader:
        reference = checked_relation(
            reader,
            warehouse.dialect,
            relation_sql_or_table,
            plan.features,
            "reference",
            window=window,
            timestamp_column=timestamp_column,
        )
        with reading(reference):
            rows = compute_profile(reader, reference, plan)
    stored = _with_profile_columns(rows, profile_id, plan)
    with warehouse.transaction() as conn:
        conn.ensure_table(PROFILE_TABLE, PROFILE_SCHEMA)
        conn.execute(
            render_sql(SQL_DIR / "delete_profile.sql", table=PROFILE_TABLE), {"profile_id": profile_id}
        )
        insert_rows(conn, PROFILE_TABLE, PROFILE_SCHEMA, stored.to_pylist())
    log.info(
        "stored reference profile %r: %d feature(s), %d bin(s) from %s",
        profile_id,
        len(plan.features),
        stored.num_rows,
        reference,
    )
    return stored


def _with_profile_columns(rows: pa.Table, profile_id: str, plan: FeaturePlan) -> pa.Table:
    n = rows.num_rows
    columns = {
        "profile_id": pa.array([profile_id] * n, pa.string()),
        "bins": pa.array([plan.bins] * n, pa.int32()),
        "top_categories": pa.array([plan.top_categories] * n, pa.int32()),
    }
    arrays = [
        columns[f.name] if f.name in columns else rows.column(f.name).cast(f.type) for f in PROFILE_SCHEMA
    ]
    return pa.Table.from_arrays(arrays, schema=PROFILE_SCHEMA)


def has_profile(warehouse: Warehouse, profile_id: str) -> bool:
    """Whether a reference profile ``profile_id`` is stored."""
    if not warehouse.table_exists(PROFILE_TABLE):
        return False
    return warehouse.read_arrow(_stored_profile_sql(), {"profile_id": profile_id}).num_rows > 0


def stored_profile(conn: Connection, profile_id: str) -> tuple[FeaturePlan, dict[str, list[float]]]:
    """A stored profile's features (and kinds) and numeric edges, or ``WarehouseError`` if there is none."""
    schema, _, name = PROFILE_TABLE.partition(".")
    if not conn.read_arrow(render_sql("table_exists.sql"), {"schema": schema, "name": name}).num_rows:
        raise WarehouseError(f"no {PROFILE_TABLE} table yet: store a profile with profile_reference() first")
    rows = conn.read_arrow(_stored_profile_sql(), {"profile_id": profile_id}).to_pylist()
    if not rows:
        raise WarehouseError(
            f"no reference profile {profile_id!r} in {PROFILE_TABLE}: store it with profile_reference() first"
        )
    kinds = {r["feature"]: r["kind"] for r in rows}
    # Names read back are validated again: the table is editable, the templates trust only checked names.
    plan = plan_features(
        list(kinds),
        [name for name, kind in kinds.items() if kind == "categorical"],
        bins=max(int(r["bins"]) for r in rows),
    )
    return plan, profile_edges(rows, plan.numeric)


def _stored_profile_sql() -> str:
    return render_sql(SQL_DIR / "stored_profile.sql", table=PROFILE_TABLE)
