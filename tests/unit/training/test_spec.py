"""The feature spec turns rows into tensors the same way after a JSON round trip (what serving loads)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from flywheel.artifacts.spec import (
    FeatureSpec,
    FeatureSpecError,
    encode,
    fit_spec,
    hash_bucket,
)
from flywheel.training.dataset import time_split


def test_spec_round_trip_encodes_identically(training_frame: pd.DataFrame, tmp_path) -> None:
    train, val, _ = time_split(training_frame, 0.2)
    spec = fit_spec(train)
    spec.save(tmp_path / "feature_spec.json")
    loaded = FeatureSpec.load(tmp_path / "feature_spec.json")

    assert loaded == spec
    for a, b in zip(encode(val, spec), encode(val, loaded), strict=True):
        np.testing.assert_array_equal(a, b)
    tensors = json.loads((tmp_path / "feature_spec.json").read_text())["tensors"]
    assert tensors["sparse"]["columns"] == [
        "user_id",
        "item_id",
        "category",
        "user_top_category",
        "item_category",
        "position",
    ]
    assert len(tensors["dense"]["columns"]) == len(spec.numeric) == 20


def test_encoding_is_standardised_on_training_rows_and_indices_fit_their_tables(
    training_frame: pd.DataFrame,
) -> None:
    train, _, _ = time_split(training_frame, 0.2)
    spec = fit_spec(train)
    sparse, dense = encode(train, spec)

    assert np.abs(dense.mean(axis=0)).max() < 1e-3
    constant = [f.name for f in spec.numeric if f.std == 1.0 and f.mean == 0.0]
    assert constant == []  # every simulated feature varies
    assert (sparse >= 0).all()
    assert (sparse < np.array(spec.cardinalities)).all()


def test_unseen_categories_and_missing_values_get_their_reserved_slots(training_frame: pd.DataFrame) -> None:
    spec = fit_spec(training_frame)
    row = training_frame.head(2).copy()
    row["category"] = ["never_seen", None]
    row["user_hours_since_last_click"] = [np.nan, 1e9]
    sparse, dense = encode(row, spec)

    assert list(sparse[:, spec.sparse_columns.index("category")]) == [0, 0]
    hours = spec.dense_columns.index("user_hours_since_last_click")
    feature = spec.numeric[hours]
    capped = (168.0 - feature.mean) / feature.std
    np.testing.assert_allclose(dense[:, hours], [capped, capped], rtol=1e-6)


def test_serving_rows_need_no_position_and_score_at_the_top_slot(training_frame: pd.DataFrame) -> None:
    spec = fit_spec(training_frame)
    sparse, _ = encode(training_frame.head(3).drop(columns=["position"]), spec, serving=True)
    assert list(sparse[:, -1]) == [spec.serving_position] * 3


def test_missing_feature_columns_are_named(training_frame: pd.DataFrame) -> None:
    spec = fit_spec(training_frame)
    with pytest.raises(FeatureSpecError, match="item_ctr_7d"):
        encode(training_frame.drop(columns=["item_ctr_7d"]), spec)


def test_id_hash_is_the_documented_splitmix64() -> None:
    # Reference values of splitmix64's finaliser (seed + golden gamma), as any other language computes them.
    ids = np.array([0, 1, -1, 2**62], dtype=np.int64)
    buckets = hash_bucket(ids, 1_000_003)
    expected = [0xE220A8397B1DCDAF % 1_000_003, 0x910A2DEC89025CC1 % 1_000_003]
    assert list(buckets[:2]) == expected
    assert (hash_bucket(ids, 7) < 7).all() and (hash_bucket(ids, 7) >= 0).all()
