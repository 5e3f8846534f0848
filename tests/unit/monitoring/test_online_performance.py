"""Online CTR, calibration and AUC computed in SQL equal NumPy's on predictions and clicks the test writes."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from flywheel.monitoring import online_performance
from flywheel.monitoring import reference as ref
from flywheel.warehouse import Warehouse

START = datetime(2026, 1, 1, 10)
END = START + timedelta(hours=1)
TS = pa.timestamp("us")


@pytest.fixture
def logged(load) -> dict[str, np.ndarray]:
    """Predictions in and around the window, clicks (some twice, some late, some for other windows)."""
    rng = np.random.default_rng(5)
    n = 600
    impressions = [f"imp{i}" for i in range(n)]
    # Scores on a coarse grid so many tie; 40 impressions scored twice (a shadow model).
    scores = np.round(rng.beta(2, 8, n), 2)
    offsets = rng.integers(-1800, 5400, n)  # seconds from START: some before, some after the window
    clicked = rng.random(n) < scores * 1.3
    shadow = rng.choice(n, 40, replace=False)
    shadow_scores = np.round(rng.beta(2, 8, 40), 2)
    load(
        "raw.predictions",
        {
            "prediction_id": (pa.string(), [f"p{i}" for i in range(n)] + [f"s{i}" for i in shadow]),
            "impression_id": (pa.string(), impressions + [impressions[i] for i in shadow]),
            "event_ts": (TS, [START + timedelta(seconds=int(o)) for o in [*offsets, *offsets[shadow]]]),
            "model_version": (pa.string(), ["v1"] * n + ["v2"] * 40),
            "score": (pa.float64(), [*scores.tolist(), *shadow_scores.tolist()]),
        },
    )
    clicks = [i for i in range(n) if clicked[i]]
    twice = clicks[::7]
    load(
        "raw.clicks",
        {
            "click_id": (pa.string(), [f"c{k}" for k in range(len(clicks) + len(twice))]),
            "impression_id": (pa.string(), [impressions[i] for i in clicks + twice]),
            # A click may land after the window closes; it still belongs to its impression.
            "event_ts": (TS, [START + timedelta(seconds=int(offsets[i]) + 3600) for i in clicks + twice]),
            "user_id": (pa.int64(), [1] * (len(clicks) + len(twice))),
            "item_id": (pa.int64(), [2] * (len(clicks) + len(twice))),
        },
    )
    inside = (offsets >= 0) & (offsets < 3600)
    shadow_inside = inside[shadow]
    return {
        "scores": np.concatenate([scores[inside], shadow_scores[shadow_inside]]),
        "labels": np.concatenate([clicked[inside], clicked[shadow][shadow_inside]]),
        "impression_clicked": clicked[inside],
    }


def test_metrics_equal_numpy(warehouse: Warehouse, logged: dict[str, np.ndarray]) -> None:
    result = online_performance(warehouse, START, END)

    assert result.predictions == len(logged["scores"])
    assert result.impressions == len(logged["impression_clicked"])
    assert result.clicks == int(logged["impression_clicked"].sum())
    ctr = logged["impression_clicked"].mean()
    assert result.ctr == pytest.approx(ctr, abs=1e-12)
    assert result.predicted_ctr == pytest.approx(logged["scores"].mean(), abs=1e-12)
    assert result.ctr_ratio == pytest.approx(ctr / logged["scores"].mean(), abs=1e-12)
    assert len(np.unique(logged["scores"])) < len(logged["scores"]) / 3  # ties are really exercised
    assert result.auc == pytest.approx(ref.auc(logged["scores"], logged["labels"]), abs=1e-12)


def test_rerun_replaces_the_windows_row(warehouse: Warehouse, logged) -> None:
    first = online_performance(warehouse, START, END)
    again = online_performance(warehouse, START, END)
    online_performance(warehouse, END, END + timedelta(hours=1))
    rows = warehouse.read_arrow(
        "select window_start, auc from monitoring.online_performance order by window_start"
    ).to_pylist()
    assert first == again
    assert [r["window_start"] for r in rows] == [START, END]
    assert rows[0]["auc"] == pytest.approx(first.auc)


def test_window_without_predictions_records_nulls(warehouse: Warehouse, logged) -> None:
    result = online_performance(warehouse, START - timedelta(days=1), START - timedelta(hours=23))
    assert (result.predictions, result.impressions, result.clicks) == (0, 0, 0)
    assert result.ctr is result.predicted_ctr is result.ctr_ratio is result.auc is None


def test_before_serving_logs_anything_the_window_is_still_recorded(warehouse: Warehouse) -> None:
    result = online_performance(warehouse, START, END)
    assert result.predictions == 0 and result.auc is None
    assert warehouse.read_arrow("select predictions from monitoring.online_performance").num_rows == 1


def test_auc_is_null_with_a_single_class(warehouse: Warehouse, load) -> None:
    load(
        "raw.predictions",
        {
            "prediction_id": (pa.string(), ["a", "b"]),
            "impression_id": (pa.string(), ["i1", "i2"]),
            "event_ts": (TS, [START, START]),
            "model_version": (pa.string(), ["v1", "v1"]),
            "score": (pa.float64(), [0.2, 0.4]),
        },
    )
    result = online_performance(warehouse, START, END)  # no raw.clicks table: nothing clicked
    assert result.ctr == 0.0 and result.predicted_ctr == pytest.approx(0.3) and result.auc is None


def test_only_shown_candidates_count_once_impressions_are_logged(warehouse: Warehouse, load) -> None:
    # The gateway scores four candidates; the user is shown the top two, and clicks the second.
    load(
        "raw.predictions",
        {
            "prediction_id": (pa.string(), ["r-0", "r-1", "r-2", "r-3"]),
            "impression_id": (pa.string(), ["r-0", "r-1", "r-2", "r-3"]),
            "event_ts": (TS, [START] * 4),
            "model_version": (pa.string(), ["v1"] * 4),
            "score": (pa.float64(), [0.1, 0.4, 0.3, 0.05]),
        },
    )
    load(
        "raw.impressions",
        {
            "impression_id": (pa.string(), ["r-1", "r-2"]),
            "event_ts": (TS, [START, START]),
        },
    )
    load(
        "raw.clicks",
        {
            "click_id": (pa.string(), ["c"]),
            "impression_id": (pa.string(), ["r-2"]),
            "event_ts": (TS, [START + timedelta(seconds=5)]),
            "user_id": (pa.int64(), [1]),
            "item_id": (pa.int64(), [2]),
        },
    )
    result = online_performance(warehouse, START, END)
    assert (result.predictions, result.impressions, result.clicks) == (2, 2, 1)
    assert result.predicted_ctr == pytest.approx(0.35) and result.ctr == pytest.approx(0.5)
    assert result.auc == pytest.approx(0.0)  # the clicked item (0.3) ranked below the unclicked one (0.4)
