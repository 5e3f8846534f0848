"""The canary's causal effect: difference-in-differences over the prediction log, with a standard error
clustered by user, computed in SQL (``sql/evaluation/did.sql``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from statistics import NormalDist

from flywheel.events import naive_utc
from flywheel.warehouse import Warehouse, WarehouseError, validate_identifier
from flywheel.warehouse.templates import render_sql

DID_SQL = "evaluation/did.sql"

_CELLS = ("canary_before", "canary_after", "champion_before", "champion_after")


class DidError(WarehouseError):
    """The estimate cannot be made from this log and window; the message says which part is missing."""


@dataclass(frozen=True)
class DidCell:
    """One bucket in one period: the mean outcome per request, its requests and distinct users."""

    mean: float
    requests: int
    users: int


@dataclass(frozen=True)
class DidEstimate:
    """The canary's effect on the outcome per request, with its clustered standard error and interval."""

    estimate: float
    std_error: float
    lower: float
    upper: float
    confidence: float
    canary_before: DidCell
    canary_after: DidCell
    champion_before: DidCell
    champion_after: DidCell
    canary_users: int
    champion_users: int

    @property
    def excludes_zero(self) -> bool:
        """Whether the interval says the canary changed the outcome (either way)."""
        return self.lower > 0 or self.upper < 0


def did_estimate(
    warehouse: Warehouse,
    log_table: str,
    canary_start: datetime,
    before_start: datetime,
    after_end: datetime,
    *,
    outcome_column: str = "clicks",
    experiment_column: str | None = None,
    experiment: object = None,
    confidence: float = 0.95,
) -> DidEstimate:
    """Estimate the canary's effect on ``outcome_column`` per request from ``log_table`` (a table or view,
    one row per request: request_id, user_id, bucket, served_at and the outcome; serving's is
    ``raw.predictions`` joined to its clicks).

    Before is ``[before_start, canary_start)``, after ``[canary_start, after_end)``, on ``served_at``.
    With ``experiment_column``, only the rows whose value equals ``experiment`` are read. Raises
    ``DidError`` naming the cell when one of the four is empty, and when the bucketing was not stable.
    """
    canary_start, before_start, after_end = (naive_utc(t) for t in (canary_start, before_start, after_end))
    if not before_start < canary_start < after_end:
        raise DidError(
            f"the windows must satisfy before_start < canary_start < after_end, got {before_start}, "
            f"{canary_start}, {after_end}"
        )
    if not 0 < confidence < 1:
        raise DidError(f"confidence must be between 0 and 1 (0.95 for a 95% interval), got {confidence!r}")
    validate_identifier(log_table)
    validate_identifier(outcome_column)
    if experiment_column is not None:
        validate_identifier(experiment_column)
        if experiment is None:
            raise DidError(f"experiment_column {experiment_column!r} given without the experiment to keep")
    if not warehouse.table_exists(log_table):
        raise DidError(
            f"{log_table} does not exist in the warehouse: serving has not logged predictions yet, or give "
            "log_table, a table or view with request_id, user_id, bucket, served_at and the outcome"
        )
    sql = render_sql(
        DID_SQL, log_table=log_table, outcome_column=outcome_column, experiment_column=experiment_column
    )
    params = {
        "canary_start": canary_start,
        "before_start": before_start,
        "after_end": after_end,
        "z": NormalDist().inv_cdf(0.5 + confidence / 2),
    }
    if experiment_column is not None:
        params["experiment"] = experiment
    row = warehouse.read_arrow(sql, params).to_pylist()[0]
    where = f"{log_table}" + (f" ({experiment_column} = {experiment!r})" if experiment_column else "")
    _check(row, where, before_start, canary_start, after_end)
    return DidEstimate(
        estimate=float(row["estimate"]),
        std_error=float(row["std_error"]),
        lower=float(row["lower"]),
        upper=float(row["upper"]),
        confidence=confidence,
        **{
            cell: DidCell(
                mean=float(row[f"{cell}_mean"]),
                requests=int(row[f"{cell}_requests"]),
                users=int(row[f"{cell}_users"]),
            )
            for cell in _CELLS
        },
        canary_users=int(row["canary_users"]),
        champion_users=int(row["champion_users"]),
    )


def _check(
    row: dict, where: str, before_start: datetime, canary_start: datetime, after_end: datetime
) -> None:
    periods = {"before": f"[{before_start}, {canary_start})", "after": f"[{canary_start}, {after_end})"}
    why = {
        "canary_before": "serving must log the bucket each user would be in before the canary starts",
        "canary_after": "the canary has served no one in the window yet: widen after_end or wait",
        "champion_before": "no champion traffic before the canary: move before_start earlier",
        "champion_after": "the canary took all traffic: a comparison needs champion traffic after it starts",
    }
    for cell in _CELLS:
        if not row[f"{cell}_requests"]:
            bucket, period = cell.split("_")
            raise DidError(
                f"the {bucket} {period} cell is empty: {where} has no {bucket} requests with a non-NULL "
                f"outcome in {periods[period]}; {why[cell]}"
            )
    if row["users_in_both_buckets"]:
        raise DidError(
            f"{row['users_in_both_buckets']} user(s) appear in both buckets of {where}: the bucketing is not "
            "stable; serving must assign each user one bucket by a stable hash and log it in both periods"
        )
    if row["std_error"] is None:
        thin = "canary" if row["canary_users"] < 2 else "champion"
        raise DidError(
            f"the {thin} bucket of {where} has fewer than two users: a standard error clustered by user "
            "needs at least two in each bucket"
        )
