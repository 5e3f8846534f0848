"""The dbt feature marts on real DuckDB and PostgreSQL: built from simulated events, checked against NumPy.

Point in time is the property that matters: an event at time t never reaches a feature of a snapshot
(or a training example) at feature_ts <= t, and incremental runs give exactly what a full refresh gives.
"""

from __future__ import annotations

import json
import math
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest
from feature_reference import as_datetime, feature_hours, item_snapshots, user_snapshots

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS
from flywheel.features.dbt import dbt_env, dbt_target, run_dbt
from flywheel.ingest.load import load_events
from flywheel.simulate import SimulationConfig, simulate
from flywheel.warehouse import open_warehouse

START = datetime(2026, 1, 1)
HOURS = 30
MARTS = {
    "marts.user_features": "user_id, feature_ts",
    "marts.item_features": "item_id, feature_ts",
    "marts.training_examples": "impression_id",
}
BACKENDS = ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def world(request: pytest.FixtureRequest, home: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings whose warehouse is a fresh DuckDB file or a fresh PostgreSQL database, as parametrized."""
    if request.param == "postgres":
        monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", request.getfixturevalue("postgres_url"))
        return get_settings()
    return home


def _simulate(settings: Settings) -> None:
    # A small world (300 users, 200 items) so users come back and the windows have something to count.
    cfg = SimulationConfig(start=START, hours=HOURS, impressions_per_hour=200, n_users=300, n_items=200)
    simulate(cfg, settings.landing_dir)


def _ingest(settings: Settings, start: datetime, end: datetime) -> None:
    load_events(start, end, settings=settings)


def _build(settings: Settings, tmp_path: Path, *args: str) -> None:
    run_dbt(["build", *args], settings, target_path=tmp_path / "dbt-target")


def _read(settings: Settings, table: str) -> pd.DataFrame:
    return (
        open_warehouse(settings.warehouse_url)
        .read_arrow(f"select * from {table} order by {MARTS[table]}")
        .to_pandas()
    )


def _raw(settings: Settings, table: str) -> pd.DataFrame:
    return open_warehouse(settings.warehouse_url).read_arrow(f"select * from raw.{table}").to_pandas()


def _assert_same_rows(actual: pd.DataFrame, expected: pd.DataFrame, what: str) -> None:
    assert list(actual.columns) == list(expected.columns), what
    assert len(actual) == len(expected), f"{what}: {len(actual)} rows, expected {len(expected)}"
    for column in actual.columns:
        a, e = actual[column].to_numpy(), expected[column].to_numpy()
        if actual[column].dtype.kind == "f":
            assert (abs(a - e) <= 1e-9 * (1 + abs(e))).all(), f"{what}.{column} differs"
        else:
            assert (a == e).all(), f"{what}.{column} differs"


@pytest.mark.parametrize("world", BACKENDS, indirect=True)
def test_build_matches_a_numpy_recomputation(world: Settings, tmp_path: Path) -> None:
    _simulate(world)
    _ingest(world, START, START + timedelta(hours=HOURS + 1))  # + the hour of the last late clicks
    _build(world, tmp_path)
    # The analysts' documentation site builds from the same warehouse, column types included.
    run_dbt(["docs", "generate"], world, target_path=tmp_path / "docs")
    catalog = json.loads((tmp_path / "docs" / "catalog.json").read_text())
    assert {f"model.flywheel.{mart.split('.')[1]}" for mart in MARTS} <= set(catalog["nodes"])
    assert (tmp_path / "docs" / "index.html").exists()

    impressions, clicks, orders = (_raw(world, t) for t in ("impressions", "clicks", "orders"))
    users, items, examples = (_read(world, t) for t in MARTS)
    assert len(users) and len(items) and len(examples) == len(impressions)
    hours = feature_hours(impressions, clicks)

    # Windows, CTRs, top category and recency for the most active users and a spread of the others.
    by_activity = impressions["user_id"].value_counts().index.tolist()
    for user_id in by_activity[:10] + by_activity[10::40]:
        expected = user_snapshots(user_id, impressions, clicks, hours)
        actual = users[users["user_id"] == user_id].set_index("feature_ts")
        assert sorted(actual.index) == [as_datetime(ts) for ts in expected], (
            f"snapshot hours of user {user_id}"
        )
        for ts, row in expected.items():
            got = actual.loc[as_datetime(ts)]
            for column, value in row.items():
                if isinstance(value, float):
                    assert math.isclose(got[column], value, rel_tol=1e-9, abs_tol=1e-9), (user_id, ts, column)
                else:
                    assert got[column] == value, (user_id, ts, column, got[column], value)

    by_item = impressions["item_id"].value_counts().index.tolist()
    for item_id in by_item[:3] + by_item[50::60]:
        expected = item_snapshots(item_id, impressions, clicks, hours)
        actual = items[items["item_id"] == item_id].set_index("feature_ts")
        assert sorted(actual.index) == [as_datetime(ts) for ts in expected], (
            f"snapshot hours of item {item_id}"
        )
        for ts, row in expected.items():
            got = actual.loc[as_datetime(ts)]
            for column, value in row.items():
                if isinstance(value, float):
                    assert math.isclose(got[column], value, rel_tol=1e-9, abs_tol=1e-9), (item_id, ts, column)
                else:
                    assert got[column] == value, (item_id, ts, column)

    # Labels and gmv from the raw outcomes; features equal the user's snapshot at the impression's hour.
    outcomes = examples.set_index("impression_id")
    assert set(outcomes.index[outcomes["label"] == 1]) == set(clicks["impression_id"])
    gmv = orders.groupby("impression_id")["gmv"].sum()
    assert outcomes.loc[gmv.index, "gmv"].to_numpy() == pytest.approx(gmv.to_numpy())
    assert outcomes["gmv"].sum() == pytest.approx(orders["gmv"].sum())
    joined = examples.merge(users, on=["user_id", "feature_ts"], how="left", suffixes=("", "_mart"))
    known = joined["user_impressions_7d_mart"].notna()
    assert known.any() and (joined.loc[known, "user_ctr_24h"] == joined.loc[known, "user_ctr_24h_mart"]).all()
    assert (joined.loc[~known, "user_hours_since_last_click"] == 168).all()


@pytest.mark.parametrize("world", BACKENDS, indirect=True)
def test_incremental_runs_equal_a_full_refresh(world: Settings, tmp_path: Path) -> None:
    _simulate(world)
    split = START + timedelta(hours=18)
    _ingest(world, START, split)
    _build(world, tmp_path)
    first = {table: _read(world, table) for table in MARTS}
    _ingest(world, split, START + timedelta(hours=HOURS + 1))
    _build(world, tmp_path)
    incremental = {table: _read(world, table) for table in MARTS}
    _build(world, tmp_path, "--full-refresh")

    assert len(incremental["marts.training_examples"]) > len(first["marts.training_examples"])
    # The last hour of the first run had clicks still to come: the lookback must have relabelled it.
    labels = {
        run: tables["marts.training_examples"]["label"].sum()
        for run, tables in (("first", first), ("now", incremental))
    }
    assert labels["now"] > labels["first"]
    for table in MARTS:
        _assert_same_rows(incremental[table], _read(world, table), table)

    # Point in time on all the data: the hours after the split changed no snapshot taken up to it.
    for table in ("marts.user_features", "marts.item_features"):
        before, now = first[table], incremental[table]
        assert before["feature_ts"].max() == split
        _assert_same_rows(before, now[now["feature_ts"] <= split].reset_index(drop=True), table)


def _table(table: str, rows: list[dict]) -> pa.Table:
    schema = EVENT_SCHEMAS[table]
    data = pa.Table.from_pylist(rows, schema=schema)
    return data.append_column("_source_file", pa.array(["hand-built"] * len(rows)))


T = datetime(2026, 1, 2, 10)  # the moment under test: a whole hour, so it is also a feature_ts
JUST_BEFORE = T - timedelta(microseconds=1)


def _load_hand_built(settings: Settings) -> None:
    def impression(impression_id: str, ts: datetime, user_id: int, item_id: int, category: str, price: float):
        return dict(
            impression_id=impression_id,
            request_id=f"req-{impression_id}",
            event_ts=ts,
            user_id=user_id,
            item_id=item_id,
            position=1,
            category=category,
            price=price,
        )

    impressions = [
        impression("imp-1", T - timedelta(minutes=90), 1, 7, "cat_y", 10.0),
        impression("imp-2", T - timedelta(minutes=30), 1, 7, "cat_y", 11.0),
        impression("imp-3", T, 1, 5, "cat_x", 20.0),  # at exactly t
        impression("imp-4", T + timedelta(minutes=30), 1, 5, "cat_x", 21.0),  # after t, same feature_ts
        impression("imp-5", T, 2, 7, "cat_y", 99.0),  # user 2's first impression, at exactly t
    ]
    clicks = [
        dict(click_id="clk-1", impression_id="imp-1", event_ts=JUST_BEFORE, user_id=1, item_id=7),
        dict(click_id="clk-2", impression_id="imp-2", event_ts=T, user_id=1, item_id=7),
        dict(
            click_id="clk-3", impression_id="imp-3", event_ts=T + timedelta(seconds=20), user_id=1, item_id=5
        ),
    ]
    orders = [
        dict(
            order_id="ord-3",
            impression_id="imp-3",
            event_ts=T + timedelta(minutes=5),
            user_id=1,
            item_id=5,
            quantity=1,
            gmv=20.0,
        )
    ]
    warehouse = open_warehouse(settings.warehouse_url)
    start, end = T - timedelta(days=1), T + timedelta(days=1)
    for table, rows in (("impressions", impressions), ("clicks", clicks), ("orders", orders)):
        warehouse.replace_partition(f"raw.{table}", _table(table, rows), "event_ts", start, end)


@pytest.mark.parametrize("world", BACKENDS, indirect=True)
def test_an_event_at_t_never_reaches_a_feature_at_or_before_t(world: Settings, tmp_path: Path) -> None:
    _load_hand_built(world)
    _build(world, tmp_path)
    users = _read(world, "marts.user_features").set_index(["user_id", "feature_ts"])
    examples = _read(world, "marts.training_examples").set_index("impression_id")

    # The snapshot at t sees the click a microsecond before t, not the click or impression at t.
    at_t = users.loc[(1, T)]
    assert (at_t["user_impressions_1h"], at_t["user_clicks_1h"]) == (1, 1)
    assert (at_t["user_impressions_24h"], at_t["user_clicks_24h"], at_t["user_ctr_24h"]) == (2, 1, 0.5)
    assert (at_t["user_top_category"], at_t["user_top_category_share"]) == ("cat_y", 1.0)
    assert at_t["user_hours_since_last_click"] == pytest.approx(1e-6 / 3600, rel=1e-6)
    # User 2's only event is at t: no snapshot at t, one in the hour after.
    assert (2, T) not in users.index and (2, T + timedelta(hours=1)) in users.index
    # The events at t count from the next snapshot on.
    after = users.loc[(1, T + timedelta(hours=1))]
    assert (after["user_impressions_1h"], after["user_clicks_1h"]) == (2, 2)
    assert after["user_hours_since_last_click"] == pytest.approx((60 - 20 / 60) / 60)

    # Impressions at t and after t within the hour both read the snapshot at t.
    for impression_id in ("imp-3", "imp-4"):
        row = examples.loc[impression_id]
        assert row["feature_ts"] == T
        assert (row["user_impressions_1h"], row["user_clicks_1h"], row["user_clicks_24h"]) == (1, 1, 1)
        # item 5 was never shown before t
        assert (row["item_category"], row["item_price"], row["item_impressions_7d"]) == ("none", 0.0, 0)
    assert (examples.loc["imp-3", "label"], examples.loc["imp-3", "gmv"]) == (1, 20.0)
    assert (examples.loc["imp-4", "label"], examples.loc["imp-4", "gmv"]) == (0, 0.0)
    user_2 = examples.loc["imp-5"]
    assert (user_2["user_impressions_7d"], user_2["user_hours_since_last_click"]) == (0, 168.0)
    assert user_2["user_top_category"] == "none"
    # Item 7 at t: the click at t and the impression at t (price 99) do not count yet.
    assert (user_2["item_impressions_24h"], user_2["item_clicks_24h"], user_2["item_price"]) == (2, 1, 11.0)


def test_a_failing_test_is_named_in_the_error(home: Settings, tmp_path: Path) -> None:
    _load_hand_built(home)
    warehouse = open_warehouse(home.warehouse_url)
    warehouse.execute(
        "insert into raw.impressions select * from raw.impressions where impression_id = 'imp-1'"
    )
    with pytest.raises(RuntimeError, match=r"unique_stg_events__impressions_impression_id \(fail\)"):
        _build(home, tmp_path)


def test_parse_writes_the_manifest_without_touching_a_warehouse(home: Settings, tmp_path: Path) -> None:
    run_dbt(["parse"], home, target_path=tmp_path / "target")
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    marts = {n["name"]: n["schema"] for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    assert {name: marts[name] for name in ("user_features", "item_features", "training_examples")} == {
        "user_features": "marts",
        "item_features": "marts",
        "training_examples": "marts",
    }
    assert not Path(dbt_env(home)["FLYWHEEL_DBT_DUCKDB_PATH"]).exists()


def test_profile_environment_comes_from_the_warehouse_url(
    monkeypatch: pytest.MonkeyPatch, home: Settings
) -> None:
    assert dbt_target(home) == "duckdb"
    assert dbt_env(home)["FLYWHEEL_DBT_DUCKDB_PATH"] == str(home.home / "warehouse.duckdb")
    monkeypatch.setenv(
        "FLYWHEEL_WAREHOUSE_URL",
        "postgresql+psycopg2://fly%40wheel:s%3Acret@db.internal:6543/feat?sslmode=require",
    )
    settings = get_settings()
    assert dbt_target(settings) == "postgres"
    assert dbt_env(settings) == {
        "FLYWHEEL_DBT_TARGET": "postgres",
        "FLYWHEEL_DBT_PG_HOST": "db.internal",
        "FLYWHEEL_DBT_PG_PORT": "6543",
        "FLYWHEEL_DBT_PG_USER": "fly@wheel",
        "FLYWHEEL_DBT_PG_PASSWORD": "s:cret",
        "FLYWHEEL_DBT_PG_DBNAME": "feat",
        "FLYWHEEL_DBT_PG_SSLMODE": "require",
    }
