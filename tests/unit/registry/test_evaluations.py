"""Evaluations on DuckDB and PostgreSQL: rows per metric and slice, replaced as a whole when an evaluation is
recorded again, and malformed input refused before anything is written."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flywheel.registry import RegistryError, evaluations, record_evaluation
from flywheel.warehouse import Warehouse

ROWS = [
    {"metric": "auc", "value": 0.74, "lower": 0.73, "upper": 0.75, "passed": True},
    {"metric": "auc", "slice": "device=mobile", "value": 0.71, "passed": False, "detail": {"n": 1200}},
    {"metric": "log_loss", "value": 0.41},
]


def test_recording_an_evaluation_twice_leaves_one_set_of_rows(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    champion, candidate = register(1), register(2)
    assert record_evaluation("eval-1", candidate, ROWS, baseline_version=champion, warehouse=warehouse) == 3
    record_evaluation("eval-1", candidate, ROWS[:2], baseline_version=champion, warehouse=warehouse)

    rows = evaluations(candidate, warehouse)
    assert [(r.metric, r.slice) for r in rows] == [("auc", "all"), ("auc", "device=mobile")]
    overall, mobile = rows
    assert (overall.evaluation_id, overall.version, overall.baseline_version) == (
        "eval-1",
        candidate,
        champion,
    )
    assert (overall.value, overall.lower, overall.upper) == pytest.approx((0.74, 0.73, 0.75))
    assert overall.passed is True and overall.detail == {}
    assert (mobile.passed, mobile.lower, mobile.detail) == (False, None, {"n": 1200})
    assert evaluations(champion, warehouse) == []


def test_evaluations_of_different_ids_live_side_by_side(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    version = register(1)
    record_evaluation("eval-1", version, ROWS[2:], warehouse=warehouse)
    record_evaluation("eval-2", version, ROWS[2:], warehouse=warehouse)

    assert [(r.evaluation_id, r.baseline_version) for r in evaluations(version, warehouse)] == [
        ("eval-1", None),
        ("eval-2", None),
    ]


def test_an_unknown_version_is_refused_with_the_versions_that_exist(
    warehouse: Warehouse, register: Callable[[int], str]
) -> None:
    version = register(1)
    with pytest.raises(RegistryError, match="no model version 'v0042'.*latest are v0001"):
        record_evaluation("eval-1", "v0042", ROWS, warehouse=warehouse)
    with pytest.raises(RegistryError, match="no model version 'v0007'"):
        record_evaluation("eval-1", version, ROWS, baseline_version="v0007", warehouse=warehouse)
    assert evaluations(version, warehouse) == []


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([{"value": 0.7}], r"evaluation row 0 \(\{'value': 0.7\}\) has no metric"),
        ([ROWS[0], {"metric": "auc", "slice": "x"}], "row 1 .* no finite numeric value for metric 'auc'"),
        ([{"metric": "auc", "value": 0.7, "lower": 0.8, "upper": 0.6}], r"interval \[0.8, 0.6\] is reversed"),
        ([{"metric": "auc", "value": 0.7, "weight": 2}], "unknown field.* weight"),
        ([ROWS[0], ROWS[0]], "rows 0 and 1 both give metric 'auc' on slice 'all'"),
        ([], "has no rows"),
    ],
)
def test_malformed_rows_are_refused_before_anything_is_written(
    warehouse: Warehouse, register: Callable[[int], str], rows: list[dict], message: str
) -> None:
    version = register(1)
    record_evaluation("eval-1", version, ROWS, warehouse=warehouse)
    with pytest.raises(ValueError, match=message):
        record_evaluation("eval-1", version, rows, warehouse=warehouse)
    assert len(evaluations(version, warehouse)) == 3  # the earlier rows survive the refused rewrite
