"""``make demo`` twice in a row: the second story starts from an empty world and the first stays readable
in ``<home>.previous``; a home that cannot be set aside whole is refused, with nothing moved."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from flywheel.config import Settings, get_settings
from flywheel.local.demo import set_aside_previous


def _a_finished_demo(settings: Settings) -> None:
    (settings.home / "demo").mkdir(parents=True)
    (settings.home / "demo" / "summary.json").write_text("{}")
    (settings.landing_dir / "impressions.parquet").write_text("old world")


def test_a_new_home_is_left_as_it_is(home: Settings) -> None:
    (home.landing_dir / "keep.parquet").write_text("x")
    assert set_aside_previous(home) is None
    assert (home.landing_dir / "keep.parquet").exists()


def test_a_previous_demo_moves_aside_whole_and_replaces_an_older_one(home: Settings) -> None:
    previous = home.home.with_name(home.home.name + ".previous")
    (previous / "demo").mkdir(parents=True)
    (previous / "older").write_text("the run before the last")
    _a_finished_demo(home)
    assert set_aside_previous(home) == previous
    assert not home.home.exists()
    assert (previous / "demo" / "summary.json").exists()
    assert (previous / "landing" / "impressions.parquet").read_text() == "old world"
    assert not (previous / "older").exists()


def test_a_home_partly_elsewhere_is_refused_naming_the_variable(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_LANDING_DIR", str(tmp_path / "shared-landing"))
    settings = get_settings()
    settings.ensure_dirs()
    _a_finished_demo(settings)
    with pytest.raises(ValueError, match="FLYWHEEL_LANDING_DIR") as refused:
        set_aside_previous(settings)
    assert "point FLYWHEEL_HOME at a new folder" in str(refused.value)
    assert (settings.home / "demo" / "summary.json").exists(), "nothing was moved"


def test_a_home_airflow_runs_on_is_refused(home: Settings) -> None:
    _a_finished_demo(home)
    # A `make up` record whose process group is alive: this test's own.
    record = {"pid": os.getpgrp(), "port": 8080, "url": "http://127.0.0.1:8080"}
    (home.airflow_home / "up.json").write_text(json.dumps(record))
    with pytest.raises(ValueError, match="make down"):
        set_aside_previous(home)
    assert (home.home / "demo" / "summary.json").exists()


def test_the_demo_s_settings_last_as_long_as_the_demo(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flywheel.local.demo import DEMO_ENV, run_demo

    monkeypatch.setenv("FLYWHEEL_TRAIN_BUDGET", "9")  # set by the user: kept, and it wins
    for name in DEMO_ENV:
        if name != "FLYWHEEL_TRAIN_BUDGET":
            monkeypatch.delenv(name, raising=False)
    with pytest.raises(ValueError, match="--drift-at"):
        run_demo(hours=40, drift_at=10)  # refused before anything starts
    assert os.environ["FLYWHEEL_TRAIN_BUDGET"] == "9"
    assert not [name for name in DEMO_ENV if name in os.environ and name != "FLYWHEEL_TRAIN_BUDGET"]
    assert get_settings().serving.canary_steps == (5, 10, 25, 50, 100)


def test_the_demo_s_rule_retrains_once_the_shift_held_until_the_held_out_hours() -> None:
    from flywheel.local.demo import demo_drift_rule

    # 72 hours, onset at 48, 6 held-out hours: windows 49..66 must all be over 0.2, so the one retrain
    # learns from [18, 66), every post-shift hour it may see; the single-window branch never decides.
    rule = demo_drift_rule(72, 48, 6)
    assert rule["FLYWHEEL_DRIFT_SUSTAINED_WINDOWS"] == "18"
    assert rule["FLYWHEEL_DRIFT_SUSTAINED_PSI"] == "0.2"
    assert float(rule["FLYWHEEL_DRIFT_PSI"]) > 100
    assert demo_drift_rule(36, 18, 6)["FLYWHEEL_DRIFT_SUSTAINED_WINDOWS"] == "12"
