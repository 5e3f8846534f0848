"""The retrain rule read from monitoring.feature_drift: when it fires, when it must not, on both engines."""

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


def record(warehouse: Warehouse, history: dict[str, list[float | None]]) -> datetime:
    """Write hourly windows per feature (None = a window without data); returns the last window's end."""
    rows = [
        {
            "window_start": hour(i),
            "window_end": hour(i + 1),
            "feature": feature,
            "kind": "numeric",
            "psi": psi,
            "status": "ok" if psi is not None else "no_data",
            "window_rows": 100 if psi is not None else 0,
            "bins": "[]",
            "profile_id": "v1",
        }
        for feature, values in history.items()
        for i, psi in enumerate(values)
    ]
    with warehouse.transaction() as conn:
        conn.ensure_table(FEATURE_DRIFT_TABLE, FEATURE_DRIFT_SCHEMA)
        conn.insert_arrow(FEATURE_DRIFT_TABLE, pa.Table.from_pylist(rows, schema=FEATURE_DRIFT_SCHEMA))
    return hour(max(len(v) for v in history.values()))


def test_fires_when_the_latest_window_reaches_the_threshold(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.01, 0.02, 0.2], "position": [0.01, 0.3, 0.05]})
    decision = drift_decision(warehouse, end)
    assert decision.fire
    assert decision.features == {"price": pytest.approx(0.2)}  # position's 0.3 was an hour ago
    assert "price: PSI 0.2000 >= 0.2 in the latest window" in decision.reason


def test_fires_on_two_consecutive_windows_over_the_lower_threshold(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.0, 0.12, 0.15]})
    decision = drift_decision(warehouse, end)
    assert decision.fire and decision.features == {"price": pytest.approx(0.15)}
    assert "in each of the last 2 windows" in decision.reason


def test_one_window_over_the_lower_threshold_does_not_fire(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.15, 0.05, 0.15], "category": [0.01, 0.02, 0.19]})
    decision = drift_decision(warehouse, end)
    assert not decision.fire and decision.features == {}
    assert "highest PSI 0.1900 (category)" in decision.reason


def test_no_data_never_fires_and_breaks_a_sustained_run(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.5, 0.15, None], "stock": [0.15, None, 0.15]})
    assert not drift_decision(warehouse, end).fire  # latest price window empty; stock's run broken
    decision = drift_decision(warehouse, hour(2))  # deciding the earlier window: price 0.15 after 0.5
    assert decision.fire and set(decision.features) == {"price"}


def test_a_window_never_recorded_does_not_fire_on_old_drift(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.9, 0.9]})
    assert drift_decision(warehouse, end).fire
    assert not drift_decision(warehouse, end + timedelta(hours=1)).fire


def test_thresholds_and_run_length_are_parameters(warehouse: Warehouse) -> None:
    end = record(warehouse, {"price": [0.06, 0.07, 0.08]})
    assert not drift_decision(warehouse, end).fire
    assert drift_decision(warehouse, end, psi_threshold=0.08).fire
    assert drift_decision(warehouse, end, sustained_threshold=0.05, sustained_windows=3).fire
    assert not drift_decision(warehouse, end, sustained_threshold=0.07, sustained_windows=3).fire


def test_nothing_recorded_yet_does_not_fire(warehouse: Warehouse) -> None:
    decision = drift_decision(warehouse, hour(1))
    assert not decision.fire and "no drift recorded yet" in decision.reason
