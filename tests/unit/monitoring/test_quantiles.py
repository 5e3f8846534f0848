"""Two order statistics per edge give NumPy's linear quantiles to the last bit."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.monitoring.quantiles import (
    edges_from_order_statistics,
    order_positions,
    quantile_steps,
    rank_fractions,
)


def edges(values: np.ndarray, bins: int) -> list[float]:
    """What the warehouse path computes: only the sorted values at the positions the steps read."""
    steps = quantile_steps(values.size, bins)
    ordered = np.sort(values)
    positions = order_positions(steps)
    return edges_from_order_statistics(steps, {p: float(ordered[p]) for p in positions})


@pytest.mark.parametrize("bins", [2, 3, 7, 10, 25, 200])
def test_edges_equal_numpys_quantiles_bit_for_bit(bins: int) -> None:
    rng = np.random.default_rng(bins)
    sizes = [1, 2, 3, 5, 9, 10, 11, 99, 101, 1000, 4097, int(rng.integers(10_000, 200_000))]
    for n in sizes:
        for values in (
            rng.normal(size=n) * 10.0 ** int(rng.integers(-4, 5)),
            np.round(rng.lognormal(3, 1, n), 2),
            rng.integers(0, 5, n).astype(float),  # ties: several quantiles coincide
        ):
            expected = np.unique(np.quantile(values, np.arange(1, bins) / bins)).tolist()
            assert edges(values, bins) == expected, (n, bins)


def test_positions_and_weights_follow_numpy() -> None:
    # n = 11, q = 0.25: h = 2.5, between positions 2 and 3 at t = 0.5; q = 0.75: h = 7.5.
    (q1, q2, q3) = quantile_steps(11, 4)
    assert (q1.lower, q1.upper, q1.t) == (2, 3, 0.5)
    assert (q2.lower, q2.upper, q2.t) == (5, 6, 0.0)
    assert (q3.lower, q3.upper, q3.t) == (7, 8, 0.5)
    # One value: every quantile is it.
    assert {(s.lower, s.upper) for s in quantile_steps(1, 10)} == {(0, 0)}
    assert order_positions(quantile_steps(11, 4)) == [2, 3, 5, 6, 7, 8]


def test_rank_fractions_name_each_position_exactly() -> None:
    # percentile_disc(f) is the value at ceil(f * n) - 1 (0-based) on DuckDB and PostgreSQL.
    for n in (1, 2, 7, 1_000_003, 2**40 + 1):
        positions = sorted({0, n // 3, n // 2, n - 1})
        for position, fraction in zip(positions, rank_fractions(positions, n), strict=True):
            assert int(np.ceil(fraction * n)) - 1 == position


def test_no_values_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one value"):
        quantile_steps(0, 10)
