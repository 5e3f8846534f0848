"""NumPy's default (linear) quantiles from exact order statistics: two sorted values per bin edge.

The warehouse finds the order statistics (reference_order_statistics.sql) without sorting whole columns;
the arithmetic here is NumPy's, operation for operation, so the edges are the very same doubles.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class QuantileStep:
    """Where a quantile of n sorted values lies: between ``lower`` and ``upper``, at weight ``t``."""

    lower: int
    upper: int
    t: float


def quantile_steps(n: int, bins: int) -> list[QuantileStep]:
    """The quantiles 1/B .. (B-1)/B of ``n`` values as NumPy's 'linear' method locates them.

    h = (n - 1) * q; the values at floor(h) and floor(h) + 1 (both the last one when h >= n - 1);
    t = h - floor(h). The same IEEE operations as NumPy, on the same doubles (q = k / B).
    """
    if n < 1:
        raise ValueError(f"quantiles need at least one value, got n={n}")
    steps = []
    for k in range(1, bins):
        h = (n - 1) * (k / bins)
        floor = math.floor(h)
        if h >= n - 1:
            steps.append(QuantileStep(n - 1, n - 1, h - floor))
        else:
            steps.append(QuantileStep(floor, floor + 1, h - floor))
    return steps


def order_positions(steps: Sequence[QuantileStep]) -> list[int]:
    """The distinct 0-based positions the steps read, ascending."""
    return sorted({p for step in steps for p in (step.lower, step.upper)})


def rank_fractions(positions: Sequence[int], n: int) -> list[float]:
    """For each position i, the fraction (i + 0.5) / n whose discrete percentile is exactly the i-th value
    (position ceil(f * n) - 1 on DuckDB and PostgreSQL; the half keeps it far from rounding boundaries)."""
    return [(i + 0.5) / n for i in positions]


def interpolate(a: float, b: float, t: float) -> float:
    """NumPy's ``_lerp``: a + (b - a) * t, or b - (b - a) * (1 - t) when t >= 0.5."""
    diff = b - a
    return b - diff * (1 - t) if t >= 0.5 else a + diff * t


def edges_from_order_statistics(steps: Sequence[QuantileStep], value_at: Mapping[int, float]) -> list[float]:
    """The quantiles from the sorted values at their positions, duplicates removed, ascending (as
    ``np.unique(np.quantile(values, q))``)."""
    quantiles = [interpolate(value_at[s.lower], value_at[s.upper], s.t) for s in steps]
    return sorted(set(quantiles))
