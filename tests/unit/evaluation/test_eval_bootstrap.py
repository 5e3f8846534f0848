"""The paired bootstrap: its interval of a difference covers the true difference, identical models differ
by exactly nothing, and a seed reproduces every interval."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flywheel.evaluation.bootstrap import compare_models


def _world(rng: np.random.Generator, n: int, lift_a: float, lift_b: float) -> tuple[np.ndarray, ...]:
    """Scores = lift * label + correlated normal noise: each model's AUC is Phi(lift / sqrt(2)) exactly."""
    y = (rng.random(n) < 0.3).astype(int)
    shared = rng.normal(size=n)
    a = lift_a * y + 0.8 * shared + 0.6 * rng.normal(size=n)
    b = lift_b * y + 0.8 * shared + 0.6 * rng.normal(size=n)
    squash = lambda s: 1 / (1 + np.exp(-s))  # noqa: E731 -- monotone, keeps AUC, gives probabilities
    return y, squash(a), squash(b)


def test_the_difference_interval_covers_the_true_difference() -> None:
    # Phi(d / sqrt(2)) for unit-variance noise; the true AUC difference of the two scorers.
    phi = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    truth = phi(1.0 / math.sqrt(2)) - phi(0.8 / math.sqrt(2))
    rng = np.random.default_rng(2024)
    covered = 0
    for trial in range(100):
        y, a, b = _world(rng, 400, 1.0, 0.8)
        (auc,) = compare_models(y, a, b, resamples=300, seed=trial, metrics=("auc",))
        covered += auc.difference.lower <= truth <= auc.difference.upper
    # A 95% interval should cover ~95 of 100. The bound is loose because 100 trials alone vary by about
    # 2 points (binomial), the percentile bootstrap under-covers a little at n = 400, and 300 resamples
    # put its 2.5% tail on ~8 draws; 85 still fails an interval that is badly too narrow or biased.
    assert covered >= 85, f"covered the true difference in {covered} of 100 trials"


def test_identical_models_differ_by_nothing() -> None:
    y, a, _ = _world(np.random.default_rng(1), 2000, 1.0, 1.0)
    for c in compare_models(y, a, a.copy(), resamples=200, seed=0):
        assert c.difference.lower <= 0.0 <= c.difference.upper, c
        assert c.difference.value == 0.0


def test_the_same_seed_gives_the_same_intervals_and_another_seed_others() -> None:
    y, a, b = _world(np.random.default_rng(5), 3000, 1.0, 0.9)
    slices = {"segment": np.where(np.arange(3000) % 3 == 0, "new", "returning")}
    first = compare_models(y, a, b, slices=slices, resamples=200, seed=11)
    assert first == compare_models(y, a, b, slices=slices, resamples=200, seed=11)
    assert first != compare_models(y, a, b, slices=slices, resamples=200, seed=12)


def test_slices_are_paired_sub_views_and_small_ones_get_no_interval() -> None:
    y, a, b = _world(np.random.default_rng(6), 3000, 1.0, 0.9)
    slices = {"segment": np.where(np.arange(3000) < 100, "tiny", "big")}
    found = {(c.metric, c.slice): c for c in compare_models(y, a, b, slices=slices, min_slice_rows=500)}
    assert found["auc", "segment=big"].rows == 2900
    tiny = found["auc", "segment=tiny"]
    assert tiny.rows == 100 and math.isnan(tiny.difference.lower) and tiny.draws is None
    assert set(found) == {
        (m, s) for m in ("auc", "log_loss", "ece") for s in ("all", "segment=big", "segment=tiny")
    }


def test_a_slice_column_of_the_wrong_length_is_refused() -> None:
    y, a, b = _world(np.random.default_rng(7), 100, 1.0, 0.9)
    with pytest.raises(ValueError, match="slice column 'segment' has shape"):
        compare_models(y, a, b, slices={"segment": ["new"] * 99})
