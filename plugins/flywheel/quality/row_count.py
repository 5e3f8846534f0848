"""Row-count bounds for a partition, from the table's own recent volume (the trailing hourly average)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from flywheel.warehouse.base import Warehouse
from flywheel.warehouse.templates import render_sql

#: How far back the expected volume looks.
ROW_COUNT_HISTORY = timedelta(hours=24)
#: A partition with fewer rows than this share of the expected count fails (a feed that went quiet).
ROW_COUNT_MIN_RATIO = 0.3
#: A partition with more rows than this multiple of the expected count fails (duplicated or replayed data).
ROW_COUNT_MAX_RATIO = 3.0
#: Below this many expected rows, Poisson noise alone crosses the ratio bounds (an hour expecting 3 orders
#: sees none 5% of the time), so low-volume partitions are not judged on volume.
ROW_COUNT_MIN_EXPECTED = 30

SQL_DIR = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class RowCountBounds:
    """What the row-count expectation allows for one partition, and why."""

    min_value: int
    max_value: int | None
    hourly_average: float | None  # None: the table had no rows in the history window
    history_hours: int
    expected: float | None

    @property
    def rule(self) -> str:
        """The bounds in words, as the failure message and the docs state them."""
        if self.hourly_average is None:
            return "no history in the trailing 24h: the partition only has to have rows"
        window = f"trailing 24h average {_number(self.hourly_average)} rows/h"
        if self.max_value is None:
            return f"{window}: too few expected rows ({_number(self.expected or 0)}) to judge volume"
        return f"expected {self.min_value}..{self.max_value} ({window})"

    def as_parameters(self) -> dict[str, int | None]:
        return {"row_count_min": self.min_value, "row_count_max": self.max_value}


def bounds_for(hourly_average: float | None, history_hours: int, interval: timedelta) -> RowCountBounds:
    """The bounds for an interval given the table's average rows per hour (None when it has no history)."""
    if hourly_average is None:
        return RowCountBounds(1, None, None, 0, None)
    expected = hourly_average * (interval / timedelta(hours=1))
    if expected < ROW_COUNT_MIN_EXPECTED:
        return RowCountBounds(0, None, hourly_average, history_hours, expected)
    # floor/ceil widen the bounds to whole rows; the epsilon keeps 700 * 0.3 at 210, not 210.00000000000003.
    low = math.floor(expected * ROW_COUNT_MIN_RATIO + 1e-9)
    high = math.ceil(expected * ROW_COUNT_MAX_RATIO - 1e-9)
    return RowCountBounds(max(low, 1), high, hourly_average, history_hours, expected)


def row_count_bounds(
    warehouse: Warehouse, table: str, column: str, start: datetime, end: datetime
) -> RowCountBounds:
    """Bounds for ``table``'s partition ``[start, end)`` from its rows in the 24 hours before ``start``."""
    history = warehouse.read_arrow(
        render_sql(SQL_DIR / "trailing_row_count.sql", table=table, column=column),
        {"history_start": start - ROW_COUNT_HISTORY, "start": start},
    ).to_pylist()[0]
    rows, hours = int(history["history_rows"] or 0), int(history["history_hours"] or 0)
    return bounds_for(rows / hours if hours else None, hours, end - start)


def _number(value: float) -> str:
    return f"{value:.0f}" if value >= 10 else f"{value:.1f}"
