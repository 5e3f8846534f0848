"""The PSI semantics in plain NumPy: the statement that the SQL templates and the CLI are tested against.

Slow on purpose (it needs every row in memory); production computes the same numbers in the warehouse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Numeric features get this many bins unless told otherwise.
DEFAULT_BINS = 10
#: Categorical features keep a bin for each of this many most frequent reference categories.
TOP_CATEGORIES = 50
#: A share below this counts as this, so an empty bin gives a finite PSI.
SHARE_FLOOR = 1e-4


@dataclass(frozen=True)
class ReferenceResult:
    """PSI of one feature, and the shares behind it in bin order (numbered as the SQL numbers them)."""

    psi: float | None
    bins: list[int]
    reference_shares: np.ndarray
    current_shares: np.ndarray


def as_float(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as float64 with NULL (None) as NaN."""
    if isinstance(values, np.ndarray) and values.dtype != object:
        return values.astype(float)
    return np.array([np.nan if v is None else v for v in values], dtype=float)


def as_category(values: Sequence[Any] | np.ndarray) -> np.ndarray:
    """Values as an object array of ``str`` (how SQL casts them to varchar) with NULL kept as ``None``."""
    array = np.asarray(values, dtype=object)
    nulls = np.equal(array, None)
    out = np.empty(array.shape, dtype=object)
    out[nulls] = None
    out[~nulls] = array[~nulls].astype(str)
    return out


def numeric_edges(reference: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """The reference's quantiles at 1/B .. (B-1)/B (linear interpolation), duplicates removed, sorted."""
    values = reference[~np.isnan(reference)]
    if values.size == 0:
        return np.empty(0)
    return np.unique(np.quantile(values, np.arange(1, bins) / bins))


def numeric_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Shares of all rows in bins 0..len(edges) (bin = number of edges <= value), then the NULL share."""
    nulls = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~nulls], side="right"), minlength=edges.size + 1)
    return np.append(counts, nulls.sum()) / values.size


def top_categories(reference: np.ndarray, top: int = TOP_CATEGORIES) -> np.ndarray:
    """The ``top`` most frequent non-NULL reference categories; ties go to the smaller value."""
    present = reference[~np.equal(reference, None)].astype(str)
    if present.size == 0:
        return np.empty(0, dtype=str)
    categories, counts = np.unique(present, return_counts=True)
    order = np.lexsort((categories, -counts))  # by count descending, then by value
    return categories[order][:top]


def categorical_shares(values: np.ndarray, categories: np.ndarray) -> np.ndarray:
    """Shares of all rows per category (in the given order), then 'other', then NULL."""
    nulls = np.equal(values, None)
    present = values[~nulls].astype(str)
    counts = np.zeros(categories.size + 1, dtype=np.int64)
    if categories.size and present.size:
        order = np.argsort(categories)
        position = np.searchsorted(categories[order], present).clip(max=categories.size - 1)
        known = categories[order][position] == present
        counts[: categories.size] = np.bincount(order[position[known]], minlength=categories.size)
        counts[-1] = (~known).sum()
    else:
        counts[-1] = present.size
    return np.append(counts, nulls.sum()) / values.size


def psi(reference_shares: np.ndarray, current_shares: np.ndarray, floor: float = SHARE_FLOOR) -> float:
    """Sum over bins of (q - p) * ln(q / p), p and q the reference and current shares floored at ``floor``."""
    p = np.maximum(reference_shares, floor)
    q = np.maximum(current_shares, floor)
    return float(np.sum((q - p) * np.log(q / p)))


def feature_psi(
    reference: Sequence[Any] | np.ndarray,
    current: Sequence[Any] | np.ndarray,
    kind: str = "numeric",
    bins: int = DEFAULT_BINS,
    top: int = TOP_CATEGORIES,
    floor: float = SHARE_FLOOR,
) -> ReferenceResult:
    """PSI of one feature from all its reference and current values (``None``/NaN are NULL)."""
    if kind == "numeric":
        ref, cur = as_float(reference), as_float(current)
        edges = numeric_edges(ref, bins)
        p = numeric_shares(ref, edges)
        q = numeric_shares(cur, edges) if cur.size else np.full(p.size, np.nan)
        labels = [*range(edges.size + 1), -1]
    elif kind == "categorical":
        ref_c, cur_c = as_category(reference), as_category(current)
        categories = top_categories(ref_c, top)
        p = categorical_shares(ref_c, categories)
        q = categorical_shares(cur_c, categories) if cur_c.size else np.full(p.size, np.nan)
        labels = [*range(categories.size + 1), -1]
    else:
        raise ValueError(f"kind must be 'numeric' or 'categorical', not {kind!r}")
    value = psi(p, q, floor) if len(current) else None
    return ReferenceResult(psi=value, bins=labels, reference_shares=p, current_shares=q)


def auc(scores: Sequence[float] | np.ndarray, clicked: Sequence[int] | np.ndarray) -> float | None:
    """ROC AUC as the Mann-Whitney statistic, tied scores sharing their average rank (None if one class)."""
    scores, clicked = np.asarray(scores, dtype=float), np.asarray(clicked, dtype=bool)
    positives, negatives = int(clicked.sum()), int((~clicked).sum())
    if not positives or not negatives:
        return None
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)  # 1-based rank of the last score in each group of ties
    ranks = (ends - (counts - 1) / 2)[inverse]
    return float((ranks[clicked].sum() - positives * (positives + 1) / 2) / (positives * negatives))
