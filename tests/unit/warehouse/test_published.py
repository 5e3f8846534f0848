"""``features.published_hours``: hours leave publication while rebuilt and return when published again,
on DuckDB and PostgreSQL; training sets keep only published hours."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

import pandas as pd
import pytest

from flywheel.config import Settings
from flywheel.training.tasks import latest_complete_hour, published_rows
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.published import is_published, publish_hours, published_hours, withdraw_hours

T0 = datetime(2026, 1, 1)


def _hours(*offsets: int) -> list[datetime]:
    return [T0 + timedelta(hours=h) for h in offsets]


def test_withdrawn_hours_stay_out_until_published_again(warehouse_home: Settings) -> None:
    wh = open_warehouse(warehouse_home.warehouse_url)
    assert published_hours(wh, T0, T0 + timedelta(hours=5)) == []  # nothing published yet
    assert publish_hours(wh, T0, T0 + timedelta(hours=5), "run-1") == 5
    assert publish_hours(wh, T0, T0 + timedelta(hours=5), "run-1") == 5  # a rerun changes nothing
    withdraw_hours(wh, T0 + timedelta(hours=2), T0 + timedelta(hours=3))  # a run rebuilds hour 2
    assert published_hours(wh, T0, T0 + timedelta(hours=5)) == _hours(0, 1, 3, 4)
    assert not is_published(wh, T0 + timedelta(hours=2)) and is_published(wh, T0 + timedelta(hours=3))
    publish_hours(wh, T0 + timedelta(hours=2), T0 + timedelta(hours=3), "run-2")
    assert published_hours(wh, T0, T0 + timedelta(hours=5)) == _hours(0, 1, 2, 3, 4)
    rows = wh.read_arrow("select count(*) as n from features.published_hours").to_pylist()
    assert rows == [{"n": 5}]


def test_training_sets_keep_only_published_hours(home: Settings, caplog) -> None:
    wh = open_warehouse(home.warehouse_url)
    frame = pd.DataFrame(
        {
            "event_ts": [T0 + timedelta(hours=h, minutes=m) for h in range(4) for m in (5, 35)],
            "label": [0, 1] * 4,
        }
    )
    start, end = T0, T0 + timedelta(hours=4)
    with pytest.raises(ValueError, match=r"no hour of the training window .* is published"):
        published_rows(frame, start, end, home)
    publish_hours(wh, start, end, "run-1")
    withdraw_hours(wh, T0 + timedelta(hours=2), T0 + timedelta(hours=3))  # its gate failed
    kept = published_rows(frame, start, end, home)
    assert sorted({ts.hour for ts in kept["event_ts"]}) == [0, 1, 3]
    assert len(kept) == 6
    assert "left out 2 impression(s) of 1 unpublished hour(s)" in caplog.text
    assert "2026-01-01 02:00" in caplog.text
    # The default window ends at the newest published hour, not at the newest row in the marts.
    assert latest_complete_hour(home) == T0 + timedelta(hours=3)


def test_training_windows_end_where_the_held_out_hours_begin(
    warehouse_home: Settings, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    from flywheel.config import get_settings
    from flywheel.training.tasks import training_window
    from flywheel.warehouse.published import held_out_window

    wh = open_warehouse(warehouse_home.warehouse_url)
    monkeypatch.setenv("FLYWHEEL_EVAL_HELD_OUT_HOURS", "6")
    settings = get_settings()
    caplog.set_level(logging.WARNING)
    # Too few hours for a held-out window: the window is as asked, with a warning that says why.
    publish_hours(wh, T0, T0 + timedelta(hours=4), "run-1")
    asked = {"window_hours": 2, "window_end": (T0 + timedelta(hours=4)).isoformat()}
    assert training_window([], asked, settings) == (T0 + timedelta(hours=2), T0 + timedelta(hours=4))
    assert "held-out window needs the newest 6 published hours" in caplog.text

    publish_hours(wh, T0 + timedelta(hours=4), T0 + timedelta(hours=30), "run-2")
    withdraw_hours(wh, T0 + timedelta(hours=26), T0 + timedelta(hours=27))  # a rebuild under way
    assert held_out_window(wh, 6) == (T0 + timedelta(hours=23), T0 + timedelta(hours=30))
    # Every source of the end (data, the form, a drift event) stops where the held-out hours begin ...
    for events, params in (
        ([], {"window_hours": 24}),
        ([], {"window_hours": 24, "window_end": (T0 + timedelta(hours=29)).isoformat()}),
        ([_Event({"window_end": (T0 + timedelta(hours=28)).isoformat()})], {"window_hours": 24}),
    ):
        assert training_window(events, params, settings) == (
            T0 - timedelta(hours=1),
            T0 + timedelta(hours=23),
        )
    # ... and an earlier end is kept.
    early = {"window_hours": 10, "window_end": (T0 + timedelta(hours=12)).isoformat()}
    assert training_window([], early, settings) == (T0 + timedelta(hours=2), T0 + timedelta(hours=12))


class _Event:
    def __init__(self, extra: dict) -> None:
        self.extra = extra
