"""Offline metrics of a click model (AUC, log loss, expected calibration error), weighted so that one call
scores the full set (no weights) or a whole block of bootstrap resamples (a 2-D array of weights) at once."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

#: Equal-width bins of the predicted probability for the expected calibration error.
ECE_BINS = 10
#: Predictions are clipped to [EPSILON, 1 - EPSILON] for log loss, so a confident miss costs ~34.5, not inf.
EPSILON = 1e-15
#: Metrics where a lower value is the better model; every other metric is higher-is-better.
LOWER_IS_BETTER = frozenset({"log_loss", "ece"})

#: A metric prepared for one set of labels and scores: weights (n,) or (resamples, n) in, value(s) out.
Kernel = Callable[[np.ndarray], np.ndarray]


def check_inputs(
    labels: object, scores: object, name: str = "scores", probabilities: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """``labels`` as booleans and ``scores`` as floats of the same length, or ``ValueError`` saying why not.

    ``probabilities``: the scores must lie in [0, 1] (log loss and calibration need probabilities).
    """
    y = np.asarray(labels)
    p = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or p.shape != y.shape:
        raise ValueError(
            f"labels have shape {y.shape} and {name} {p.shape}: give one label and one score per impression"
        )
    if y.size and not np.isin(y, (0, 1)).all():
        raise ValueError(f"labels hold {np.unique(y)[:5]!r}...: give clicks as 0/1 or False/True")
    if not np.isfinite(p).all():
        raise ValueError(
            f"{name} hold {int((~np.isfinite(p)).sum())} NaN or infinite value(s): score every row"
        )
    if probabilities and p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError(
            f"{name} range over [{p.min():g}, {p.max():g}]: give probabilities in [0, 1] (apply the sigmoid)"
        )
    return y.astype(bool), p


def _as_2d(weights: np.ndarray | None, n: int) -> tuple[np.ndarray, bool]:
    if weights is None:
        return np.ones((1, n), dtype=np.float32), True
    w = np.asarray(weights)
    if w.shape[-1] != n or w.ndim not in (1, 2):
        raise ValueError(f"weights have shape {w.shape}: give (n,) or (resamples, n) with n = {n}")
    return np.atleast_2d(w), w.ndim == 1


def auc_kernel(labels: np.ndarray, scores: np.ndarray) -> Kernel:
    """AUC as a weighted Mann-Whitney statistic from one sort of ``scores``; ties count one half.

    With integer weights this is exactly the AUC of the resample that repeats each row that many times.
    Per block of weights it gathers them in score order and takes one running sum; everything else touches
    only the positives. A resample with no positive or no negative weight gives NaN.
    """
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    positives = np.flatnonzero(labels[order])  # sorted positions of the clicks
    starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])  # first position of each run of equal scores
    ends = np.r_[starts[1:], s.size]
    group = np.searchsorted(starts, positives, side="right") - 1
    first, last = starts[group], ends[group]  # the tie group [first, last) of each positive
    # Positives before position x: searchsorted over the positives' positions.
    pos_before_first = np.searchsorted(positives, first)
    pos_before_last = np.searchsorted(positives, last)

    def kernel(weights: np.ndarray) -> np.ndarray:
        rows, n = weights.shape
        # Integer counts below 2**24 add exactly in float32; larger sets sum in float64.
        dtype = np.float32 if n < 2**22 and weights.dtype == np.float32 else np.float64
        w = np.take(weights, order, axis=1).astype(dtype, copy=False)
        running = np.zeros((rows, n + 1), dtype=dtype)  # running[:, x]: weight at positions < x
        np.cumsum(w, axis=1, out=running[:, 1:])
        wp = w[:, positives]
        running_pos = np.zeros((rows, positives.size + 1), dtype=dtype)
        np.cumsum(wp, axis=1, out=running_pos[:, 1:])
        neg_below = running[:, first] - running_pos[:, pos_before_first]
        neg_to_last = running[:, last] - running_pos[:, pos_before_last]
        below_or_half = (neg_below + neg_to_last).astype(np.float64) * 0.5  # below + half of the ties
        num = np.einsum("ij,ij->i", wp.astype(np.float64), below_or_half)
        total_pos = running_pos[:, -1].astype(np.float64)
        total_neg = running[:, -1].astype(np.float64) - total_pos
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / (total_pos * total_neg)

    return kernel


def log_loss_kernel(labels: np.ndarray, probabilities: np.ndarray) -> Kernel:
    """Mean binary cross-entropy (natural log) of ``probabilities`` against ``labels``."""
    p = np.clip(probabilities, EPSILON, 1 - EPSILON)
    # float32 so a block of float32 weights multiplies without a float64 copy (sums stay within 1e-6).
    loss = -np.where(labels, np.log(p), np.log1p(-p)).astype(np.float32)

    def kernel(weights: np.ndarray) -> np.ndarray:
        total = weights.sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return (weights @ loss).astype(np.float64) / total

    return kernel


def ece_kernel(labels: np.ndarray, probabilities: np.ndarray, bins: int = ECE_BINS) -> Kernel:
    """Expected calibration error over ``bins`` equal-width bins of [0, 1] (the last bin includes 1).

    ECE = sum over bins of |clicks - predicted clicks| / impressions, i.e. the bins' gaps between observed
    and predicted rate weighted by their share of impressions.
    """
    if bins < 1:
        raise ValueError(f"bins={bins}: give at least one bin (10 is usual)")
    which = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    gap = np.zeros((probabilities.size, bins), dtype=np.float32)
    gap[np.arange(probabilities.size), which] = labels - probabilities

    def kernel(weights: np.ndarray) -> np.ndarray:
        total = weights.sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.abs(weights @ gap).sum(axis=1, dtype=np.float64) / total

    return kernel


KERNELS: dict[str, Callable[[np.ndarray, np.ndarray], Kernel]] = {
    "auc": auc_kernel,
    "log_loss": log_loss_kernel,
    "ece": ece_kernel,
}


def _evaluate(
    make: Callable[[np.ndarray, np.ndarray], Kernel], labels, scores, weights
) -> float | np.ndarray:
    y, p = check_inputs(labels, scores, probabilities=make is not auc_kernel)
    w, flat = _as_2d(weights, y.size)
    values = make(y, p)(w)
    return float(values[0]) if flat else values


def auc(labels, scores, weights=None) -> float | np.ndarray:
    """Area under the ROC curve; NaN when only one class is present. 2-D ``weights``: one AUC per row."""
    return _evaluate(auc_kernel, labels, scores, weights)


def log_loss(labels, probabilities, weights=None) -> float | np.ndarray:
    """Mean binary cross-entropy in nats (lower is better)."""
    return _evaluate(log_loss_kernel, labels, probabilities, weights)


def expected_calibration_error(
    labels, probabilities, weights=None, bins: int = ECE_BINS
) -> float | np.ndarray:
    """Expected calibration error over ``bins`` equal-width probability bins (lower is better)."""
    return _evaluate(lambda y, p: ece_kernel(y, p, bins), labels, probabilities, weights)
