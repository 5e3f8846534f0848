"""Failed expectations in words: the expectation, its column, what was observed and what was allowed."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from flywheel.quality.row_count import RowCountBounds

#: How many offending values a message quotes.
EXAMPLES = 3


@dataclass(frozen=True)
class Failure:
    """One failed expectation: ``expect_...(column): what was seen``."""

    expectation: str
    column: str | None
    observed: Any
    description: str
    error: bool = False  # GX could not evaluate it (a query failed), so it says nothing about the data

    def __str__(self) -> str:
        target = f"({self.column})" if self.column else ""
        return f"{self.expectation}{target}: {self.description}"

    def as_record(self) -> dict[str, Any]:
        """A JSON-able record for ``quarantine.validations.failed_expectations``."""
        return {
            "expectation": self.expectation,
            "column": self.column,
            "observed": _jsonable(self.observed),
            "message": str(self),
        }


def describe_failures(results: list[Any], bounds: RowCountBounds) -> list[Failure]:
    """One ``Failure`` per unsuccessful ``ExpectationValidationResult``, in suite order."""
    return [_describe(r, bounds) for r in results if not r.success]


def _describe(result: Any, bounds: RowCountBounds) -> Failure:
    config = result.expectation_config
    kind, kwargs = config.type, config.kwargs
    info = result.exception_info or {}
    column = _column_label(kwargs)
    if info.get("raised_exception") or (info and "raised_exception" not in info):
        message = info.get("exception_message") or next(
            (v.get("exception_message") for v in info.values() if isinstance(v, dict)), "unknown error"
        )
        message = str(message).strip().rstrip(".")
        return Failure(kind, column, None, f"could not be evaluated: {message}", error=True)
    stats = result.result or {}
    observed = stats.get("observed_value")
    if kind == "expect_table_row_count_to_be_between":
        return Failure(kind, None, observed, f"observed {observed}, {bounds.rule}")
    if kind == "expect_table_columns_to_match_set":
        missing = sorted(set(kwargs.get("column_set") or []) - set(observed or []))
        return Failure(kind, None, observed, f"missing column(s) {', '.join(missing)}; has {observed}")
    if "unexpected_count" not in stats:
        return Failure(kind, column, observed, f"observed {_fmt(observed)}")
    unexpected, total = stats["unexpected_count"], stats.get("element_count")
    share = f"{unexpected} of {total} rows"
    examples = _examples(stats.get("partial_unexpected_list") or [])
    if kind == "expect_column_values_to_not_be_null":
        text = f"{share} null"
    elif kind in ("expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"):
        text = f"{share} duplicated{examples}"
    elif kind == "expect_column_values_to_be_between":
        text = f"{share} not {_range(kwargs)}{examples}"
    elif kind == "expect_column_values_to_be_in_set":
        allowed = ", ".join(_fmt(v) for v in kwargs.get("value_set") or [])
        text = f"{share} not in {{{allowed}}}{examples}"
    elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
        op = ">=" if kwargs.get("or_equal") else ">"
        text = f"{share} break {kwargs.get('column_A')} {op} {kwargs.get('column_B')}{examples}"
    else:
        text = f"{share} unexpected{examples}"
    if kwargs.get("mostly") is not None:
        text += f" (at most {1 - kwargs['mostly']:.0%} allowed)"
    return Failure(kind, column, unexpected, text)


def _column_label(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return str(kwargs["column"])
    if kwargs.get("column_list"):
        return ", ".join(kwargs["column_list"])
    if kwargs.get("column_A"):
        return f"{kwargs['column_A']}, {kwargs['column_B']}"
    return None


def _range(kwargs: dict[str, Any]) -> str:
    low, high = kwargs.get("min_value"), kwargs.get("max_value")
    parts = []
    if low is not None:
        parts.append(f"{'>' if kwargs.get('strict_min') else '>='} {_fmt(low)}")
    if high is not None:
        parts.append(f"{'<' if kwargs.get('strict_max') else '<='} {_fmt(high)}")
    return " and ".join(parts) or "in range"


def _examples(values: list[Any]) -> str:
    seen: list[Any] = []
    for value in values:
        if value not in seen:
            seen.append(value)
    if not seen:
        return ""
    return ", e.g. " + ", ".join(_fmt(v) for v in seen[:EXAMPLES])


def _fmt(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, dict | list | tuple):
        items = value.values() if isinstance(value, dict) else value
        return "(" + ", ".join(_fmt(v) for v in items) + ")"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return str(value)
