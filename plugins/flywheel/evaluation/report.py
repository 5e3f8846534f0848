"""The evaluation report: one self-contained HTML page (no script, nothing fetched) with ROC and calibration
curves, slice differences with their intervals, attribution side by side and the gate's table. This module
computes each plot's geometry; ``templates/report.html.j2`` writes it as inline SVG, autoescaped."""

from __future__ import annotations

import math
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from flywheel.artifacts import storage
from flywheel.evaluation.bootstrap import ALL
from flywheel.evaluation.gate import FAILED, PASSED, REPORTED, TOO_SMALL, Check, GateDecision
from flywheel.evaluation.metrics import ECE_BINS, auc, check_inputs

#: Points per ROC curve at most: a 100k-row evaluation then makes a page of about 40 kB.
MAX_ROC_POINTS = 500
MAX_FEATURES = 25
#: Blue and orange stay apart for the common colour blindnesses; the champion is also dashed and square.
CANDIDATE, CHAMPION, CHAMPION_DASH = "#1f6fb4", "#d95f02", "6 4"
STATUS_COLOUR = {FAILED: "#b3261e", PASSED: "#2e7d32", TOO_SMALL: "#777", REPORTED: "#777"}
STATUS_TEXT = {FAILED: "✗ FAILED", PASSED: "✓ passed", TOO_SMALL: "too small", REPORTED: "reported"}
_RANK = {FAILED: 0, PASSED: 1, TOO_SMALL: 2, REPORTED: 3}
_TEMPLATES = Path(__file__).parent / "templates"


@dataclass(frozen=True)
class Frame:
    """A plot of ``width`` x ``height`` pixels showing the ``x`` and ``y`` ranges inside its margins."""

    width: int
    height: int
    x: tuple[float, float]
    y: tuple[float, float]
    left: int = 56
    right: int = 16
    top: int = 28
    bottom: int = 44

    def px(self, v: float) -> float:
        return self.left + (v - self.x[0]) / (self.x[1] - self.x[0]) * (self.width - self.left - self.right)

    def py(self, v: float) -> float:
        span = self.height - self.top - self.bottom
        return self.height - self.bottom - (v - self.y[0]) / (self.y[1] - self.y[0]) * span

    def points(self, xs: Sequence[float], ys: Sequence[float]) -> str:
        return " ".join(f"{self.px(x):.1f},{self.py(y):.1f}" for x, y in zip(xs, ys, strict=True))


@dataclass
class Plot:
    """One SVG: ``label`` names it for screen readers; the template draws every part in pixels.

    curves: name, colour, dash, points; marks (calibration bins): shape, x, y, r, colour, title; rows
    (bars): label, note, x, y, width, colour, dash, interval (x1, x2) or None; rules (margins): x, text.
    """

    slug: str
    label: str
    frame: Frame
    xlabel: str
    ylabel: str | None = None
    legend: list[tuple[str, str, str | None]] = field(default_factory=list)
    curves: list[dict[str, Any]] = field(default_factory=list)
    marks: list[dict[str, Any]] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    rules: list[dict[str, Any]] = field(default_factory=list)
    zero: float | None = None


def ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    """Round tick values (steps of 1, 2 or 5 times a power of ten) within [lo, hi]."""
    raw = (hi - lo) / count
    step = 10 ** math.floor(math.log10(raw))
    step *= next(m for m in (1, 2, 5, 10) if m * step >= raw)
    return [round(t, 10) for t in np.arange(math.ceil(lo / step) * step, hi + step / 2, step)]


def roc_points(labels: object, scores: object, max_points: int = MAX_ROC_POINTS) -> tuple[np.ndarray, ...]:
    """False and true positive rates at every distinct threshold, from (0, 0) to (1, 1), thinned to at most
    ``max_points`` evenly along the curve's length (fpr + tpr), so corners survive. Empty with one class."""
    y, s = check_inputs(labels, scores, probabilities=False)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last = np.flatnonzero(np.r_[s[1:] != s[:-1], True])  # the last row of each run of equal scores
    tp = np.cumsum(y)[last].astype(np.float64)
    fp = last + 1 - tp
    if not tp.size or tp[-1] == 0 or fp[-1] == 0:
        return np.empty(0), np.empty(0)
    fpr, tpr = np.r_[0.0, fp / fp[-1]], np.r_[0.0, tp / tp[-1]]
    if fpr.size > max_points:
        keep = np.searchsorted(fpr + tpr, np.linspace(0, 2, max_points - 1))
        keep = np.unique(np.r_[0, np.minimum(keep, fpr.size - 1), fpr.size - 1])
        fpr, tpr = fpr[keep], tpr[keep]
    return fpr, tpr


