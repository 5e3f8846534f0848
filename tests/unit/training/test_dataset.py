"""Training sets: refused when unlearnable, split by time, and versioned by content."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from flywheel.training.dataset import (
    TrainingDataError,
    check_training_set,
    data_version,
    load_training_set,
    snapshot_training_set,
    time_split,
)


def test_data_version_ignores_row_and_column_order_and_parquet_round_trips(
    small_frame: pd.DataFrame, tmp_path
) -> None:
    shuffled = small_frame.sample(frac=1.0, random_state=3)[list(reversed(small_frame.columns))]
    shuffled.to_parquet(tmp_path / "shuffled.parquet")

    assert data_version(shuffled) == data_version(small_frame)
    assert data_version(load_training_set(tmp_path / "shuffled.parquet")) == data_version(small_frame)


def test_data_version_changes_when_one_label_changes(small_frame: pd.DataFrame) -> None:
    changed = small_frame.copy()
    changed.loc[5, "label"] = 1 - changed.loc[5, "label"]
    assert data_version(changed) != data_version(small_frame)


def test_snapshot_is_written_once_under_its_data_version(small_frame: pd.DataFrame, tmp_path) -> None:
    uri, version = snapshot_training_set(small_frame, tmp_path)
    again, same = snapshot_training_set(small_frame.sample(frac=1.0, random_state=1), tmp_path)

    assert (uri, version) == (again, same)
    assert uri == str(tmp_path / "datasets" / version / "training_set.parquet")
    assert pq.read_metadata(uri).num_rows == len(small_frame)
    assert data_version(load_training_set(uri)) == version
    assert [p.name for p in (tmp_path / "datasets" / version).iterdir()] == ["training_set.parquet"]


def test_empty_training_set_is_refused_with_its_source(small_frame: pd.DataFrame) -> None:
    with pytest.raises(TrainingDataError, match="training set has 0 rows for marts.training_set"):
        check_training_set(small_frame.head(0), "marts.training_set")


def test_single_class_training_set_is_refused(small_frame: pd.DataFrame) -> None:
    no_clicks = small_frame[small_frame["label"] == 0]
    with pytest.raises(
        TrainingDataError, match=rf"only label=0 \({len(no_clicks):,} rows\).*cannot train a click model"
    ):
        check_training_set(no_clicks, "x")


def test_validation_is_the_latest_slice_of_time(small_frame: pd.DataFrame) -> None:
    train, val, cutoff = time_split(small_frame, 0.2)

    assert train["event_ts"].max() < cutoff <= val["event_ts"].min()
    assert len(train) + len(val) == len(small_frame)
    assert 0.15 < len(val) / len(small_frame) < 0.25
