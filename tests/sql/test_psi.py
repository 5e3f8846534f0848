"""PSI in SQL (stored profile and on-the-fly) agrees with the NumPy reference on DuckDB and on PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from flywheel.config import Settings
from flywheel.monitoring import compare_relations, compute_window_drift, drift_decision, profile_reference
from flywheel.monitoring import reference as ref
from flywheel.monitoring.drift import FEATURE_DRIFT_SCHEMA
from flywheel.warehouse import Warehouse, WarehouseError, open_warehouse

TOLERANCE = 1e-9
START = datetime(2026, 1, 1)


@pytest.fixture
def warehouse(warehouse_home: Settings) -> Warehouse:
    return open_warehouse(warehouse_home.warehouse_url)


def load(warehouse: Warehouse, table: str, columns: dict[str, tuple[pa.DataType, list]]) -> None:
    data = pa.table({name: pa.array(values, type) for name, (type, values) in columns.items()})
    with warehouse.transaction() as conn:
        conn.ensure_table(table, data.schema)
        conn.insert_arrow(table, data)


def reference_psi(reference: list, current: list, kind: str, bins: int) -> ref.ReferenceResult:
    return ref.feature_psi(reference, current, kind, bins=bins)


def assert_agrees(drift, expected: ref.ReferenceResult) -> None:
    """Same PSI, same bins (numbered alike), same shares on both sides."""
    assert [b["bin"] for b in drift.bins] == expected.bins, drift.feature
    assert drift.psi == pytest.approx(expected.psi, abs=TOLERANCE), drift.feature
    got_p = np.array([b["reference_share"] for b in drift.bins])
    got_q = np.array([b["current_share"] for b in drift.bins])
    np.testing.assert_allclose(got_p, expected.reference_shares, atol=1e-12, err_msg=drift.feature)
    np.testing.assert_allclose(got_q, expected.current_shares, atol=1e-12, err_msg=drift.feature)


def _nullify(rng: np.random.Generator, values: list, share: float) -> list:
    return [None if rng.random() < share else v for v in values]


def random_case(seed: int) -> tuple[dict, dict]:
    """Reference and current columns: a shifted normal, integers with ties, a skewed categorical with more
    than 50 categories (so 'other' is used), and NULLs in all but the first."""
    rng = np.random.default_rng(seed)
    n_ref, n_cur = 3000, 1700
    reference = {
        "score": (pa.float64(), rng.normal(size=n_ref).tolist()),
        "visits": (pa.int64(), _nullify(rng, rng.poisson(3, n_ref).tolist(), 0.07)),
        "price": (pa.float64(), _nullify(rng, np.round(rng.lognormal(3, 1, n_ref), 2).tolist(), 0.02)),
        "segment": (pa.string(), _nullify(rng, [f"s{v % 90}" for v in rng.zipf(1.4, n_ref)], 0.05)),
    }
    current = {
        "score": (pa.float64(), rng.normal(0.4, 1.3, n_cur).tolist()),
        "visits": (pa.int64(), _nullify(rng, rng.poisson(4, n_cur).tolist(), 0.2)),
        "price": (pa.float64(), _nullify(rng, np.round(rng.lognormal(3.2, 1, n_cur), 2).tolist(), 0.0)),
        "segment": (pa.string(), _nullify(rng, [f"s{v % 120}" for v in rng.zipf(1.2, n_cur)], 0.01)),
    }
    return reference, current


NUMERIC = ["score", "visits", "price"]
CATEGORICAL = ["segment"]
KINDS = {"score": "numeric", "visits": "numeric", "price": "numeric", "segment": "categorical"}


@pytest.mark.parametrize("seed,bins", [(1, 10), (2, 4), (3, 25)])
def test_random_features_agree_with_numpy(warehouse: Warehouse, seed: int, bins: int) -> None:
    reference, current = random_case(seed)
    load(warehouse, "features.reference", reference)
    load(warehouse, "features.current", current)

    on_the_fly = compare_relations(
        warehouse, "features.reference", "select * from features.current", NUMERIC, CATEGORICAL, bins
    )
    profile_reference(warehouse, "features.reference", NUMERIC, CATEGORICAL, bins, "model_v1")
    stored = compute_window_drift(
        warehouse, "model_v1", "features.current", START, START + timedelta(hours=1), timestamp_column=None
    )

    assert sorted(d.feature for d in on_the_fly) == sorted(KINDS)
    for drifts in (on_the_fly, stored):
        for drift in drifts:
            expected = reference_psi(reference[drift.feature][1], current[drift.feature][1], drift.kind, bins)
            assert drift.kind == KINDS[drift.feature]
            assert drift.status == "ok" and drift.window_rows == len(current["score"][1])
            assert_agrees(drift, expected)
    # The stored path wrote exactly what it returned.
    rows = warehouse.read_arrow(
        "select feature, psi from monitoring.feature_drift order by feature"
    ).to_pylist()
    assert {r["feature"]: r["psi"] for r in rows} == {d.feature: d.psi for d in stored}


EDGE_CASES = {
    # Half the values equal: several quantiles coincide, duplicates are removed, ties sit on an edge.
    "ties": (
        "numeric",
        [1.0] * 50 + [2.0] * 30 + [3.0] * 15 + [4.0, 5.0, 6.0, 7.0, 8.0],
        [1.0] * 10 + [2.0] * 40 + [4.0] * 30 + [9.0] * 20,
    ),
    # One value: every edge is that value, so bins are "below it" and "at or above it".
    "constant": ("numeric", [5.0] * 40, [5.0] * 30 + [4.0] * 5 + [6.0] * 5),
    "constant_unchanged": ("numeric", [5.0] * 40, [5.0] * 17),
    # Values on interpolated edges, negative numbers, NULLs in the reference only.
    "exact_edges": ("numeric", [-3.0, -1.0, 0.0, 1.0, 3.0, None, None, 2.5], [-1.0, 0.0, 0.5, 1.0, 3.0, 7.0]),
    "all_null_current": ("numeric", [float(v) for v in range(20)], [None] * 12),
    "all_null_reference": ("numeric", [None] * 10, [1.0, 2.0, None]),
    "unseen_category": ("categorical", ["a", "b", "b", "c", None], ["a", "d", "d", "e", "b", None, None]),
    # Equal counts: the first 50 by value get bins; the 51st and later fall into 'other'.
    "category_ties": (
        "categorical",
        [f"k{i:03d}" for i in range(60)] * 2 + ["Z"] * 5 + ["a"],
        [f"k{i:03d}" for i in range(45, 60)] + ["Z", "a", "new"],
    ),
    # The 50th place is a tie of "a", "B" and "_x": byte order ("B" < "_x" < "a") decides, not the locale.
    "category_ties_case": (
        "categorical",
        [f"k{i:03d}" for i in range(49)] * 3 + ["a", "B", "_x"] * 2,
        ["a", "a", "B", "_x", "k000", "k048"],
    ),
    "all_null_categories": ("categorical", ["x", "y", "y"], [None, None]),
}


@pytest.mark.parametrize("case", sorted(EDGE_CASES))
def test_edge_cases_agree_with_numpy(warehouse: Warehouse, case: str) -> None:
    kind, reference, current = EDGE_CASES[case]
    arrow_type = pa.float64() if kind == "numeric" else pa.string()
    load(warehouse, "features.reference", {"f": (arrow_type, reference)})
    load(warehouse, "features.current", {"f": (arrow_type, current)})
    numeric, categorical = (["f"], []) if kind == "numeric" else ([], ["f"])

    (drift,) = compare_relations(
        warehouse, "features.reference", "features.current", numeric, categorical, 10
    )
    assert_agrees(drift, reference_psi(reference, current, kind, 10))


def test_constant_column_has_zero_psi_when_unchanged(warehouse: Warehouse) -> None:
    load(warehouse, "features.reference", {"f": (pa.float64(), [5.0] * 40)})
    load(warehouse, "features.current", {"f": (pa.float64(), [5.0] * 17)})
    (drift,) = compare_relations(warehouse, "features.reference", "features.current", ["f"])
    assert drift.psi == pytest.approx(0.0, abs=TOLERANCE)
    assert [b["bin_kind"] for b in drift.bins] == ["range", "range", "null"]


def test_window_without_rows_is_no_data_and_rerun_replaces_the_window(warehouse: Warehouse) -> None:
    hours = [START + timedelta(minutes=10 * i) for i in range(12)]  # two hours of rows
    columns = {
        "event_ts": (pa.timestamp("us"), hours),
        "x": (pa.float64(), [float(i % 5) for i in range(12)]),
    }
    load(warehouse, "features.rows", columns)
    profile_reference(warehouse, "features.rows", ["x"], profile_id="p")

    first = compute_window_drift(warehouse, "p", "features.rows", START, START + timedelta(hours=1))
    again = compute_window_drift(warehouse, "p", "features.rows", START, START + timedelta(hours=1))
    empty = compute_window_drift(
        warehouse, "p", "features.rows", START + timedelta(hours=5), START + timedelta(hours=6)
    )

    assert first == again and first[0].window_rows == 6 and first[0].status == "ok"
    assert empty[0].status == "no_data" and empty[0].psi is None and empty[0].window_rows == 0
    expected = reference_psi(columns["x"][1], columns["x"][1][:6], "numeric", 10)
    assert first[0].psi == pytest.approx(expected.psi, abs=TOLERANCE)
    counts = warehouse.read_arrow(
        "select status, count(*) as n from monitoring.feature_drift group by status order by status"
    ).to_pylist()
    assert counts == [{"status": "no_data", "n": 1}, {"status": "ok", "n": 1}]


def _drift_table(warehouse: Warehouse) -> list[dict]:
    return warehouse.read_arrow(
        "select window_start, window_end, feature, psi, status, window_rows, bins, profile_id, model_version"
        " from monitoring.feature_drift order by model_version, window_end, feature"
    ).to_pylist()


def test_each_model_keeps_its_own_rows_for_a_window_and_a_rerun_changes_nothing(
    warehouse: Warehouse,
) -> None:
    # Two hours of rows; the second hour drifts far from the first model's reference (x in 0..4).
    hours = [START + timedelta(minutes=10 * i) for i in range(12)]
    xs = [float(i % 5) for i in range(6)] + [float(10 + i) for i in range(6)]
    load(warehouse, "features.rows", {"event_ts": (pa.timestamp("us"), hours), "x": (pa.float64(), xs)})
    profile_reference(warehouse, "select * from features.rows where x < 5", ["x"], profile_id="v1")
    profile_reference(warehouse, "select * from features.rows where x >= 10", ["x"], profile_id="v2")
    second_hour = (START + timedelta(hours=1), START + timedelta(hours=2))

    for model in ("v1", "v2"):
        compute_window_drift(warehouse, model, "features.rows", START, START + timedelta(hours=1))
        compute_window_drift(warehouse, model, "features.rows", *second_hour)
    before = _drift_table(warehouse)
    decisions = {model: drift_decision(warehouse, model, second_hour[1]) for model in ("v1", "v2")}
    # The same hour measured for v2 left v1's rows for it in place, and v1's drift is not v2's.
    assert [(r["model_version"], r["window_end"]) for r in before] == [
        ("v1", START + timedelta(hours=1)),
        ("v1", second_hour[1]),
        ("v2", START + timedelta(hours=1)),
        ("v2", second_hour[1]),
    ]
    assert all(r["profile_id"] == r["model_version"] for r in before)
    assert decisions["v1"].fire and decisions["v1"].features["x"] > 1
    # The second hour is v2's own training data: v1's PSI over it, in the same window, is not v2's.
    assert before[3]["psi"] == pytest.approx(0.0, abs=TOLERANCE)
    assert not decisions["v2"].fire and decisions["v2"].features == {}

    again = compute_window_drift(warehouse, "v2", "features.rows", *second_hour)
    assert _drift_table(warehouse) == before
    assert again[0].model_version == "v2" and again[0].psi == before[3]["psi"]
    assert drift_decision(warehouse, "v2", second_hour[1]) == decisions["v2"]


def test_a_drift_table_written_before_rows_named_their_model_is_upgraded(warehouse: Warehouse) -> None:
    # The table as it was: no model_version column; profile_id was always the model's version.
    hours = [START + timedelta(minutes=10 * i) for i in range(12)]
    load(
        warehouse, "features.rows", {"event_ts": (pa.timestamp("us"), hours), "x": (pa.float64(), [1.0] * 12)}
    )
    profile_reference(warehouse, "features.rows", ["x"], profile_id="v1")
    old_columns = [name for name in FEATURE_DRIFT_SCHEMA.names if name != "model_version"]
    load(
        warehouse,
        "monitoring.feature_drift",
        {
            name: (FEATURE_DRIFT_SCHEMA.field(name).type, [value])
            for name, value in zip(
                old_columns,
                [START, START + timedelta(hours=1), "x", "numeric", 0.15, "ok", 6, "[]", "v1"],
                strict=True,
            )
        },
    )
    with pytest.raises(WarehouseError, match="no model_version column.*compute_window_drift"):
        drift_decision(warehouse, "v1", START + timedelta(hours=1))

    second_hour = (START + timedelta(hours=1), START + timedelta(hours=2))
    (drift,) = compute_window_drift(warehouse, "v1", "features.rows", *second_hour)
    compute_window_drift(warehouse, "v1", "features.rows", *second_hour)  # the upgrade runs once

    rows = _drift_table(warehouse)
    assert [(r["window_end"], r["psi"], r["model_version"]) for r in rows] == [
        (START + timedelta(hours=1), 0.15, "v1"),
        (second_hour[1], drift.psi, "v1"),
    ]
    assert drift.psi == pytest.approx(0.0, abs=TOLERANCE)  # the same constant as the reference
    # The old row counts for the model it was measured against: as a run of one hour over 0.1, it fires.
    assert not drift_decision(warehouse, "v1", second_hour[1]).fire
    assert drift_decision(warehouse, "v1", START + timedelta(hours=1), sustained_windows=1).fire


def test_profile_is_replaced_not_duplicated(warehouse: Warehouse) -> None:
    load(warehouse, "features.reference", {"x": (pa.float64(), [float(i) for i in range(100)])})
    profile_reference(warehouse, "features.reference", ["x"], bins=10, profile_id="v1")
    stored = profile_reference(warehouse, "features.reference", ["x"], bins=5, profile_id="v1")

    rows = warehouse.read_arrow(
        "select bin, bin_kind, lower_edge, upper_edge, share, bins from monitoring.reference_profiles"
        " where profile_id = 'v1' order by bin"
    ).to_pylist()
    assert len(rows) == stored.num_rows == 5 + 1  # 5 range bins and the NULL bin (bin -1, first here)
    edges = [r["lower_edge"] for r in rows if r["bin_kind"] == "range" and r["bin"] > 0]
    np.testing.assert_array_equal(edges, np.quantile(np.arange(100.0), [0.2, 0.4, 0.6, 0.8]))
    assert {r["bins"] for r in rows} == {5}
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)


@pytest.mark.parametrize("bins", [7, 10, 20])
def test_edges_are_numpys_quantiles_to_the_last_bit(warehouse: Warehouse, bins: int) -> None:
    # quantile_cont / percentile_cont round differently from NumPy (one ulp on some edges); the template
    # computes NumPy's interpolation step by step, so the stored edges are the very same doubles.
    rng = np.random.default_rng(bins)
    samples = [
        rng.normal(size=int(rng.integers(30, 2500))) * 10.0 ** int(rng.integers(-3, 4)) for _ in range(6)
    ]
    for i, values in enumerate(samples):
        load(warehouse, f"features.sample_{i}", {"x": (pa.float64(), values.tolist())})
        stored = profile_reference(warehouse, f"features.sample_{i}", ["x"], bins=bins, profile_id=f"s{i}")
        rows = sorted(stored.to_pylist(), key=lambda r: r["bin"])
        edges = [r["lower_edge"] for r in rows if r["bin_kind"] == "range" and r["bin"] > 0]
        assert edges == np.unique(np.quantile(values, np.arange(1, bins) / bins)).tolist()


def test_keywords_and_long_names_as_features(warehouse: Warehouse) -> None:
    # Columns are quoted in the templates and derived names use positions, so neither a reserved word nor
    # a name near PostgreSQL's 63-character limit breaks the SQL.
    long_name = "x" * 60
    reference, current = list(range(40)), [v * 1.5 for v in range(30)]
    load(
        warehouse,
        "features.r",
        {"v": (pa.float64(), [float(v) for v in reference]), "c": (pa.string(), ["a"] * 40)},
    )
    load(warehouse, "features.c", {"v": (pa.float64(), current), "c": (pa.string(), ["a", "b"] * 15)})
    query = f'select v as "order", v as {long_name}, c as "select" from features.{{}}'

    drifts = compare_relations(
        warehouse, query.format("r"), query.format("c"), ["order", long_name], ["select"], bins=12
    )

    numeric = reference_psi([float(v) for v in reference], current, "numeric", 12)
    categorical = reference_psi(["a"] * 40, ["a", "b"] * 15, "categorical", 12)
    by_name = {d.feature: d for d in drifts}
    assert_agrees(by_name["order"], numeric)
    assert_agrees(by_name[long_name], numeric)
    assert_agrees(by_name["select"], categorical)
