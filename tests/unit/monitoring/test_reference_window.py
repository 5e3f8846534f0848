"""A model's reference is its training window: the profile of a relation's rows in ``[start, end)``,
filtered with bound parameters, is the profile of those same rows selected by hand."""

from __future__ import annotations

from datetime import datetime, timedelta

import pyarrow as pa
import pytest

from flywheel.monitoring import RelationError, profile_reference
from flywheel.warehouse import Warehouse

START = datetime(2026, 1, 1)
COMPARED = ["feature", "kind", "bin", "bin_kind", "lower_edge", "upper_edge", "category", "bin_rows", "share"]


@pytest.fixture
def rows(load) -> None:
    # Three hours; the middle one is the training window, its values unlike those either side.
    times = [START + timedelta(minutes=15 * i) for i in range(12)]
    load(
        "marts.examples",
        {
            "event_ts": (pa.timestamp("us"), times),
            "price": (pa.float64(), [100.0 + i if 4 <= i < 8 else float(i) for i in range(12)]),
            "category": (pa.string(), ["b", "b", "c", "c", "a", "a", "a", None, "c", "d", "d", "d"]),
        },
    )


def _profile(stored: pa.Table) -> list[dict[str, object]]:
    return sorted(stored.select(COMPARED).to_pylist(), key=lambda r: (r["feature"], r["bin"]))


def test_a_windowed_profile_is_the_profile_of_the_rows_in_the_window(
    warehouse: Warehouse, rows: None
) -> None:
    window = (START + timedelta(hours=1), START + timedelta(hours=2))
    windowed = profile_reference(
        warehouse, "marts.examples", ["price"], ["category"], bins=4, profile_id="v1", window=window
    )
    by_hand = profile_reference(
        warehouse,
        "select * from marts.examples where event_ts >= timestamp '2026-01-01 01:00:00' "
        "and event_ts < timestamp '2026-01-01 02:00:00'",
        ["price"],
        ["category"],
        bins=4,
        profile_id="by_hand",
    )

    assert _profile(windowed) == _profile(by_hand)
    assert set(windowed.column("reference_rows").to_pylist()) == {4}  # not the table's 12 rows
    assert {r["category"] for r in windowed.to_pylist() if r["bin_kind"] == "category"} == {"a"}


def test_an_empty_window_is_refused_and_names_the_window(warehouse: Warehouse, rows: None) -> None:
    window = (START + timedelta(hours=5), START + timedelta(hours=6))
    with pytest.raises(
        RelationError, match=r"event_ts in \[2026-01-01 05:00:00, 2026-01-01 06:00:00\).*no rows"
    ):
        profile_reference(warehouse, "marts.examples", ["price"], profile_id="v1", window=window)


def test_a_window_needs_the_timestamp_column(warehouse: Warehouse, rows: None) -> None:
    window = (START, START + timedelta(hours=1))
    with pytest.raises(RelationError, match="unknown column.*hour_ts"):
        profile_reference(
            warehouse, "marts.examples", ["price"], profile_id="v1", window=window, timestamp_column="hour_ts"
        )
