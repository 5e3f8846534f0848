"""The NumPy reference itself, against PSI values worked out by hand: everything else is tested against it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from flywheel.monitoring import reference as ref


def test_numeric_bins_by_hand() -> None:
    # Reference 1..10 with 2 bins: the median 5.5 is the one edge. Current: 3 values below, 1 above, 1 NULL.
    result = ref.feature_psi([float(v) for v in range(1, 11)], [1.0, 2.0, 3.0, 8.0, None], "numeric", bins=2)
    p = [0.5, 0.5, 1e-4]  # the NULL share 0 is floored
    q = [0.6, 0.2, 0.2]
    assert result.bins == [0, 1, -1]
    np.testing.assert_allclose(result.reference_shares, [0.5, 0.5, 0.0])
    np.testing.assert_allclose(result.current_shares, q)
    assert result.psi == pytest.approx(sum((b - a) * math.log(b / a) for a, b in zip(p, q, strict=True)))


def test_value_on_an_edge_goes_up() -> None:
    edges = ref.numeric_edges(np.array([0.0, 10.0]), bins=2)  # 5.0
    assert edges.tolist() == [5.0]
    assert ref.numeric_shares(np.array([5.0, 4.999]), edges).tolist() == [0.5, 0.5, 0.0]


def test_quantiles_interpolate_linearly_and_duplicates_go() -> None:
    edges = ref.numeric_edges(np.array([1.0, 1.0, 1.0, 1.0, 2.0]), bins=4)
    assert edges.tolist() == [1.0]  # quantiles 0.25, 0.5, 0.75 are all 1.0
    assert ref.numeric_edges(np.array([0.0, 1.0]), bins=4).tolist() == [0.25, 0.5, 0.75]


def test_categories_top_by_count_then_value_and_other() -> None:
    values = ref.as_category(["b", "a", "c", "c", None, "d"])
    assert ref.top_categories(values, top=2).tolist() == ["c", "a"]  # c twice; a before b and d
    shares = ref.categorical_shares(ref.as_category(["c", "a", "z", None]), np.array(["c", "a"]))
    assert shares.tolist() == [0.25, 0.25, 0.25, 0.25]  # c, a, other (z), NULL


def test_integers_as_categories_compare_as_text() -> None:
    result = ref.feature_psi([1, 2, 2], ["1", "2", "2"], "categorical")
    assert result.psi == pytest.approx(0.0)


def test_identical_samples_have_zero_psi_and_empty_current_has_none() -> None:
    values = np.random.default_rng(0).normal(size=100)
    assert ref.feature_psi(values, values).psi == pytest.approx(0.0)
    assert ref.feature_psi(values, []).psi is None


def test_auc_with_ties_takes_average_ranks() -> None:
    assert ref.auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)
    assert ref.auc([0.5, 0.5, 0.5, 0.5], [0, 1, 0, 1]) == pytest.approx(0.5)
    assert ref.auc([0.2, 0.2, 0.9], [0, 1, 1]) == pytest.approx(0.75)  # one tie counts half
    assert ref.auc([0.3, 0.6], [1, 1]) is None
