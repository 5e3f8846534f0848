"""The canary's analysis: the guards checked every few seconds while a step runs, and the judgement at the
end of a step (the DID estimate of the canary's CTR effect with its interval, predicted against observed CTR).

Guards read the gateway's live ``/v1/stats`` (error rate and p99 latency of each version over the last
minute): a breach rolls back at once. The judgement reads what serving logged in the landing zone (the
gateway's predictions and the clicks users made on them), not the warehouse: a step lasts minutes, the
warehouse is loaded hourly. The DID template (``sql/evaluation/did.sql``) runs on a scratch DuckDB file.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from flywheel.events import hour_dir, hours_between, naive_utc
from flywheel.warehouse.base import bind_style, used_params
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).parent / "sql"

#: Guards judge a version only once its last-minute window holds this many requests: one slow request
#: among five is not a p99.
GUARD_MIN_REQUESTS = 20
#: Decisions a step may reach (the registry's DECISIONS): go on, collect more, or roll back.
ADVANCE, HOLD, ROLLBACK = "advance", "hold", "rollback"
#: The canary's observed/predicted CTR ratio outside [1/x, x] times the champion's ratio is flagged in the
#: step's notes (reported, not gated). Relative, because scores are computed at position 1 (serving) while
#: users click across the positions shown: neither model's raw ratio is 1.
CALIBRATION_FACTOR = 2.0
#: ... judged only once the canary's shown items were expected to earn this many clicks.
CALIBRATION_MIN_EXPECTED_CLICKS = 30.0


@dataclass(frozen=True)
class GuardLimits:
    max_error_rate: float
    p99_ms: float
    min_requests: int = GUARD_MIN_REQUESTS


def guard_breach(stats: dict[str, Any], version: str, limits: GuardLimits) -> str | None:
    """Why ``version`` breaches a guard in the gateway's ``/v1/stats`` answer, or None while it holds:
    its error rate or its p99 latency over the gateway's last minute above the limit (absolute limits: a
    rule relative to the champion was tried and let a slow canary through for a minute, because the canary
    slows the champion's requests too, through the shared Triton client and cores)."""
    entry = (stats.get("versions") or {}).get(version)
    if not entry:
        return None
    window = int(entry.get("window_requests") or 0)
    if window < limits.min_requests:
        return None
    errors = int(entry.get("window_errors") or 0)
    rate = errors / window
    if rate > limits.max_error_rate:
        return (
            f"error rate {rate:.1%} ({errors} of {window} requests in the last "
            f"{entry.get('window_seconds', 60)} s) is above the guard {limits.max_error_rate:.1%} "
            "(FLYWHEEL_CANARY_MAX_ERROR_RATE)"
        )
    p99 = entry.get("p99_ms")
    if p99 is not None and float(p99) > limits.p99_ms:
        return (
            f"p99 latency {float(p99):.1f} ms over {window} requests in the last "
            f"{entry.get('window_seconds', 60)} s is above the guard {limits.p99_ms:g} ms "
            "(FLYWHEEL_CANARY_P99_MS)"
        )
    return None


def requests_served(stats: dict[str, Any], version: str) -> int:
    """Cumulative requests the gateway answered with ``version`` (0 when it never served it)."""
    entry = (stats.get("versions") or {}).get(version) or {}
    return int(entry.get("requests") or 0)


@dataclass(frozen=True)
class StepAnalysis:
    """What one canary step showed, and what it decides."""

    decision: str
    reason: str
    weight: float
    canary_requests: int
    champion_requests: int
    canary_ctr: float | None
    canary_predicted_ctr: float | None
    champion_ctr: float | None
    did_estimate: float | None = None
    did_lower: float | None = None
    did_upper: float | None = None
    notes: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        def pct(x: float | None) -> str:
            return "n/a" if x is None else f"{x:.2%}"

        did = (
            "n/a"
            if self.did_estimate is None
            else f"{self.did_estimate:+.4f} [{self.did_lower:+.4f}, {self.did_upper:+.4f}]"
        )
        return (
            f"{self.weight:.0%} of users: canary {self.canary_requests} requests, CTR {pct(self.canary_ctr)} "
            f"(predicted {pct(self.canary_predicted_ctr)}); champion {self.champion_requests} requests, CTR "
            f"{pct(self.champion_ctr)}; DID on CTR {did} -> {self.decision}: {self.reason}"
            + "".join(f"; {note}" for note in self.notes)
        )


