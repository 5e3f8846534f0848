"""The gate: candidate against champion by non-inferiority on paired 95% intervals (Holm across slices),
or the first model on absolute thresholds; a table for people and rows for the registry."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from flywheel.config import EvaluationSettings
from flywheel.evaluation.bootstrap import ALL, CONFIDENCE, Comparison

#: One-sided level of each non-inferiority test: the 95% two-sided interval's lower tail.
ALPHA = (1 - CONFIDENCE) / 2
PASSED, FAILED, TOO_SMALL, REPORTED = "passed", "failed", "too small", "reported"


@dataclass(frozen=True)
class Check:
    """One metric on one slice as the gate judged it.

    ``lower``/``upper`` bound the paired 95% interval of ``difference`` (candidate - champion); for the first
    model they bound the candidate's own value. ``passed`` is None for checks that are reported, not gated.
    """

    name: str
    slice: str
    candidate: float
    champion: float | None
    difference: float | None
    lower: float
    upper: float
    margin: float | None
    passed: bool | None
    reason: str
    status: str = REPORTED
    candidate_lower: float = math.nan
    candidate_upper: float = math.nan
    higher_is_better: bool = True
    #: One-sided p-value, raw and Holm-adjusted: overall, of "worse by more than the margin" (small = it
    #: is not); on a slice, of "no worse beyond the margin" (small = the slice regressed).
    p_value: float | None = None
    adjusted_p_value: float | None = None


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate may be promoted, and every check behind the answer."""

    passed: bool
    checks: list[Check] = field(default_factory=list)
    #: Findings reported beside the checks, never gated (e.g. a large shift in attribution).
    notes: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if c.passed is False]

    def table(self) -> str:
        """The checks as a plain-text table, failed first, then passed, then those not gated."""
        rank = {FAILED: 0, PASSED: 1, TOO_SMALL: 2, REPORTED: 3}
        ordered = sorted(self.checks, key=lambda c: (rank.get(c.status, 4), c.slice != ALL, c.slice, c.name))
        header = ("status", "check", "slice", "candidate", "champion", "difference [95% interval]", "margin")
        rows = [header] + [
            (
                c.status,
                c.name,
                c.slice,
                _number(c.candidate),
                _number(c.champion),
                f"{_number(c.difference)} [{_number(c.lower)}, {_number(c.upper)}]",
                _number(c.margin),
            )
            for c in ordered
        ]
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
        lines.insert(1, "  ".join("-" * w for w in widths))
        verdict = "PASSED" if self.passed else f"REJECTED ({len(self.failed)} failed check(s))"
        reasons = [f"- {c.name} on {c.slice}: {c.reason}" for c in ordered if c.passed is False]
        notes = [f"- {note}" for note in self.notes]
        return "\n".join(
            [
                f"gate {verdict}",
                *lines,
                *(["", "why:", *reasons] if reasons else []),
                *(["", "notes (reported, not gated):", *notes] if notes else []),
            ]
        )

    def as_rows(self) -> list[dict[str, Any]]:
        """Rows for ``flywheel.registry.record_evaluation``: ``<metric>`` (the candidate's value and interval)
        and, against a champion, ``<metric>_difference`` carrying the verdict. A value that could not be
        computed (a slice without clicks) has no row; the table still shows it."""
        rows = []
        for c in self.checks:
            detail = {"status": c.status, "reason": c.reason, "margin": c.margin}
            if c.difference is None:
                rows.append(_row(c.name, c.slice, c.candidate, c.lower, c.upper, c.passed, detail))
                continue
            rows.append(_row(c.name, c.slice, c.candidate, c.candidate_lower, c.candidate_upper, None, {}))
            detail |= {
                "champion": _finite(c.champion),
                "higher_is_better": c.higher_is_better,
                "p_value": c.p_value,
                "adjusted_p_value": c.adjusted_p_value,
            }
            rows.append(
                _row(f"{c.name}_difference", c.slice, c.difference, c.lower, c.upper, c.passed, detail)
            )
        return [row for row in rows if row is not None]


