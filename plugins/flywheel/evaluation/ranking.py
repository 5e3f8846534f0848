"""Replay of logged requests: each request's shown items re-ranked by each model, CTR@k and GMV@k from the
logged clicks and orders, with paired bootstrap intervals that resample whole requests."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from flywheel.evaluation.bootstrap import ALL, Comparison, compare_draws, poisson_weights

#: The cut-offs the gate reports.
KS = (1, 3, 5)


def _rank_within_requests(codes: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """Each row's 0-based rank in its request by descending score; ties keep the logged order."""
    order = np.lexsort((-scores, codes))  # by request, then score descending; lexsort is stable
    sorted_codes = codes[order]
    first = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    start_of_row = np.repeat(first, np.diff(np.r_[first, codes.size]))
    ranks = np.empty(codes.size, dtype=np.int64)
    ranks[order] = np.arange(codes.size) - start_of_row
    return ranks


def per_request(
    codes: np.ndarray,
    requests: int,
    scores: np.ndarray,
    clicked: np.ndarray,
    order_value: np.ndarray,
    ks: Sequence[int] = KS,
) -> dict[str, np.ndarray]:
    """Per request: ``clicks@k`` and ``gmv@k`` in the model's top k, and ``slots@k`` = min(k, items shown)."""
    ranks = _rank_within_requests(codes, scores)
    shown = np.bincount(codes, minlength=requests)
    out: dict[str, np.ndarray] = {}
    for k in ks:
        top = ranks < k
        out[f"clicks@{k}"] = np.bincount(codes, weights=clicked * top, minlength=requests)
        out[f"gmv@{k}"] = np.bincount(codes, weights=order_value * top, minlength=requests)
        out[f"slots@{k}"] = np.minimum(shown, k).astype(np.float64)
    return out


def _check(request_ids, clicked, order_value, scores: Sequence[object]) -> tuple[np.ndarray, ...]:
    ids = np.asarray(request_ids)
    n = ids.shape[0] if ids.ndim == 1 else -1
    arrays = [np.asarray(a, dtype=np.float64) for a in (clicked, order_value, *scores)]
    names = ["clicked", "order_value", "candidate scores", "champion scores"]
    for name, array in zip(names, arrays, strict=False):
        if array.shape != (n,):
            raise ValueError(
                f"{name} has shape {array.shape}: give one value per shown item ({n} request rows)"
            )
        if not np.isfinite(array).all():
            raise ValueError(f"{name} holds NaN or infinite values: fill every shown item (0 for no order)")
    if not n:
        raise ValueError("no requests to replay: the held-out window has no logged impressions")
    _, codes = np.unique(ids, return_inverse=True)
    return (codes.ravel(), *arrays)


def replay(
    request_ids: object,
    clicked: object,
    order_value: object,
    candidate: object,
    champion: object | None = None,
    *,
    ks: Sequence[int] = KS,
    resamples: int = 1000,
    seed: int = 0,
) -> list[Comparison]:
    """``ctr@k`` and ``gmv@k`` of the candidate's (and champion's) ranking of each logged request.

    One row per shown item: its request id, the logged click (0/1) and order value (0 without an order),
    and each model's score. CTR@k = clicks in the top k / slots in the top k, where a request's slots are
    min(k, items shown) (precision at k; a request showing fewer than k items is not penalised for the
    items it never had). GMV@k = order value in the top k per request. Only logged outcomes count: an item
    that was shown keeps its click wherever a model ranks it (the replay's assumption).
    Resampling draws whole requests (Poisson weights per request), the same draws for both models.
    """
    if any(k < 1 for k in ks):
        raise ValueError(f"ks={tuple(ks)}: cut-offs are positive numbers of items, e.g. (1, 3, 5)")
    models = [candidate] + ([champion] if champion is not None else [])
    codes, clicks, value, *scores = _check(request_ids, clicked, order_value, models)
    requests = int(codes.max()) + 1
    tables = [per_request(codes, requests, s, clicks, value, ks) for s in scores]
    names = [f"{kind}@{k}" for k in ks for kind in ("ctr", "gmv")]

    def metric(table: dict[str, np.ndarray], name: str, weights: np.ndarray) -> np.ndarray:
        kind, k = name.split("@")
        num = weights @ table[f"{'clicks' if kind == 'ctr' else 'gmv'}@{k}"]
        den = weights @ table[f"slots@{k}"] if kind == "ctr" else weights.sum(axis=1, dtype=np.float64)
        with np.errstate(invalid="ignore", divide="ignore"):
            return num / den

    draws = {name: [np.empty(resamples) for _ in tables] for name in names}
    done = 0
    for block in poisson_weights(np.random.default_rng(seed), requests, resamples):
        block = block.astype(np.float64)
        for name in names:
            for model, table in enumerate(tables):
                draws[name][model][done : done + len(block)] = metric(table, name, block)
        done += len(block)
    ones = np.ones((1, requests))
    return [
        compare_draws(name, ALL, requests, [float(metric(t, name, ones)[0]) for t in tables], draws[name])
        for name in names
    ]
