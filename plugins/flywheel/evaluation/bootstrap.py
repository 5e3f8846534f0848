"""Paired bootstrap of candidate against champion on the same held-out impressions, overall and per slice,
with 95% percentile intervals of each model's metric and of their difference (candidate - champion).

Each resample weighs every impression by a Poisson(1) count (the Poisson bootstrap: for thousands of rows
it matches drawing n with replacement, and blocks of resamples are a few vectorised array operations).
Measured on a busy 2-core machine at nice 19: 100k impressions x 1,000 resamples, AUC of both models 2.2 s;
AUC, log loss and ECE together 4.5 s.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from flywheel.evaluation.metrics import ECE_BINS, KERNELS, LOWER_IS_BETTER, Kernel, check_inputs, ece_kernel

#: Two-sided coverage of every interval; a non-inferiority check at it is a one-sided test at 2.5%.
CONFIDENCE = 0.95
#: The slice of the whole held-out set (as registry.evaluations names it).
ALL = "all"
#: Resamples per block: 32 x 100k float32 weights is 13 MB, small enough to stay in cache-friendly sizes.
_BLOCK = 32
# Poisson(1) cumulative probabilities: a uniform draw above k of them is a count of k. Counts above 9
# (probability 1e-7) are cut at 10, below float32's resolution of the uniform draw anyway.
_POISSON_CDF = np.cumsum([math.exp(-1) / math.factorial(k) for k in range(10)]).astype(np.float32)
OFFLINE_METRICS = ("auc", "log_loss", "ece")


@dataclass(frozen=True)
class Estimate:
    """A value with its 95% bootstrap percentile interval (NaN bounds when no interval was computed)."""

    value: float
    lower: float = math.nan
    upper: float = math.nan


@dataclass(frozen=True)
class Comparison:
    """One metric on one slice: the candidate, and against a champion the champion and the difference."""

    metric: str
    slice: str
    #: Impressions (offline metrics) or requests (ranking replay) the metric was computed on.
    rows: int
    candidate: Estimate
    champion: Estimate | None = None
    #: candidate - champion, whatever the metric's direction.
    difference: Estimate | None = None
    #: The bootstrap draws of the difference, for one-sided p-values; None when not resampled.
    draws: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def higher_is_better(self) -> bool:
        return self.metric.split("@")[0] not in LOWER_IS_BETTER


def poisson_weights(rng: np.random.Generator, n: int, resamples: int) -> Iterator[np.ndarray]:
    """Blocks of Poisson(1) resample weights, float32 of shape (block, n), ``resamples`` rows in all."""
    for start in range(0, resamples, _BLOCK):
        uniform = rng.random((min(_BLOCK, resamples - start), n), dtype=np.float32)
        counts = (uniform > _POISSON_CDF[0]).view(np.uint8).copy()
        for threshold in _POISSON_CDF[1:]:  # counting in bytes is twice as fast as in float32
            counts += (uniform > threshold).view(np.uint8)
        yield counts.astype(np.float32)


def estimate(value: float, draws: np.ndarray | None) -> Estimate:
    """``value`` with the 2.5% and 97.5% percentiles of its finite ``draws``."""
    finite = draws[np.isfinite(draws)] if draws is not None else np.empty(0)
    if not finite.size:
        return Estimate(float(value))
    tail = (1 - CONFIDENCE) / 2 * 100
    lower, upper = np.percentile(finite, [tail, 100 - tail])
    return Estimate(float(value), float(lower), float(upper))


def compare_draws(
    metric: str,
    slice_: str,
    rows: int,
    points: Sequence[float],
    draws: Sequence[np.ndarray | None],
) -> Comparison:
    """A :class:`Comparison` from the point values and bootstrap draws of candidate and (maybe) champion."""
    candidate = estimate(points[0], draws[0])
    if len(points) < 2:
        return Comparison(metric, slice_, rows, candidate)
    diff_draws = None if draws[0] is None or draws[1] is None else draws[0] - draws[1]
    return Comparison(
        metric,
        slice_,
        rows,
        candidate,
        champion=estimate(points[1], draws[1]),
        difference=estimate(points[0] - points[1], diff_draws),
        draws=diff_draws,
    )


def _slice_indices(slices: Mapping[str, object] | None, n: int) -> dict[str, np.ndarray]:
    """``{"column=value": row indices}`` for each value of each slice column, in sorted order."""
    found: dict[str, np.ndarray] = {}
    for column, values in (slices or {}).items():
        values = np.asarray(values)
        if values.shape != (n,):
            raise ValueError(
                f"slice column {column!r} has shape {values.shape}: give one value per impression ({n})"
            )
        for value in np.unique(values):
            found[f"{column}={value}"] = np.flatnonzero(values == value)
    return found


def compare_models(
    labels: object,
    candidate: object,
    champion: object | None = None,
    *,
    slices: Mapping[str, object] | None = None,
    min_slice_rows: int = 1,
    resamples: int = 1000,
    seed: int = 0,
    metrics: Sequence[str] = OFFLINE_METRICS,
    bins: int = ECE_BINS,
) -> list[Comparison]:
    """AUC, log loss and ECE of ``candidate`` (and ``champion``) probabilities, overall then per slice.

    ``slices`` maps a column name (``user_type``) to one label per impression (``new``/``returning``);
    each value becomes the slice ``user_type=new``. Slices of fewer than ``min_slice_rows`` impressions
    get point values only. All slices and both models share each resample's weights, so every difference
    is paired, and the same ``seed`` gives the same intervals.
    """
    unknown = sorted(set(metrics) - set(KERNELS))
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}: choose from {sorted(KERNELS)}")
    if resamples < 1:
        raise ValueError(f"resamples={resamples}: give at least 1 (1000 is usual)")
    y, cand = check_inputs(labels, candidate, "candidate scores")
    models = [cand] + ([check_inputs(labels, champion, "champion scores")[1]] if champion is not None else [])
    if not y.size:
        raise ValueError("the held-out set is empty: there is nothing to evaluate the models on")
    subsets: dict[str, np.ndarray | None] = {ALL: None, **_slice_indices(slices, y.size)}

    def make(metric: str, rows: np.ndarray | None, p: np.ndarray) -> Kernel:
        yy, pp = (y, p) if rows is None else (y[rows], p[rows])
        return ece_kernel(yy, pp, bins) if metric == "ece" else KERNELS[metric](yy, pp)

    kernels = {
        (name, metric): [make(metric, rows, p) for p in models]
        for name, rows in subsets.items()
        for metric in metrics
    }
    sizes = {name: y.size if rows is None else rows.size for name, rows in subsets.items()}
    resampled = {name for name in subsets if name == ALL or sizes[name] >= min_slice_rows}
    draws = {key: [np.empty(resamples) for _ in models] for key in kernels if key[0] in resampled}
    rng = np.random.default_rng(seed)
    done = 0
    for block in poisson_weights(rng, y.size, resamples):
        for name in resampled:
            rows = subsets[name]
            weights = block if rows is None else np.take(block, rows, axis=1)
            for metric in metrics:
                for model, kernel in enumerate(kernels[name, metric]):
                    draws[name, metric][model][done : done + len(block)] = kernel(weights)
        done += len(block)
    comparisons = []
    for (name, metric), model_kernels in kernels.items():
        points = [float(k(np.ones((1, sizes[name]), dtype=np.float32))[0]) for k in model_kernels]
        model_draws = draws.get((name, metric), [None] * len(models))
        comparisons.append(compare_draws(metric, name, sizes[name], points, model_draws))
    return comparisons
