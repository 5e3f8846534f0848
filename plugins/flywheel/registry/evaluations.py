"""Offline evaluations of model versions (``registry.evaluations``): one row per metric and slice, with the
champion compared against, a 95% interval and the gate's verdict; recorded again, an evaluation is replaced.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from numbers import Real
from typing import Any

from flywheel.registry.store import ensure_tables, statement, utcnow
from flywheel.registry.versions import require_version
from flywheel.warehouse import Warehouse, open_warehouse

#: The slice of a row that names none: the whole evaluation set.
ALL_SLICE = "all"
_FIELDS = ("metric", "value", "slice", "lower", "upper", "passed", "detail")


@dataclass(frozen=True)
class Evaluation:
    """One metric of one slice of an evaluation of ``version``."""

    evaluation_id: str
    version: str
    #: The champion this version was compared against, if any.
    baseline_version: str | None
    metric: str
    slice: str
    value: float
    #: The 95% interval of ``value``, when the evaluation computed one.
    lower: float | None
    upper: float | None
    #: The gate's verdict on this metric; ``None`` when no gate applies.
    passed: bool | None
    detail: dict[str, Any]
    created_at: datetime


def _number(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and math.isfinite(float(value))


def _check_row(index: int, row: Any) -> dict[str, Any]:
    """The row as the insert binds it, or ``ValueError`` naming the row and what is wrong with it."""
    where = f"evaluation row {index} ({row!r})"
    if not isinstance(row, Mapping):
        raise ValueError(f"{where} is not a mapping: give each row as a dict with metric and value")
    unknown = sorted(set(row) - set(_FIELDS))
    if unknown:
        raise ValueError(f"{where} has unknown field(s) {', '.join(unknown)}: use {', '.join(_FIELDS)}")
    metric, value = row.get("metric"), row.get("value")
    if not isinstance(metric, str) or not metric:
        raise ValueError(f"{where} has no metric: name the metric it measures, e.g. 'auc'")
    if not _number(value):
        raise ValueError(f"{where} has no finite numeric value for metric {metric!r}")
    lower, upper = row.get("lower"), row.get("upper")
    for name, bound in (("lower", lower), ("upper", upper)):
        if bound is not None and not _number(bound):
            raise ValueError(f"{where}: {name} must be a finite number or None, got {bound!r}")
    if lower is not None and upper is not None and not lower <= upper:
        raise ValueError(f"{where}: the interval [{lower}, {upper}] is reversed; lower must not exceed upper")
    passed = row.get("passed")
    if passed is not None and not isinstance(passed, bool):
        raise ValueError(f"{where}: passed must be True, False or None, got {passed!r}")
    slice_ = row.get("slice") or ALL_SLICE
    if not isinstance(slice_, str):
        raise ValueError(f"{where}: slice must be a string such as 'all' or 'device=mobile', got {slice_!r}")
    return {
        "metric": metric,
        "value": float(value),
        "slice": slice_,
        "lower": None if lower is None else float(lower),
        "upper": None if upper is None else float(upper),
        "passed": passed,
        "detail": json.dumps(row.get("detail") or {}, sort_keys=True, default=str),
    }


def record_evaluation(
    evaluation_id: str,
    version: str,
    rows: Iterable[Mapping[str, Any]],
    baseline_version: str | None = None,
    warehouse: Warehouse | None = None,
) -> int:
    """Replace the rows of evaluation ``evaluation_id`` of ``version`` with ``rows``; how many were written.

    Each row is a mapping with ``metric`` and ``value`` and optionally ``slice`` (default ``'all'``),
    ``lower``/``upper`` (a 95% interval), ``passed`` and ``detail`` (JSON-serialisable). A rerun with the
    same ``evaluation_id`` leaves one set of rows. Unknown versions raise ``RegistryError``; malformed rows
    (or none at all) raise ``ValueError`` before anything is written.
    """
    checked = [_check_row(i, row) for i, row in enumerate(rows)]
    if not checked:
        # Replacing an evaluation with nothing would erase it: more likely a bug upstream than intended.
        raise ValueError(
            f"evaluation {evaluation_id!r} of {version} has no rows: give at least one metric and value"
        )
    seen: dict[tuple[str, str], int] = {}
    for i, row in enumerate(checked):
        key = (row["metric"], row["slice"])
        if key in seen:
            raise ValueError(
                f"evaluation rows {seen[key]} and {i} both give metric {key[0]!r} on slice {key[1]!r}: "
                "keep one value per metric and slice"
            )
        seen[key] = i
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        require_version(conn, version)
        if baseline_version is not None:
            require_version(conn, baseline_version)
        conn.execute(statement("delete_evaluation.sql"), {"evaluation_id": evaluation_id})
        now = utcnow()
        insert = statement("insert_evaluation.sql")
        for row in checked:
            conn.execute(
                insert,
                {
                    **row,
                    "evaluation_id": evaluation_id,
                    "version": version,
                    "baseline_version": baseline_version,
                    "now": now,
                },
            )
    return len(checked)


def evaluations(version: str, warehouse: Warehouse | None = None) -> list[Evaluation]:
    """Every evaluation row of ``version`` in ``registry.evaluations``, oldest evaluation first."""
    warehouse = warehouse or open_warehouse()
    with warehouse.transaction() as conn:
        ensure_tables(conn)
        require_version(conn, version)
        rows = conn.read_arrow(statement("select_evaluations.sql"), {"version": version}).to_pylist()
    return [Evaluation(**{**row, "detail": json.loads(row["detail"] or "{}")}) for row in rows]