def calibration_bins(labels: object, probabilities: object, bins: int = ECE_BINS) -> tuple[np.ndarray, ...]:
    """(mean predicted, observed click rate, rows) of each non-empty equal-width bin, as the ECE bins them."""
    y, p = check_inputs(labels, probabilities)
    which = np.minimum((p * bins).astype(np.int64), bins - 1)
    rows = np.bincount(which, minlength=bins)
    seen = rows > 0
    predicted = np.bincount(which, p, bins)[seen] / rows[seen]
    return predicted, np.bincount(which, y, bins)[seen] / rows[seen], rows[seen]


def _fmt(value: float | None, digits: int = 4) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def _ok(v: object) -> bool:
    return isinstance(v, int | float | np.floating) and math.isfinite(v)


def roc_plot(labels: object, models: list[tuple[str, str, str | None, object]]) -> Plot:
    """ROC curves of (name, colour, dash, scores) models over the chance diagonal, AUC in the legend."""
    f = Frame(420, 380, (0.0, 1.0), (0.0, 1.0), top=24 + 14 * len(models))
    curves = [dict(name="chance", colour="#bbb", dash="2 3", points=f.points([0, 1], [0, 1]), model=False)]
    legend = []
    for name, colour, dash, scores in models:
        fpr, tpr = roc_points(labels, scores)
        curves.append(dict(name=name, colour=colour, dash=dash, points=f.points(fpr, tpr), model=True))
        legend.append((f"{name} (AUC {_fmt(auc(labels, scores), 3)})", colour, dash))
    label = "ROC curves: " + "; ".join(e[0] for e in legend) + "; the dotted diagonal is chance"
    return Plot("roc", label, f, "false positive rate", "true positive rate", legend=legend, curves=curves)


def calibration_plot(labels: object, models: list[tuple[str, str, str | None, object]]) -> Plot:
    """Observed click rate against mean prediction per bin, point area by rows, zoomed to the points."""
    binned = [calibration_bins(labels, scores) for *_, scores in models]
    highest = max(float(np.max(np.r_[p, o])) for p, o, _ in binned)
    top = min(1.0, max(0.05, math.ceil(highest * 1.05 / 0.05) * 0.05))  # click rates are a few percent
    f = Frame(420, 380, (0.0, top), (0.0, top), top=24 + 14 * len(models))
    diagonal = f.points([0, top], [0, top])
    curves = [dict(name="perfect", colour="#bbb", dash="2 3", points=diagonal, model=False)]
    marks = []
    most = max(int(rows.max()) for *_, rows in binned)
    for (name, colour, dash, _), (p, o, rows) in zip(models, binned, strict=True):
        curves.append(dict(name=name, colour=colour, dash=dash, points=f.points(p, o), model=True))
        for x, y, n in zip(p, o, rows, strict=True):
            title = f"{name}: mean prediction {x:.4f}, observed {y:.4f}, {n:,} rows"
            shape = "circle" if dash is None else "square"
            r = 2.5 + 7 * math.sqrt(n / most)
            marks.append(dict(shape=shape, x=f.px(x), y=f.py(y), r=r, colour=colour, title=title))
    label = (
        f"Calibration in {ECE_BINS} equal-width bins, point area by rows, the dotted diagonal is perfect: "
        + "; ".join(m[0] for m in models)
    )
    legend = [(name, colour, dash) for name, colour, dash, _ in models]
    ylabel = "observed click rate"
    xlabel = "mean predicted click probability"
    return Plot("calibration", label, f, xlabel, ylabel, legend=legend, curves=curves, marks=marks)


