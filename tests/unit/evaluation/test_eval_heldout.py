"""The held-out window: the newest published hours, only published rows, fixed slice labels, and the
logged requests the replay re-ranks."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from flywheel.config import Settings
from flywheel.evaluation import heldout
from flywheel.evaluation.heldout import (
    held_out_window,
    label_slices,
    load_held_out,
    requests_for_replay,
    slices,
)
from flywheel.evaluation.ranking import replay
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.published import publish_hours, withdraw_hours

START = datetime(2026, 1, 1)
H = timedelta(hours=1)


def _publish(settings: Settings, start: datetime, hours: int) -> None:
    publish_hours(open_warehouse(settings.warehouse_url), start, start + hours * H, "test")


def _impressions(hours: list[datetime], per_hour: int = 4) -> pd.DataFrame:
    """A training set's shape: two requests an hour (user, timestamp shared by their slots)."""
    rows = []
    for h in hours:
        for n in range(per_hour):
            request = n // 2
            rows.append(
                {
                    "impression_id": f"{h:%H}-{n}",
                    "event_ts": h + timedelta(minutes=10 + 20 * request),
                    "user_id": 7 + request,
                    "item_id": 100 + n,
                    "position": 1 + n % 2,
                    "price": 30.0,
                    "category": "books",
                    "label": n % 2,
                    "gmv": 12.5 * (n % 2),
                    "user_impressions_7d": 10 * n,
                    "item_category": "books",
                    "item_price": 30.0,
                }
            )
    return pd.DataFrame(rows)


# held_out_window


def test_window_is_the_newest_published_hours(home: Settings) -> None:
    _publish(home, START, 10)
    warehouse = open_warehouse(home.warehouse_url)

    assert held_out_window(warehouse, 6) == (START + 4 * H, START + 10 * H)
    assert held_out_window(warehouse, 10) == (START, START + 10 * H)


def test_window_reaches_back_over_an_unpublished_hour(home: Settings) -> None:
    # Hour 7 failed its gate: the 6 newest published hours are 3..6 and 8..9.
    _publish(home, START, 10)
    warehouse = open_warehouse(home.warehouse_url)
    withdraw_hours(warehouse, START + 7 * H, START + 8 * H)

    assert held_out_window(warehouse, 6) == (START + 3 * H, START + 10 * H)


def test_window_refuses_too_few_published_hours(home: Settings) -> None:
    _publish(home, START, 4)
    with pytest.raises(ValueError, match=r"newest 6 published hours but features.published_hours holds 4"):
        held_out_window(open_warehouse(home.warehouse_url), 6)


def test_window_refuses_when_nothing_is_published(home: Settings) -> None:
    with pytest.raises(ValueError, match=r"no hour is published in features.published_hours.*build_features"):
        held_out_window(open_warehouse(home.warehouse_url), 6)
    with pytest.raises(ValueError, match="at least 1"):
        held_out_window(open_warehouse(home.warehouse_url), 0)


# load_held_out


# load_held_out runs on a real DuckDB warehouse for the published hours and a hand-made training set in
# place of the feature store (building Feast marts would take most of a minute): what is tested is which
# rows it keeps and how it labels them.
@pytest.fixture
def store(home: Settings, monkeypatch: pytest.MonkeyPatch) -> list[tuple[datetime, datetime]]:
    """The feature store answers with impressions in every hour of the asked window; returns the asks."""
    asked: list[tuple[datetime, datetime]] = []

    def training_set(start: datetime, end: datetime, settings: Settings) -> pd.DataFrame:
        asked.append((start, end))
        hours = [start + k * H for k in range(int((end - start) / H))]
        return _impressions(hours)

    monkeypatch.setattr("flywheel.feature_store.store.training_set", training_set)
    return asked


def test_load_keeps_only_published_hours_and_labels_slices(home: Settings, store) -> None:
    _publish(home, START, 6)
    withdraw_hours(open_warehouse(home.warehouse_url), START + 2 * H, START + 3 * H)

    frame = load_held_out(START, START + 6 * H, home)

    assert store == [(START, START + 6 * H)]
    kept = sorted(set(frame["event_ts"].dt.floor("h")))
    assert kept == [START + k * H for k in (0, 1, 3, 4, 5)]
    assert len(frame) == 5 * 4
    assert set(slices(frame)) == {"user_tenure", "user_activity", "item_category", "price_band"}
    assert frame["item_category"].eq("books").all()  # the feature is not overwritten by its slice
    assert set(frame["slice_user_tenure"]) == {"new", "returning"}
    assert set(frame["slice_price_band"]) == {"mid"}