def _files(landing_dir: Path, table: str, start: datetime, end: datetime) -> list[str]:
    files: list[str] = []
    for hour in hours_between(start - timedelta(hours=1), end + timedelta(hours=1)):
        folder = hour_dir(landing_dir, table, hour)
        if folder.is_dir():
            files += sorted(str(p) for p in folder.glob("*.parquet"))
    return files


def _log_table(con: Any, landing_dir: Path, version: str, champion: str, weight: float, times: dict) -> int:
    """Create ``canary_log`` (one row per request: request_id, user_id, bucket, served_at, ctr, predicted,
    items, clicks; over the items shown, when impressions were logged) in the scratch database; returns its
    rows.

    Before the canary (``[before_start, canary_start)``) every request was served by the champion: its
    bucket is the one the user's hash gets at this step's weight, which is what makes "canary before" the
    treated users before treatment. After (``[step_start, after_end)``) it is the bucket served, kept only
    for requests served by the two versions under comparison.
    """
    predictions = _files(landing_dir, "predictions", times["before_start"], times["after_end"])
    if not predictions:
        return 0
    late = times["after_end"] + timedelta(minutes=5)
    impressions = _files(landing_dir, "impressions", times["before_start"], late)
    clicks = _files(landing_dir, "clicks", times["before_start"], late)
    sql = render_sql(SQL_DIR / "canary_log.sql", with_impressions=bool(impressions), with_clicks=bool(clicks))
    params = {
        **times,
        "predictions": predictions,
        "impressions": impressions,
        "clicks": clicks,
        "weight": weight,
        "champion": champion,
        "version": version,
    }
    con.execute(bind_style(sql, "$%s"), used_params(sql, params))
    rows_sql = render_sql(SQL_DIR / "canary_log_rows.sql")
    return int(con.execute(rows_sql).fetchone()[0])


