"""The feature-mart gates on hand-built marts that follow the contract (dbt/README.md)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from flywheel.config import Settings, get_settings
from flywheel.quality import GateFailed, run_gate
from flywheel.warehouse import open_warehouse

GATED = datetime(2026, 1, 3, 12)
HOURS = [GATED - timedelta(hours=h) for h in range(4, -1, -1)]  # four hours of history, then the gated one
USERS, ITEMS, EXAMPLES = 60, 40, 80
CATEGORIES = ["cat_00", "cat_01", "cat_02"]


def _user_features(hour: datetime, rng: np.random.Generator) -> pa.Table:
    n = USERS
    columns: dict[str, object] = {"user_id": np.arange(n, dtype=np.int64), "feature_ts": [hour] * n}
    for window, scale in (("1h", 3), ("24h", 40), ("7d", 200)):
        impressions = rng.integers(0, scale + 1, n)
        clicks = rng.binomial(impressions, 0.08)
        columns[f"user_impressions_{window}"] = impressions
        columns[f"user_clicks_{window}"] = clicks
        columns[f"user_ctr_{window}"] = np.where(impressions > 0, clicks / np.maximum(impressions, 1), 0.0)
    columns["user_top_category"] = [CATEGORIES[i % 3] for i in range(n)]
    columns["user_top_category_share"] = rng.uniform(0, 1, n)
    columns["user_hours_since_last_click"] = rng.uniform(0, 168, n)
    return pa.table(columns)


def _item_features(hour: datetime, rng: np.random.Generator) -> pa.Table:
    n = ITEMS
    imp24, imp7 = rng.integers(1, 50, n), rng.integers(50, 300, n)
    clk24, clk7 = rng.binomial(imp24, 0.1), rng.binomial(imp7, 0.1)
    return pa.table(
        {
            "item_id": np.arange(n, dtype=np.int64),
            "feature_ts": [hour] * n,
            "item_category": [CATEGORIES[i % 3] for i in range(n)],
            "item_price": rng.uniform(5, 80, n),
            "item_impressions_24h": imp24,
            "item_clicks_24h": clk24,
            "item_ctr_24h": clk24 / imp24,
            "item_popularity_24h": imp24 / imp24.sum(),
            "item_impressions_7d": imp7,
            "item_clicks_7d": clk7,
            "item_ctr_7d": clk7 / imp7,
        }
    )


def _training_examples(hour: datetime, rng: np.random.Generator) -> pa.Table:
    n = EXAMPLES
    user_rows = _user_features(hour, rng).take(pa.array(np.arange(n) % USERS))
    item_rows = _item_features(hour, rng).take(pa.array(np.arange(n) % ITEMS))
    label = rng.binomial(1, 0.1, n).astype(np.int32)
    columns = {
        "impression_id": [f"imp-{hour:%d%H}-{i}" for i in range(n)],
        "request_id": [f"req-{hour:%d%H}-{i // 10}" for i in range(n)],
        "event_ts": [hour + timedelta(seconds=40 * i) for i in range(n)],
        "user_id": user_rows.column("user_id"),
        "item_id": item_rows.column("item_id"),
        "position": pa.array(np.arange(n) % 10 + 1, pa.int32()),
        "category": item_rows.column("item_category"),
        "price": item_rows.column("item_price"),
        "label": pa.array(label, pa.int32()),
        "gmv": label * rng.uniform(0, 100, n),
        "feature_ts": [hour] * n,
    }
    for features in (user_rows, item_rows):  # the snapshot at feature_ts, as dbt joins it
        for name in features.column_names[2:]:
            columns[name] = features.column(name)
    return pa.table(columns)


MARTS = {
    "marts_user_features": ("marts.user_features", "feature_ts", _user_features),
    "marts_item_features": ("marts.item_features", "feature_ts", _item_features),
    "marts_training_examples": ("marts.training_examples", "event_ts", _training_examples),
}


def _with(data: pa.Table, column: str, rows: range, value) -> pa.Table:
    values = data.column(column).to_pylist()
    for i in rows:
        values[i] = value(values[i]) if callable(value) else value
    index = data.schema.get_field_index(column)
    return data.set_column(index, data.schema.field(index), pa.array(values, data.schema.field(index).type))


def _ctr_above_one(data: pa.Table) -> pa.Table:
    return _with(data, "user_ctr_24h", range(3), 1.5)


def _duplicate_item_key(data: pa.Table) -> pa.Table:
    return _with(data, "item_id", range(1, 3), 0)


def _features_from_the_future(data: pa.Table) -> pa.Table:
    return _with(data, "feature_ts", range(2), lambda ts: GATED + timedelta(minutes=59))


FAILURES = {
    "ctr above 1": (
        "marts_user_features",
        _ctr_above_one,
        "expect_column_values_to_be_between(user_ctr_24h): 3 of 60 rows not >= 0 and <= 1, e.g. 1.5",
    ),
    "duplicate (item_id, feature_ts)": (
        "marts_item_features",
        _duplicate_item_key,
        "expect_compound_columns_to_be_unique(item_id, feature_ts): 3 of 40 rows duplicated",
    ),
    "feature snapshot after the impression": (
        "marts_training_examples",
        _features_from_the_future,
        "expect_column_pair_values_a_to_be_greater_than_b(event_ts, feature_ts): 2 of 80 rows break "
        "event_ts >= feature_ts",
    ),
}


def _build(settings: Settings, suite: str, corrupt: Callable[[pa.Table], pa.Table] | None = None) -> int:
    """Write the mart's five hours (the gated one optionally corrupted); return the gated hour's rows."""
    table, column, make = MARTS[suite]
    warehouse = open_warehouse(settings.warehouse_url)
    rng = np.random.default_rng(11)
    for hour in HOURS:
        data = make(hour, rng)
        if hour == GATED and corrupt:
            data = corrupt(data)
        warehouse.replace_partition(table, data, column, hour, hour + timedelta(hours=1))
    return data.num_rows


def _count(settings: Settings, table: str, column: str) -> int:
    return (
        open_warehouse(settings.warehouse_url)
        .read_arrow(
            f"select count(*) as n from {table} where {column} >= :start and {column} < :end",
            {"start": GATED, "end": GATED + timedelta(hours=1)},
        )
        .to_pylist()[0]["n"]
    )


def _gate(settings: Settings, suite: str, run_id: str):
    return run_gate(suite, start=GATED, end=GATED + timedelta(hours=1), settings=settings, run_id=run_id)


def test_good_marts_pass(home: Settings) -> None:
    for suite in MARTS:
        rows = _build(home, suite)
        result = _gate(home, suite, "good")
        assert result.success and result.row_count == rows
        assert result.bounds.history_hours == 4


def test_first_sight_defaults_pass_the_training_examples_gate(home: Settings) -> None:
    # An item never shown before gets the contract's defaults (item_price 0, counts 0): valid, not bad data.
    def cold_items(data: pa.Table) -> pa.Table:
        for column in ("item_price", "item_ctr_24h", "item_popularity_24h", "item_ctr_7d"):
            data = _with(data, column, range(5), 0.0)
        return data

    rows = _build(home, "marts_training_examples", cold_items)
    result = _gate(home, "marts_training_examples", "cold")
    assert result.success and result.row_count == rows


@pytest.mark.parametrize("case", list(FAILURES))
def test_a_bad_mart_partition_is_copied_aside_and_passes_once_rebuilt(home: Settings, case: str) -> None:
    suite, corrupt, expected = FAILURES[case]
    table, column, _ = MARTS[suite]
    rows = _build(home, suite, corrupt)

    with pytest.raises(GateFailed) as failed:
        _gate(home, suite, "bad")
    assert expected in str(failed.value)
    # Copied, not moved: the mart belongs to dbt; the copy is the evidence.
    assert _count(home, table, column) == rows
    assert _count(home, f"quarantine.{suite}", column) == rows
    with pytest.raises(GateFailed):
        _gate(home, suite, "bad-retry")
    assert _count(home, f"quarantine.{suite}", column) == rows  # replaced, not doubled

    _build(home, suite)  # dbt rebuilds the partition from fixed inputs
    assert _gate(home, suite, "rebuilt").success


@pytest.mark.postgres
def test_mart_gates_run_on_postgres(
    postgres_url: str, home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", postgres_url)
    settings = get_settings()
    rows = _build(settings, "marts_user_features", _ctr_above_one)
    with pytest.raises(GateFailed, match=r"expect_column_values_to_be_between\(user_ctr_24h\): 3 of 60"):
        _gate(settings, "marts_user_features", "bad")
    assert _count(settings, "quarantine.marts_user_features", "feature_ts") == rows
    _build(settings, "marts_training_examples")
    assert _gate(settings, "marts_training_examples", "good").success
