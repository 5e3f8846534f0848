"""The offline metrics equal plain reference computations: an O(n^2) pair count for AUC, a loop for log
loss and calibration error, and weights that behave as repeated rows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flywheel.evaluation.metrics import auc, expected_calibration_error, log_loss


def pair_count_auc(y: np.ndarray, s: np.ndarray) -> float:
    pos, neg = s[y == 1], s[y == 0]
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def loop_log_loss(y: np.ndarray, p: np.ndarray) -> float:
    return -sum(math.log(q) if t else math.log(1 - q) for t, q in zip(y, p, strict=True)) / len(y)


def loop_ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    total = 0.0
    for b in range(bins):
        inside = [(t, q) for t, q in zip(y, p, strict=True) if min(int(q * bins), bins - 1) == b]
        if inside:
            gap = abs(sum(t for t, _ in inside) - sum(q for _, q in inside))
            total += gap / len(y)
    return total


@pytest.mark.parametrize("trial", range(20))
def test_metrics_equal_reference_computations(trial: int) -> None:
    rng = np.random.default_rng(trial)
    n = int(rng.integers(5, 60))
    y = (rng.random(n) < 0.3).astype(int)
    y[:2] = [0, 1]  # both classes
    # Every other trial rounds the scores so that ties occur and count one half.
    p = rng.random(n) if trial % 2 else np.round(rng.random(n), 1).clip(0.01, 0.99)
    assert auc(y, p) == pytest.approx(pair_count_auc(y, p), abs=1e-12)
    assert log_loss(y, p) == pytest.approx(loop_log_loss(y, p), rel=1e-6)
    assert expected_calibration_error(y, p) == pytest.approx(loop_ece(y, p), abs=1e-6)


def test_integer_weights_are_repeated_rows() -> None:
    rng = np.random.default_rng(3)
    y = (rng.random(40) < 0.4).astype(int)
    p = np.round(rng.random(40), 2).clip(0.01, 0.99)
    w = rng.poisson(1.0, size=(5, 40)).astype(np.float32)
    for row, weights in enumerate(w):
        keep = np.repeat(np.arange(40), weights.astype(int))
        assert auc(y, p, w)[row] == pytest.approx(pair_count_auc(y[keep], p[keep]), abs=1e-9)
        assert log_loss(y, p, w)[row] == pytest.approx(loop_log_loss(y[keep], p[keep]), rel=1e-5)
        assert expected_calibration_error(y, p, w)[row] == pytest.approx(loop_ece(y[keep], p[keep]), abs=1e-5)


def test_auc_without_both_classes_is_nan() -> None:
    assert math.isnan(auc([1, 1, 1], [0.2, 0.5, 0.9]))


@pytest.mark.parametrize(
    ("labels", "scores", "message"),
    [
        ([0, 1, 2], [0.1, 0.2, 0.3], "0/1"),
        ([0, 1], [0.1, 0.2, 0.3], "one label and one score"),
        ([0, 1], [0.1, math.nan], "NaN"),
        ([0, 1], [0.1, 1.7], "probabilities in \\[0, 1\\]"),
    ],
)
def test_bad_inputs_say_what_is_wrong(labels, scores, message) -> None:
    with pytest.raises(ValueError, match=message):
        log_loss(labels, scores)
