"""The suite files are what GX serialises, name the tables of the contract, and refuse silent weakening."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flywheel.quality import EXPECTATIONS_DIR, DataQualityError, suite_names
from flywheel.quality.row_count import bounds_for
from flywheel.quality.suites import build_suite, load_gated_table

GATED_TABLES = {
    "raw_impressions": ("raw.impressions", "event_ts", "move"),
    "raw_clicks": ("raw.clicks", "event_ts", "move"),
    "raw_orders": ("raw.orders", "event_ts", "move"),
    "raw_predictions": ("raw.predictions", "event_ts", "move"),
    "marts_user_features": ("marts.user_features", "feature_ts", "copy"),
    "marts_item_features": ("marts.item_features", "feature_ts", "copy"),
    "marts_training_examples": ("marts.training_examples", "event_ts", "copy"),
}
GATE_PARAMETERS = {"row_count_min", "row_count_max", "interval_start", "interval_end", "interval_start_hour"}


def test_one_suite_per_gated_table() -> None:
    assert suite_names() == sorted(GATED_TABLES)
    for suite, (table, column, on_failure) in GATED_TABLES.items():
        gated = load_gated_table(suite)
        assert (gated.table, gated.partition_column, gated.on_failure) == (table, column, on_failure)
        assert gated.quarantine_table == f"quarantine.{suite}"


@pytest.mark.parametrize("suite", sorted(GATED_TABLES))
def test_suite_files_round_trip_through_gx(suite: str) -> None:
    gated = load_gated_table(suite)
    serialised = build_suite(gated).to_json_dict()
    on_disk = json.loads(gated.path.read_text())
    assert [(e["type"], e["kwargs"]) for e in serialised["expectations"]] == [
        (e["type"], e["kwargs"]) for e in on_disk["expectations"]
    ]
    assert serialised["meta"] == on_disk["meta"]
    # Runtime values arrive as suite parameters only; the files stay static.
    assert gated.parameters <= GATE_PARAMETERS
    assert {"row_count_min", "row_count_max", "interval_start", "interval_end"} <= gated.parameters


def test_a_suite_gx_would_weaken_is_refused(tmp_path: Path) -> None:
    definition = json.loads((EXPECTATIONS_DIR / "raw_clicks.json").read_text())
    definition["expectations"].append({"type": "expect_column_values_to_be_between", "kwargs": {}})
    (tmp_path / "raw_clicks.json").write_text(json.dumps(definition))
    with pytest.raises(
        DataQualityError, match="(?s)rejected the suite.*min_value and max_value cannot both be None"
    ):
        build_suite(load_gated_table("raw_clicks", tmp_path))
    definition["expectations"][-1] = {"type": "expect_column_values_to_be_cheerful", "kwargs": {}}
    (tmp_path / "raw_clicks.json").write_text(json.dumps(definition))
    with pytest.raises(DataQualityError, match="rejected"):
        build_suite(load_gated_table("raw_clicks", tmp_path))


def test_a_mart_suite_cannot_delete_mart_rows(tmp_path: Path) -> None:
    definition = json.loads((EXPECTATIONS_DIR / "marts_user_features.json").read_text())
    definition["meta"]["flywheel"]["on_failure"] = "move"
    (tmp_path / "marts_user_features.json").write_text(json.dumps(definition))
    with pytest.raises(DataQualityError, match="use 'move' for raw"):
        load_gated_table("marts_user_features", tmp_path)


def test_row_count_bounds_follow_the_trailing_average() -> None:
    from datetime import timedelta

    hour = timedelta(hours=1)
    usual = bounds_for(700.0, 24, hour)
    assert (usual.min_value, usual.max_value) == (210, 2100)
    assert usual.rule == "expected 210..2100 (trailing 24h average 700 rows/h)"
    assert (bounds_for(700.0, 24, 3 * hour).min_value, bounds_for(700.0, 24, 3 * hour).max_value) == (
        630,
        6300,
    )
    fresh = bounds_for(None, 0, hour)
    assert (fresh.min_value, fresh.max_value) == (1, None)  # no history: only require rows
    quiet = bounds_for(4.0, 24, hour)
    assert (quiet.min_value, quiet.max_value) == (0, None)  # a few orders an hour: noise, not signal