def test_load_refuses_an_empty_window_naming_it(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    _publish(home, START, 6)

    def no_rows(start: datetime, end: datetime, settings: Settings) -> pd.DataFrame:
        raise ValueError(f"marts.training_examples has no impressions with event_ts in [{start}, {end})")

    monkeypatch.setattr("flywheel.feature_store.store.training_set", no_rows)
    with pytest.raises(
        ValueError, match=r"held-out window \[2026-01-01 00:00:00, 2026-01-01 06:00:00\) is empty"
    ):
        load_held_out(START, START + 6 * H, home)


def test_load_refuses_a_window_with_no_published_hour(home: Settings, store) -> None:
    _publish(home, START, 2)
    later = START + 10 * H
    with pytest.raises(
        ValueError, match=r"no hour of the held-out window \[2026-01-01 10:00:00.*rerun build_features"
    ):
        load_held_out(later, later + 6 * H, home)
    assert store == []  # refused before asking the feature store


# label_slices


def test_slice_labels_use_the_documented_fixed_cut_points() -> None:
    frame = pd.DataFrame(
        {
            "user_impressions_7d": [0, 10, 79, 80, 239, 240, 5000],
            "price": [0.5, 24.99, 25.0, 79.99, 80.0, 900.0, np.nan],
            "category": ["a", "b", None, "a", "a", "a", "a"],
            "item_category": ["none"] * 7,
        }
    )
    labelled = label_slices(frame)

    assert (heldout.ACTIVITY_MEDIUM_FROM, heldout.ACTIVITY_HIGH_FROM) == (80, 240)
    assert (heldout.PRICE_MID_FROM, heldout.PRICE_HIGH_FROM) == (25.0, 80.0)
    assert labelled["slice_user_tenure"].tolist() == ["new"] + ["returning"] * 6
    assert labelled["slice_user_activity"].tolist() == [
        "low",
        "low",
        "low",
        "medium",
        "medium",
        "high",
        "high",
    ]
    assert labelled["slice_price_band"].tolist() == ["low", "low", "mid", "mid", "high", "high", "unknown"]
    # The logged category, not the feature snapshot ("none" for an item without one).
    assert labelled["slice_item_category"].tolist() == ["a", "b", "unknown", "a", "a", "a", "a"]
    assert set(frame.columns) < set(labelled.columns)


def test_slice_labels_fall_back_to_the_feature_columns() -> None:
    frame = pd.DataFrame({"user_impressions_7d": [3], "item_price": [100.0], "item_category": ["toys"]})
    labelled = label_slices(frame)
    assert labelled[["slice_price_band", "slice_item_category"]].iloc[0].tolist() == ["high", "toys"]


def test_slice_labels_name_a_missing_column() -> None:
    with pytest.raises(ValueError, match="lacks user_impressions_7d"):
        label_slices(pd.DataFrame({"price": [1.0], "category": ["a"]}))
    with pytest.raises(ValueError, match="label it with label_slices"):
        slices(pd.DataFrame({"price": [1.0]}))


# requests_for_replay


def test_requests_without_request_id_are_user_and_timestamp() -> None:
    # The simulator's own request ids: grouping by (user_id, event_ts) must recover the same partition.
    from flywheel.simulate import SimulationConfig, simulate
    from flywheel.simulate.training_set import read_landed_events

    with tempfile.TemporaryDirectory() as landing:
        simulate(SimulationConfig(start=START, hours=1, impressions_per_hour=600, seed=3), landing)
        logged = read_landed_events(landing)["impressions"]
    frame = logged.assign(label=0, gmv=0.0)

    grouped, _, _ = requests_for_replay(frame.drop(columns="request_id"))
    by_id, _, _ = requests_for_replay(frame)

    assert len(np.unique(grouped)) == frame["request_id"].nunique() > 10
    assert pd.crosstab(grouped, by_id).astype(bool).sum(axis=1).eq(1).all()  # one request id per group


def test_requests_carry_clicks_and_order_values_to_the_replay() -> None:
    frame = _impressions([START])
    ids, clicked, order_value = requests_for_replay(frame)

    assert ids.tolist() == [0, 0, 1, 1]
    assert clicked.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert order_value.tolist() == [0.0, 12.5, 0.0, 12.5]
    # Scores that put each request's clicked item first reach CTR@1 = 1.
    results = {c.metric: c for c in replay(ids, clicked, order_value, clicked, resamples=10)}
    assert results["ctr@1"].candidate.value == pytest.approx(1.0)
    assert results["gmv@1"].candidate.value == pytest.approx(12.5)


def test_requests_without_gmv_have_no_order_value() -> None:
    _, _, order_value = requests_for_replay(_impressions([START]).drop(columns="gmv"))
    assert order_value.tolist() == [0.0] * 4
    with pytest.raises(ValueError, match="no label column"):
        requests_for_replay(_impressions([START]).drop(columns="label"))
