"""The drift check on simulated worlds: interest drift at hour 48 fires within 2 windows of its onset,
a stationary world never fires in 72 hours, and the debounce holds back repeated requests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flywheel.config import Settings
from flywheel.monitoring.tasks import check_window, profile_reference, request_retrain, should_retrain
from flywheel.simulate.scenario import START, prepare_drift_world
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.published import publish_hours, withdraw_hours

pytestmark = pytest.mark.slow


def _fired_windows(settings: Settings, hours: range) -> list[int]:
    fired = []
    reference = profile_reference(settings)
    for hour in hours:
        summary = check_window(
            reference, [], None, {"window_end": (START + timedelta(hours=hour)).isoformat()}, settings
        )
        assert summary["status"] == "ok"
        if summary["fire"]:
            fired.append(hour)
    return fired


def test_interest_shift_fires_within_two_windows_of_onset(home: Settings) -> None:
    prepare_drift_world(home, "interest_shift", hours=56, impressions_per_hour=600)
    fired = _fired_windows(home, range(44, 53))
    # Window h covers [h-1, h): the onset at hour 48 first shows in window 49.
    assert fired and fired[0] in (49, 50), fired
    assert all(h > 48 for h in fired)


def test_an_unpublished_hour_is_not_checked(home: Settings) -> None:
    prepare_drift_world(home, "interest_shift", hours=52, impressions_per_hour=600)
    wh = open_warehouse(home.warehouse_url)
    withdraw_hours(wh, START + timedelta(hours=49), START + timedelta(hours=50))  # its gate failed
    window = {"window_end": (START + timedelta(hours=50)).isoformat()}
    summary = check_window(profile_reference(home), [], None, window, home)
    assert summary["status"] == "unpublished" and not summary.get("fire")
    recorded = (
        wh.read_arrow(
            "select count(*) as n from monitoring.feature_drift where window_end = :end",
            {"end": START + timedelta(hours=50)},
        )
        if wh.table_exists("monitoring.feature_drift")
        else None
    )
    assert recorded is None or recorded.to_pylist() == [{"n": 0}]
    publish_hours(wh, START + timedelta(hours=49), START + timedelta(hours=50), "rerun")  # a rerun passed
    assert check_window(profile_reference(home), [], None, window, home)["status"] == "ok"


def test_a_stationary_world_never_fires_in_72_hours(home: Settings) -> None:
    prepare_drift_world(home, "none", hours=72, impressions_per_hour=600)
    assert _fired_windows(home, range(25, 73)) == []


def test_debounce_waits_for_running_training_and_the_cooldown(home: Settings) -> None:
    fire = {
        "fire": True,
        "window_end": (START + timedelta(hours=50)).isoformat(),
        "drifting": {"category": 0.8},
    }
    assert not should_retrain({**fire, "fire": False}, 0, home)
    assert not should_retrain(fire, 1, home)  # a train_model run is queued or running
    assert should_retrain(fire, 0, home)
    extra = request_retrain(fire, "run-1", home)
    assert extra["features"] == {"category": 0.8}
    later = lambda h: {**fire, "window_end": (START + timedelta(hours=h)).isoformat()}  # noqa: E731
    assert not should_retrain(later(52), 0, home)  # inside the 6-hour cooldown
    assert should_retrain(later(56), 0, home)
