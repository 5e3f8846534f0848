"""Fixtures for the monitoring tests: a warehouse on DuckDB and on PostgreSQL, and a way to fill a table."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from flywheel.config import Settings
from flywheel.warehouse import Warehouse, open_warehouse

Loader = Callable[[str, dict[str, tuple[pa.DataType, list]]], None]


@pytest.fixture
def warehouse(warehouse_home: Settings) -> Warehouse:
    """The warehouse of a fresh home: DuckDB, then a new PostgreSQL database."""
    return open_warehouse(warehouse_home.warehouse_url)


@pytest.fixture
def load(warehouse: Warehouse) -> Loader:
    """``load("schema.table", {"column": (arrow_type, values)})`` creates the table and inserts the rows."""

    def _load(table: str, columns: dict[str, tuple[pa.DataType, list]]) -> None:
        data = pa.table({name: pa.array(values, type) for name, (type, values) in columns.items()})
        with warehouse.transaction() as conn:
            conn.ensure_table(table, data.schema)
            conn.insert_arrow(table, data)

    return _load


@pytest.fixture
def exported_metric_names(home: Settings) -> set[str]:
    """The metric names the exports really write: a full drift check (every value known, the rule fired)
    and an evaluation's verdict."""
    from flywheel.evaluation.tasks import export_metrics as export_evaluation_metrics
    from flywheel.monitoring import Decision, FeatureDrift, OnlinePerformance, export_metrics

    now = datetime(2026, 1, 1, tzinfo=UTC)
    path = export_metrics(
        [FeatureDrift("price", "numeric", 0.3, "ok", 10)],
        OnlinePerformance(now, now, 10, 10, 1, 0.1, 0.1, 1.0, 0.7),
        Decision(True, {"price": 0.3}, "test"),
        checked_at=now,
    )
    verdict = export_evaluation_metrics("v0002", "v0001", False, 2, evaluated_at=now)
    text = path.read_text() + verdict.read_text()
    return set(re.findall(r"^(flywheel_\w+)[{ ]", text, flags=re.MULTILINE))


#: PromQL words that are not metric names.
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: identifiers that are not functions, keywords or label names."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', "", expr)  # string literals
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # range selectors
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", expr):
        following = expr[match.end() :].lstrip()
        if not following.startswith("(") and match.group() not in _PROMQL_WORDS:
            names.add(match.group())
    return names


@pytest.fixture
def metric_names_of() -> Callable[[str], set[str]]:
    return promql_metric_names