def _number(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _row(metric, slice_, value, lower, upper, passed, detail) -> dict[str, Any] | None:
    if not math.isfinite(value):
        return None
    lower, upper = _finite(lower), _finite(upper)
    if lower is None or upper is None:
        lower = upper = None
    return {
        "metric": metric,
        "slice": slice_,
        "value": value,
        "lower": lower,
        "upper": upper,
        "passed": passed,
        "detail": detail,
    }


def margin_of(metric: str, settings: EvaluationSettings) -> float | None:
    """The non-inferiority margin of ``metric``; None for metrics that are reported, not gated (GMV@k)."""
    base = metric.split("@")[0]
    return {
        "auc": settings.auc_margin,
        "log_loss": settings.log_loss_margin,
        "ece": settings.ece_margin,
        "ctr": settings.ctr_margin,
    }.get(base)


def non_inferiority_p_value(draws: np.ndarray | None, margin: float, higher_is_better: bool) -> float:
    """One-sided bootstrap p-value of "the candidate is worse than the champion by more than ``margin``".

    The share of resampled differences (candidate - champion) at or beyond the margin on the losing side
    (at most -margin when higher is better, at least +margin when lower is better), as (count + 1) /
    (resamples + 1) so that it is never 0. Below ALPHA exactly when the interval clears the margin.
    """
    finite = np.empty(0) if draws is None else draws[np.isfinite(draws)]
    if not finite.size:
        return 1.0
    worse = finite <= -margin if higher_is_better else finite >= margin
    return float((worse.sum() + 1) / (finite.size + 1))


def regression_p_value(draws: np.ndarray | None, margin: float, higher_is_better: bool) -> float:
    """One-sided bootstrap p-value of "the candidate is no worse than the champion beyond ``margin``": small
    when the slice has regressed beyond its margin.

    The share of resampled differences (candidate - champion) that are *not* beyond the margin on the losing
    side (above -margin when higher is better, below +margin when lower is better), as (count + 1) /
    (resamples + 1). A slice without draws (no clicks in it) gives 1: no evidence of a regression.
    """
    finite = np.empty(0) if draws is None else draws[np.isfinite(draws)]
    if not finite.size:
        return 1.0
    not_worse = finite > -margin if higher_is_better else finite < margin
    return float((not_worse.sum() + 1) / (finite.size + 1))


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the i-th smallest is multiplied by (m - i + 1)
    (i from 1), kept monotone with a running maximum and capped at 1."""
    p = np.asarray(p_values, dtype=np.float64)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (p.size - np.arange(p.size))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted.tolist()


def _against_champion(c: Comparison, margin: float) -> tuple[bool, str]:
    """The interval rule: the bound on the losing side of the difference must clear the margin."""
    d = c.difference
    if d is None or not (math.isfinite(d.lower) and math.isfinite(d.upper)):
        return False, "no interval for the difference (no clicks, or not resampled): no evidence, so it fails"
    if c.higher_is_better:
        ok = d.lower > -margin
        reason = f"lower bound {d.lower:+.4f} {'>' if ok else '<='} -{margin:g} (higher is better)"
        shown_worse = d.upper <= -margin
    else:
        ok = d.upper < margin
        reason = f"upper bound {d.upper:+.4f} {'<' if ok else '>='} +{margin:g} (lower is better)"
        shown_worse = d.lower >= margin
    if ok:
        return ok, reason
    if shown_worse:
        return ok, f"{reason}: worse beyond the margin over the whole interval"
    # Not shown worse, only not shown good enough: say what would settle it.
    return ok, (
        f"{reason}: inconclusive on {c.rows} {'requests' if c.metric.startswith('ctr@') else 'impressions'}, "
        "the interval is wider than the margin; "
        "hold out more hours (FLYWHEEL_EVAL_HELD_OUT_HOURS) or widen the margin"
    )


def _absolute(c: Comparison, settings: EvaluationSettings) -> Check:
    """The first model ever: AUC's lower bound and ECE's upper bound against fixed thresholds."""
    e = c.candidate
    common = dict(
        name=c.metric,
        slice=c.slice,
        candidate=e.value,
        champion=None,
        difference=None,
        lower=e.lower,
        upper=e.upper,
        candidate_lower=e.lower,
        candidate_upper=e.upper,
        higher_is_better=c.higher_is_better,
    )
    if c.slice != ALL or c.metric not in ("auc", "ece"):
        return Check(**common, margin=None, passed=None, reason="first model: reported, not gated")
    if c.metric == "auc":
        bound = e.lower if math.isfinite(e.lower) else e.value
        ok = bound >= settings.min_auc
        reason = f"first model: AUC lower bound {bound:.4f} {'>=' if ok else '<'} {settings.min_auc:g}"
        threshold = settings.min_auc
    else:
        bound = e.upper if math.isfinite(e.upper) else e.value
        ok = bound <= settings.max_ece
        reason = f"first model: ECE upper bound {bound:.4f} {'<=' if ok else '>'} {settings.max_ece:g}"
        threshold = settings.max_ece
    if not math.isfinite(bound):
        ok, reason = False, f"first model: {c.metric} could not be computed (no clicks?): no evidence"
    return Check(**common, margin=threshold, passed=ok, reason=reason, status=PASSED if ok else FAILED)


def decide(comparisons: Iterable[Comparison], settings: EvaluationSettings | None = None) -> GateDecision:
    """Judge ``comparisons`` (from ``compare_models`` and ``replay``) and say whether the candidate passes.

    Against a champion: on the whole set a check passes when the paired 95% interval of (candidate -
    champion) lies above -margin (AUC, CTR@k) or, lower being better, below +margin (log loss, ECE): the
    candidate must show it is not worse. A slice with at least ``min_slice_rows`` rows blocks promotion when
    it shows a regression beyond the margin: the one-sided p-values of "no worse beyond the margin"
    (:func:`regression_p_value`) of each metric are Holm-adjusted across slices, and a slice fails when its
    adjusted p-value is below 2.5% (a slice is too small to *prove* non-inferiority at these volumes, so
    requiring that would reject every candidate on noise). Smaller slices are reported as "too small".
    GMV@k is reported, not gated. Without a champion, :func:`_absolute` applies.
    Passes when no check fails (and at least one was gated).
    """
    settings = settings or EvaluationSettings()
    checks: list[Check] = []
    family: dict[str, list[tuple[int, int]]] = {}  # metric -> (index in checks, resamples)
    for c in comparisons:
        if c.champion is None:
            checks.append(_absolute(c, settings))
            continue
        d, e = c.difference, c.candidate
        if d is None:
            raise ValueError(
                f"{c.metric} on {c.slice} has a champion but no difference: build it with compare_draws"
            )
        common = dict(
            name=c.metric,
            slice=c.slice,
            candidate=e.value,
            champion=c.champion.value,
            difference=d.value,
            lower=d.lower,
            upper=d.upper,
            candidate_lower=e.lower,
            candidate_upper=e.upper,
            higher_is_better=c.higher_is_better,
        )
        margin = margin_of(c.metric, settings)
        if margin is None:
            checks.append(Check(**common, margin=None, passed=None, reason="reported, not gated"))
        elif c.slice != ALL and c.rows < settings.min_slice_rows:
            reason = f"{c.rows} rows < FLYWHEEL_EVAL_MIN_SLICE_ROWS={settings.min_slice_rows}: not gated"
            checks.append(Check(**common, margin=margin, passed=None, reason=reason, status=TOO_SMALL))
        elif c.slice == ALL:
            ok, reason = _against_champion(c, margin)
            p = non_inferiority_p_value(c.draws, margin, c.higher_is_better)
            checks.append(
                Check(
                    **common,
                    margin=margin,
                    passed=ok,
                    reason=reason,
                    status=PASSED if ok else FAILED,
                    p_value=p,
                )
            )
        else:
            p = regression_p_value(c.draws, margin, c.higher_is_better)
            resamples = 0 if c.draws is None else int(np.isfinite(c.draws).sum())
            family.setdefault(c.metric, []).append((len(checks), resamples))
            checks.append(Check(**common, margin=margin, passed=None, reason="", p_value=p))
    for members in family.values():
        adjusted = holm([checks[i].p_value or 1.0 for i, _ in members])
        m = len(members)
        for (i, resamples), a in zip(members, adjusted, strict=True):
            regressed = a < ALPHA
            side = f"-{checks[i].margin:g}" if checks[i].higher_is_better else f"+{checks[i].margin:g}"
            if regressed:
                reason = f"regressed beyond {side}: Holm-adjusted p {a:.4f} < {ALPHA:g} over {m} slice(s)"
            else:
                reason = f"no regression beyond {side} shown: Holm-adjusted p {a:.4f} over {m} slice(s)"
            ok = not regressed
            raw = checks[i].p_value if checks[i].p_value is not None else 1.0
            if resamples and m / (resamples + 1) >= ALPHA and raw < ALPHA:
                # A regression before the correction that no p-value this coarse can confirm after it
                # (even p = 1 / (resamples + 1) is too large): not judged as a pass.
                wanted = math.ceil(m / ALPHA)
                ok = False
                reason = (
                    f"cannot judge: p {raw:.4f} < {ALPHA:g} before Holm's correction, but {resamples} "
                    f"resamples cannot show a regression on any of {m} slices after it; raise "
                    f"FLYWHEEL_EVAL_RESAMPLES to {wanted}+"
                )
            status = PASSED if ok else FAILED
            checks[i] = replace(checks[i], passed=ok, reason=reason, adjusted_p_value=a, status=status)
    gated = [c for c in checks if c.passed is not None]
    return GateDecision(passed=bool(gated) and all(c.passed for c in gated), checks=checks)
