"""The simulator writes valid, reproducible hourly event files with real position bias and drift."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from flywheel.events import EVENT_SCHEMAS
from flywheel.simulate import SimulationConfig, simulate

TABLES = ("impressions", "clicks", "orders")  # predictions come from the serving gateway, not the simulator
# 22:00 start, so runs cross midnight and the date= folder changes.
START = datetime(2026, 1, 1, 22)


def _run(root: Path, name: str, **overrides: object) -> Path:
    settings: dict[str, object] = {"start": START, "hours": 6, "impressions_per_hour": 2000, "seed": 7}
    settings.update(overrides)
    landing = root / name
    simulate(SimulationConfig(**settings), landing)  # type: ignore[arg-type]
    return landing


def _files(landing: Path) -> dict[str, bytes]:
    return {str(p.relative_to(landing)): p.read_bytes() for p in sorted(landing.rglob("*")) if p.is_file()}


def _file_hour(path: Path) -> datetime:
    date = path.parent.parent.name.removeprefix("date=")
    return datetime.fromisoformat(date) + timedelta(hours=int(path.parent.name.removeprefix("hour=")))


def _read(landing: Path, table: str) -> pd.DataFrame:
    paths = sorted((landing / table).glob("date=*/hour=*/*.parquet"))
    return pd.concat([pq.read_table(p).to_pandas() for p in paths], ignore_index=True)


def _click_category_tvd(landing: Path, onset: datetime) -> float:
    """Total variation distance between the category mix of clicks before and after ``onset``."""
    impressions = _read(landing, "impressions")[["impression_id", "category", "event_ts"]]
    clicks = _read(landing, "clicks")[["impression_id"]].merge(impressions, on="impression_id")
    before = clicks.loc[clicks.event_ts < onset, "category"].value_counts(normalize=True)
    after = clicks.loc[clicks.event_ts >= onset, "category"].value_counts(normalize=True)
    return 0.5 * float(before.subtract(after, fill_value=0.0).abs().sum())


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("sim")


@pytest.fixture(scope="module")
def base(runs: Path) -> Path:
    return _run(runs, "base")


def test_same_seed_writes_identical_files_and_rerun_changes_nothing(runs: Path, base: Path) -> None:
    first = _files(base)
    again = _files(_run(runs, "again"))
    assert first == again
    _run(runs, "base")  # rerun into the same landing zone
    assert _files(base) == first


def test_different_seed_writes_different_events(runs: Path, base: Path) -> None:
    other = _run(runs, "seed8", seed=8)
    assert not _read(base, "impressions").equals(_read(other, "impressions"))
    assert set(_read(base, "clicks").item_id) != set(_read(other, "clicks").item_id)


def test_each_hour_is_independent_of_run_length(runs: Path, base: Path) -> None:
    # Per-hour random streams: a shorter run is an exact prefix of a longer one.
    short = _files(_run(runs, "short", hours=3))
    full = _files(base)
    cutoff = START + timedelta(hours=3)
    prefix = {k: v for k, v in full.items() if _file_hour(base / k) < cutoff}
    assert {k: v for k, v in short.items() if _file_hour(base / k) < cutoff} == prefix
    assert prefix


def test_files_have_exactly_the_contract_schema(base: Path) -> None:
    for table in TABLES:
        paths = list((base / table).rglob("*.parquet"))
        assert paths, table
        for path in paths:
            assert path.name == "part-sim.parquet"
            assert pq.read_schema(path).equals(EVENT_SCHEMAS[table], check_metadata=False), path


def test_every_event_lies_inside_its_file_hour(base: Path) -> None:
    last_allowed = START + timedelta(hours=6)  # late events of the last hour spill one hour, no more
    for table in TABLES:
        for path in (base / table).rglob("*.parquet"):
            hour = _file_hour(path)
            ts = pq.read_table(path, columns=["event_ts"]).column(0).to_pandas()
            assert len(ts) > 0, path
            assert ts.min() >= hour and ts.max() < hour + timedelta(hours=1), path
            assert START <= hour <= last_allowed, path
    impression_hours = {_file_hour(p) for p in (base / "impressions").rglob("*.parquet")}
    assert impression_hours == {START + timedelta(hours=h) for h in range(6)}


def test_summary_counts_what_is_on_disk(tmp_path: Path) -> None:
    cfg = SimulationConfig(start=START, hours=3, impressions_per_hour=1000)
    summary = simulate(cfg, tmp_path)
    for table in TABLES:
        assert summary[table] == len(_read(tmp_path, table)) > 0
    assert summary["files"] == len(list(tmp_path.rglob("*.parquet")))
    assert summary["hours"] == 3
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".parquet"]


def test_ids_are_unique_and_slates_are_whole(base: Path) -> None:
    impressions = _read(base, "impressions")
    for table, column in (("impressions", "impression_id"), ("clicks", "click_id"), ("orders", "order_id")):
        ids = _read(base, table)[column]
        assert ids.is_unique, column
    slates = impressions.groupby("request_id")
    assert (slates.size() == 10).all()
    assert (slates.position.apply(lambda p: sorted(p) == list(range(1, 11)))).all()
    assert (slates.item_id.nunique() == 10).all()  # no item twice in one slate
    assert (slates.user_id.nunique() == 1).all()
    assert (impressions.price > 0).all()
    assert impressions.category.str.fullmatch(r"cat_\d{2}").all()


def test_clicks_and_orders_follow_existing_impressions(base: Path) -> None:
    impressions = _read(base, "impressions").set_index("impression_id")
    clicks = _read(base, "clicks").set_index("impression_id")
    orders = _read(base, "orders").set_index("impression_id")
    assert clicks.index.isin(impressions.index).all()
    assert orders.index.isin(clicks.index).all()
    shown = impressions.loc[clicks.index]
    assert (clicks.user_id == shown.user_id).all() and (clicks.item_id == shown.item_id).all()
    click_delay = (clicks.event_ts - shown.event_ts).dt.total_seconds()
    assert click_delay.between(1, 60).all()
    order_delay = (orders.event_ts - clicks.loc[orders.index].event_ts).dt.total_seconds()
    assert order_delay.between(60, 3600).all()
    assert (orders.quantity >= 1).all()
    np.testing.assert_allclose(orders.gmv, orders.quantity * impressions.loc[orders.index].price)


def test_click_through_rate_falls_with_position(base: Path) -> None:
    impressions = _read(base, "impressions")
    clicked = impressions.impression_id.isin(_read(base, "clicks").impression_id)
    ctr = clicked.groupby(impressions.position).mean()
    assert ctr[1] > 2 * ctr[10]
    assert ctr[1] > ctr[5] > ctr[10]


def test_traffic_follows_the_time_of_day(tmp_path: Path) -> None:
    _run(tmp_path, "day", start=datetime(2026, 1, 1), hours=24, impressions_per_hour=500)
    by_hour = _read(tmp_path / "day", "impressions").event_ts.dt.hour.value_counts()
    assert by_hour[20] > 1.5 * by_hour[8]  # evening peak, morning trough


def test_interest_shift_changes_what_users_click(runs: Path) -> None:
    drift = {"hours": 8, "drift_at": 4, "impressions_per_hour": 3000}
    onset = START + timedelta(hours=4)
    shifted = _run(runs, "interest", drift="interest_shift", **drift)
    stationary = _run(runs, "stationary", drift="none", **drift)
    tvd_shift, tvd_none = _click_category_tvd(shifted, onset), _click_category_tvd(stationary, onset)
    assert tvd_shift > 0.3 and tvd_shift > 2 * tvd_none
    # Nothing changes before the onset.
    before = {k: v for k, v in _files(shifted).items() if _file_hour(shifted / k) < onset}
    assert before and before.items() <= _files(stationary).items()


def test_price_shift_moves_prices_after_onset_only(runs: Path) -> None:
    onset = START + timedelta(hours=3)
    for drift, expect_change in (("price_shift", True), ("none", False)):
        impressions = _read(_run(runs, f"price-{drift}", drift=drift, drift_at=3), "impressions")
        after = impressions.event_ts >= onset
        # Each item has one price per period; compare the same items on both sides of the onset.
        before_price = impressions[~after].groupby("item_id").price.agg(["min", "max"])
        after_price = impressions[after].groupby("item_id").price.agg(["min", "max"])
        assert (before_price["min"] == before_price["max"]).all()
        ratio = (after_price["min"] / before_price["min"]).dropna()
        if expect_change:
            assert (ratio > 1.4).mean() > 0.3 and (ratio < 0.75).mean() > 0.3, drift
        else:
            assert np.allclose(ratio, 1.0), drift


def test_zero_strength_drift_is_no_drift(runs: Path) -> None:
    weak = _run(runs, "weak", drift="interest_shift", drift_at=2, strength=0.0, hours=4)
    none = _run(runs, "none4", hours=4)
    assert _files(weak) == _files(none)


def test_drift_defaults_to_never() -> None:
    assert SimulationConfig(start=START, hours=72, drift="price_shift").drift_at == 72


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"drift": "sudden"}, r"one of none, interest_shift, price_shift; got 'sudden'"),
        ({"start": datetime(2026, 1, 1, 0, 30)}, r"whole hour.*2026-01-01T00:30"),
        ({"hours": 0}, r"hours must be >= 1, got 0"),
        ({"hours": -5}, r"hours must be >= 1, got -5"),
        ({"strength": 1.5}, r"strength must be between 0 and 1, got 1.5"),
        ({"strength": -0.1}, r"strength.*-0.1"),
        ({"drift_at": 100}, r"drift_at must be between 0 and 72, got 100"),
        ({"impressions_per_hour": 3}, r"impressions_per_hour must be >= 10, got 3"),
    ],
)
def test_invalid_config_says_what_is_wrong(overrides: dict[str, object], message: str) -> None:
    settings: dict[str, object] = {"start": datetime(2026, 1, 1), "hours": 72, "drift": "interest_shift"}
    settings.update(overrides)
    with pytest.raises(ValueError, match=message):
        SimulationConfig(**settings)  # type: ignore[arg-type]