def bars_plot(slug: str, label: str, xlabel: str, rows: list[dict[str, Any]], rules=()) -> Plot:
    """Horizontal bars from 0 to each row's ``value`` with its [lower, upper] interval and a note, and
    dashed ``rules`` (x, text) such as the margin. A row without a finite value shows only its note."""
    values = [v for r in rows for v in (r["value"], r.get("lower"), r.get("upper")) if _ok(v)]
    values += [0.0, *(x for x, _ in rules)]
    pad = (max(values) - min(values)) * 0.08 or 0.01
    band = 22
    rows = [r | dict(label=_short(r["label"])) for r in rows]  # the table beneath has the full names
    left = 12 + 7 * max(len(r["label"]) for r in rows)
    height = 28 + 44 + band * len(rows)
    f = Frame(720, height, (min(values) - pad, max(values) + pad), (0, len(rows)), left=left, right=110)
    plot = Plot(slug, label, f, xlabel, zero=f.px(0.0))
    for i, r in enumerate(rows):
        end = f.px(r["value"]) if _ok(r["value"]) else plot.zero
        lower, upper = r.get("lower"), r.get("upper")
        interval = (f.px(lower), f.px(upper)) if _ok(lower) and _ok(upper) else None
        geometry = dict(y=f.top + band * i, x=min(end, plot.zero), width=max(abs(end - plot.zero), 1.0))
        plot.rows.append({"dash": None, **r, **geometry, "bar": _ok(r["value"]), "interval": interval})
    plot.rules = [dict(x=f.px(x), text=text) for x, text in rules]
    return plot


def _short(label: str, most: int = 36) -> str:
    return label if len(label) <= most else label[: most - 1] + "…"


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def slice_plots(decision: GateDecision) -> list[Plot]:
    """One plot per metric judged on slices: candidate - champion per slice with its 95% interval and the
    margin line (a first model: its own value). Too small slices are listed beside, not drawn."""
    by_metric: dict[str, list[Check]] = {}
    for c in decision.checks:
        if c.slice != ALL and c.status != TOO_SMALL:
            by_metric.setdefault(c.name, []).append(c)
    plots = []
    for metric, checks in by_metric.items():
        paired, margin, better = checks[0].champion is not None, checks[0].margin, checks[0].higher_is_better
        rows = [
            dict(label=c.slice, value=c.difference if paired else c.candidate, lower=c.lower, upper=c.upper)
            | dict(colour=STATUS_COLOUR.get(c.status, "#777"), note=STATUS_TEXT.get(c.status, c.status))
            for c in sorted(checks, key=lambda c: c.slice)
        ]
        rules = []
        if paired and margin is not None:
            bound = -margin if better else margin
            rules = [(bound, f"margin {bound:+g}")]
        what = "candidate − champion" if paired else "candidate (first model)"
        direction = "higher" if better else "lower"
        label = f"{metric} by slice, {what} with 95% intervals ({direction} is better): "
        label += "; ".join(f"{r['label']} {_fmt(r['value'])} {r['note']}" for r in rows)
        plots.append(bars_plot(f"slices-{_slug(metric)}", label, f"{metric}: {what}", rows, rules))
    return plots


def attribution_plot(candidate: Mapping[str, float], champion: Mapping[str, float] | None, models) -> Plot:
    """Mean |attribution| per feature, the ``MAX_FEATURES`` largest: the candidate's bar, then the
    champion's (pale and dashed), each labelled with its model and value."""
    both = [candidate] + ([champion] if champion is not None else [])
    names = sorted(set().union(*both), key=lambda n: (-max(m.get(n, 0.0) for m in both), n))
    rows = []
    for name in names[:MAX_FEATURES]:
        for (model, colour, dash, _), values in zip(models, both, strict=False):
            value = values.get(name, math.nan)
            note = f"{model.split()[0]} {_fmt(value, 3) if _ok(value) else 'absent'}"
            label = name if values is candidate else ""
            rows.append(dict(label=label, value=value, colour=colour, note=note, dash=dash))
    shown = f" (the {MAX_FEATURES} largest of {len(names)})" if len(names) > MAX_FEATURES else ""
    label = f"Mean |attribution| per feature{shown}: " + " beside ".join(m[0] for m in models[: len(both)])
    return bars_plot("attribution", label, "mean |Shapley value| of the click logit", rows)


def ordered(checks: Sequence[Check]) -> list[Check]:
    """As ``GateDecision.table`` orders them: failed, passed, too small, reported; the whole set first."""
    return sorted(checks, key=lambda c: (_RANK.get(c.status, 4), c.slice != ALL, c.slice, c.name))