def analyse_step(
    landing_dir: Path,
    version: str,
    champion: str,
    weight: float,
    *,
    canary_start: datetime,
    before_start: datetime,
    step_start: datetime,
    after_end: datetime,
    ctr_margin: float,
    final: bool,
) -> StepAnalysis:
    """Judge one step from the landing zone.

    ``advance`` when the lower 95% bound of the DID estimate of the canary's CTR effect (clicks per shown
    item) is above ``-ctr_margin``, or at 100 % (no control group left: the guards decide); ``rollback`` when
    the upper bound is below ``-ctr_margin`` (clearly worse), or when ``final`` (the step's time is up) and
    the interval still does not rule out a loss beyond the margin; ``hold`` otherwise (more requests narrow
    the interval).
    """
    import duckdb

    from flywheel.serving.causal import DidError, did_estimate
    from flywheel.warehouse import open_warehouse

    times = {
        "canary_start": naive_utc(canary_start),
        "before_start": naive_utc(before_start),
        "step_start": naive_utc(step_start),
        "after_end": naive_utc(after_end),
    }
    with tempfile.TemporaryDirectory(prefix="flywheel-canary-") as scratch:
        path = Path(scratch) / "canary.duckdb"
        con = duckdb.connect(str(path))
        try:
            rows = _log_table(con, Path(landing_dir), version, champion, weight, times)
            cells = {b: (0, None, None, None) for b in ("canary", "champion")}
            cell_sql = bind_style(render_sql(SQL_DIR / "canary_cell.sql"), "$%s")
            for bucket in cells if rows else ():
                cells[bucket] = con.execute(
                    cell_sql, {"step_start": times["step_start"], "bucket": bucket}
                ).fetchone()
        finally:
            con.close()
        canary_n, canary_ctr, canary_pred, expected_clicks = cells["canary"]
        champion_n, champion_ctr, champion_pred, _ = cells["champion"]
        base = {
            "weight": weight,
            "canary_requests": int(canary_n or 0),
            "champion_requests": int(champion_n or 0),
            "canary_ctr": None if canary_ctr is None else float(canary_ctr),
            "canary_predicted_ctr": None if canary_pred is None else float(canary_pred),
            "champion_ctr": None if champion_ctr is None else float(champion_ctr),
        }
        if rows == 0:
            return _undecided("no prediction was logged in these windows", final, base)
        notes = _calibration_notes(canary_ctr, canary_pred, champion_ctr, champion_pred, expected_clicks)
        if weight >= 1.0:
            # Everyone is served the canary: no control group is left for a DID. The guards held through the
            # step (a breach would have rolled back before this), so the step advances.
            return StepAnalysis(
                decision=ADVANCE,
                reason="all users on the canary (no control group left): its guards held through the step",
                notes=notes,
                **base,
            )
        try:
            did = did_estimate(
                open_warehouse(f"duckdb:///{path}"),
                "canary_log",
                times["canary_start"],
                times["before_start"],
                times["after_end"],
                outcome_column="ctr",
            )
        except DidError as exc:
            return _undecided(f"DID cannot be estimated yet: {exc}", final, {**base, "notes": notes})
    estimate = {
        "did_estimate": did.estimate,
        "did_lower": did.lower,
        "did_upper": did.upper,
        "notes": notes,
    }
    if not all(math.isfinite(v) for v in (did.estimate, did.lower, did.upper)):
        return _undecided("DID is not finite yet (too few users in a cell)", final, {**base, "notes": notes})
    bound = f"-{ctr_margin:g} (FLYWHEEL_CANARY_CTR_MARGIN)"
    if did.upper < -ctr_margin:
        return StepAnalysis(
            decision=ROLLBACK,
            reason=f"the canary lowers CTR: the whole 95% interval of its effect is below {bound}",
            **base,
            **estimate,
        )
    if did.lower > -ctr_margin:
        return StepAnalysis(
            decision=ADVANCE,
            reason=f"the 95% interval of the canary's CTR effect rules out a loss beyond {bound}",
            **base,
            **estimate,
        )
    reason = f"the 95% interval of the canary's CTR effect still reaches below {bound}"
    if final:
        return StepAnalysis(
            decision=ROLLBACK, reason=f"{reason} when the step's time ran out", **base, **estimate
        )
    return StepAnalysis(decision=HOLD, reason=f"{reason}: collecting more requests", **base, **estimate)


def _calibration_notes(
    canary_ctr: float | None,
    canary_pred: float | None,
    champion_ctr: float | None,
    champion_pred: float | None,
    expected_clicks: float | None,
) -> list[str]:
    """Predicted against observed CTR, reported beside the verdict (never gating it: scores are computed at
    position 1 while users click across the positions shown, so no model's ratio is 1, and a model that
    learned the position effect differently is not wrong for it)."""
    if not (canary_ctr is not None and canary_pred and champion_ctr and champion_pred):
        return []
    relative = (canary_ctr / canary_pred) / (champion_ctr / champion_pred)
    note = (
        f"observed/predicted CTR: canary {canary_ctr:.2%} / {canary_pred:.2%}, champion {champion_ctr:.2%} / "
        f"{champion_pred:.2%} ({relative:.2f}x the champion's ratio)"
    )
    if (expected_clicks or 0) >= CALIBRATION_MIN_EXPECTED_CLICKS and not (
        1 / CALIBRATION_FACTOR <= relative <= CALIBRATION_FACTOR
    ):
        note += (
            f": outside [1/{CALIBRATION_FACTOR:g}, {CALIBRATION_FACTOR:g}], its scores mean something else"
        )
    return [note]


def _undecided(reason: str, final: bool, base: dict[str, Any]) -> StepAnalysis:
    if final:
        return StepAnalysis(decision=ROLLBACK, reason=f"{reason} when the step's time ran out", **base)
    return StepAnalysis(decision=HOLD, reason=reason, **base)
