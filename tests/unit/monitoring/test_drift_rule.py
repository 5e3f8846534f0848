"""The retrain rule read from monitoring.feature_drift for the model in service: when it fires, when it must
not (another model's windows, a missing hour), on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from flywheel.monitoring import drift_decision
from flywheel.monitoring.drift import FEATURE_DRIFT_SCHEMA, FEATURE_DRIFT_TABLE
from flywheel.warehouse import Warehouse

START = datetime(2026, 1, 1)


def hour(n: int) -> datetime:
    return START + timedelta(hours=n)


def record(
    warehouse: Warehouse, history: dict[str, list[float | None]], model: str = "v1", first_hour: int = 0
) -> datetime:
    """Write hourly windows per feature measured for ``model``, the first one starting at ``first_hour``
    (None = a window without data); returns the last window's end."""
    rows = [
        {
            "window_start": hour(first_hour + i),
            "window_end": hour(first_hour + i + 1),
            "feature": feature,
            "kind": "numeric",
            "psi": psi,
            "status": "ok" if psi is not None else "no_data",
            "window_rows": 100 if psi is not None else 0,
            "bins": "[]",
            "profile_id": model,
            "model_version": model,
        }
        for feature, values in history.items()
        for i, psi in enumerate(values)
    ]
    with warehouse.transaction() as conn:
        conn.ensure_table(FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA)
        conn.insert_arrow(FEATURE_DRIFT_TABLE, pa.Table.from_pylist(rows, schema=FEATURE_DRIFT_SCHEMA))
    return hour(first_hour + max(len(v) for v in history.values()))


def test_fires_when_the_latest_window_reaches_the_threshold(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.01, 0.02, 0.2], "position": [0.01, 0.3, 0.05]})
    decision = drift_decision(warehouse, "v1", end)
    assert decision.fire
    assert decision.features == {"price": pytest.approx(0.2)}  # position's 0.3 was an hour ago
    assert "price: PSI 0.2000 >= 0.2 in the latest window" in decision.reason


def test_fires_on_two_consecutive_windows_over_the_lower_threshold(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.0, 0.12, 0.15]})
    decision = drift_decision(warehouse, "v1", end)
    assert decision.fire and decision.features == {"price": pytest.approx(0.15)}
    assert "in each of the last 2 windows" in decision.reason


def test_one_window_over_the_lower_threshold_does_not_fire(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.15, 0.05, 0.15], "category": [0.01, 0.02, 0.19]})
    decision = drift_decision(warehouse, "v1", end)
    assert not decision.fire and decision.features == {}
    assert "highest PSI 0.1900 (category)" in decision.reason


def test_no_data_never_fires_and_breaks_a_sustained_run(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.5, 0.15, None], "stock": [0.15, None, 0.15]})
    assert not drift_decision(warehouse, "v1", end).fire  # latest price window empty; stock's run broken
    decision = drift_decision(warehouse, "v1", hour(2))  # deciding the earlier window: price 0.15 after 0.5
    assert decision.fire and set(decision.features) == {"price"}


def test_a_window_never_recorded_does_not_fire_on_old_drift(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.9, 0.9]})
    assert drift_decision(warehouse, "v1", end).fire
    assert not drift_decision(warehouse, "v1", end + timedelta(hours=1)).fire


def test_thresholds_and_run_length_are_parameters(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.06, 0.07, 0.08]})
    assert not drift_decision(warehouse, "v1", end).fire
    assert drift_decision(warehouse, "v1", end, psi_threshold=0.08).fire
    assert drift_decision(warehouse, "v1", end, sustained_threshold=0.05, sustained_windows=3).fire
    assert not drift_decision(warehouse, "v1", end, sustained_threshold=0.07, sustained_windows=3).fire


def test_a_missing_hour_breaks_a_sustained_run(warehouse: Warehouse) -> None:
    record(warehouse, {"price": [0.15]}, first_hour=0)  # window ending at hour 1
    end = record(warehouse, {"price": [0.15]}, first_hour=2)  # hour 1..2 was never checked
    decision = drift_decision(warehouse, "v1", end)
    assert not decision.fire, decision.reason
    assert "none >= 0.1 for 2 consecutive hours" in decision.reason
    # Once the hour before is there, the same two windows over the lower threshold fire.
    record(warehouse, {"price": [0.12]}, first_hour=1)
    assert drift_decision(warehouse, "v1", end).features == {"price": pytest.approx(0.15)}


def test_windows_of_an_earlier_model_never_count_for_the_new_one(warehouse: Warehouse) -> None:
    # v1 drifted badly for hours; v2 replaced it at hour 3 and its first window is only mildly shifted.
    record(warehouse, {"price": [0.5, 0.6, 0.7, 0.8]}, model="v1")
    end = record(warehouse, {"price": [0.15]}, model="v2", first_hour=3)
    assert drift_decision(warehouse, "v1", end).fire  # v1's own verdict on the same hour stands
    decision = drift_decision(warehouse, "v2", end)
    assert not decision.fire and decision.features == {}, decision.reason
    # A second v2 hour over the lower threshold starts v2's own streak: now it fires, on v2's PSI.
    later = record(warehouse, {"price": [0.13]}, model="v2", first_hour=4)
    record(warehouse, {"price": [0.01]}, model="v1", first_hour=4)
    decision = drift_decision(warehouse, "v2", later)
    assert decision.fire and decision.features == {"price": pytest.approx(0.13)}


def test_a_model_with_no_windows_yet_does_not_fire(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.9, 0.9]}, model="v1")
    decision = drift_decision(warehouse, "v2", end)
    assert not decision.fire and "no drift recorded for model v2" in decision.reason


def test_nothing_recorded_yet_does_not_fire(warehouse: Warehouse) -> None:
    decision = drift_decision(warehouse, "v1", hour(1))
    assert not decision.fire and "no drift recorded yet" in decision.reason