def headline(candidate: str, champion: str | None, decision: GateDecision) -> str:
    """The decision in one sentence: blessed or rejected, and the first failed check's reason."""
    against = f"against champion {champion}" if champion else "as the first model (absolute thresholds)"
    verdict = f"Candidate {candidate} is {'BLESSED' if decision.passed else 'REJECTED'} {against}"
    if decision.passed:
        return f"{verdict}: all {sum(c.passed is not None for c in decision.checks)} gated checks passed."
    failed = ordered(decision.failed)
    if not failed:
        return f"{verdict}: no check was gated, so nothing shows that it is good enough."
    more = len(failed) - 1
    rest = f" (and {more} more failed check{'s' * (more > 1)})" if more else ""
    return f"{verdict}: {failed[0].name} on {failed[0].slice}: {failed[0].reason}{rest}."


def _when(t: object) -> str:
    return f"{t:%Y-%m-%d %H:%M %Z}".strip() if isinstance(t, datetime) else str(t)


def render_report(
    *,
    candidate: str,
    champion: str | None,
    labels: object,
    candidate_scores: object,
    champion_scores: object | None,
    decision: GateDecision,
    resamples: int,
    seed: int,
    window: tuple[object, object] | None = None,
    candidate_attribution: Mapping[str, float] | None = None,
    champion_attribution: Mapping[str, float] | None = None,
    attribution_rows: int | None = None,
    attribution_shift: float | None = None,
    attribution_threshold: float | None = None,
) -> str:
    """The evaluation page: the decision in one sentence, ROC and calibration curves of both models on the
    held-out ``labels``, slice bars and the gate's table from ``decision``, and the attribution.

    ``champion_scores`` None: the first model, drawn alone. ``window``: the held-out hours (start, end).
    ``*_attribution``: mean |attribution| per feature; None when it was not computed; ``attribution_rows``
    the rows it was computed on, ``attribution_shift`` the distance between the two profiles and
    ``attribution_threshold`` the one from which it is reported (``flywheel.evaluation.attribution``).
    ``decision.notes`` are listed under the verdict. 100k rows render in
    about 0.1 s into about 40 kB; every value from the data is escaped by the template's autoescape.
    """
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    y = np.asarray(labels)
    models = [(f"candidate {candidate}", CANDIDATE, None, candidate_scores)]
    if champion_scores is not None:
        models.append((f"champion {champion or '(unnamed)'}", CHAMPION, CHAMPION_DASH, champion_scores))
    clicks = int(np.sum(y))
    attribution = None
    if candidate_attribution:
        attribution = attribution_plot(candidate_attribution, champion_attribution, models)
    loader = FileSystemLoader(_TEMPLATES)
    env = Environment(loader=loader, autoescape=True, undefined=StrictUndefined, trim_blocks=True)
    checks = ordered(decision.checks)
    return env.get_template("report.html.j2").render(
        candidate=candidate,
        champion=champion,
        passed=decision.passed,
        headline=headline(candidate, champion, decision),
        window=None if window is None else f"{_when(window[0])} to {_when(window[1])}",
        rows=int(y.size),
        clicks=clicks,
        resamples=resamples,
        seed=seed,
        roc=roc_plot(labels, models) if 0 < clicks < y.size else None,
        calibration=calibration_plot(labels, models) if y.size else None,
        slices=slice_plots(decision),
        too_small=[c for c in checks if c.slice != ALL and c.status == TOO_SMALL],
        attribution=attribution,
        attribution_rows=attribution_rows,
        attribution_shift=attribution_shift,
        attribution_threshold=attribution_threshold,
        notes=list(decision.notes),
        checks=checks,
        status_text=STATUS_TEXT,
        fmt=_fmt,
        ticks=ticks,
    )


def write_report(uri: str | os.PathLike[str], **inputs: Any) -> str:
    """Render the page from ``inputs`` (:func:`render_report`'s) and store it at ``uri``, a path or an
    object store URI; returns the URI for the task log. Locally the page goes to a scratch file beside the
    target and is renamed over it, so no reader sees half a page; an object store put is whole anyway."""
    data = render_report(**inputs).encode("utf-8")
    filesystem, path = storage.resolve(uri)
    if not storage.is_local(uri):
        filesystem.pipe_file(path, data)
        return storage.uri_of(filesystem, path, uri)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, scratch = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(scratch, 0o644)
        os.replace(scratch, target)
    except BaseException:
        Path(scratch).unlink(missing_ok=True)
        raise
    return storage.uri_of(filesystem, path, uri)
