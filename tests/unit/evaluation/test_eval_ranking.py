"""Ranking replay re-ranks each logged request's shown items by each model: CTR@k and GMV@k on a
hand-made example, and intervals that resample whole requests."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.evaluation.ranking import replay

# Three requests (rows shuffled on purpose): request, candidate score, champion score, clicked, order value.
ROWS = [
    ("r2", 0.3, 0.6, 0, 0.0),  # c
    ("r1", 0.9, 0.1, 1, 10.0),  # a: the candidate's top of r1
    ("r3", 0.5, 0.5, 0, 0.0),  # f: alone in r3
    ("r2", 0.7, 0.4, 1, 5.0),  # d: the candidate's top of r2
    ("r1", 0.2, 0.8, 0, 0.0),  # b: the champion's top of r1
    ("r2", 0.1, 0.9, 1, 20.0),  # e: the champion's top of r2
]


def _replay(**kwargs):
    ids, cand, champ, clicked, value = (np.array(col) for col in zip(*ROWS, strict=True))
    found = replay(ids, clicked, value, cand, champ, resamples=200, seed=0, **kwargs)
    return {c.metric: c for c in found}


def test_ctr_and_gmv_at_1_match_the_hand_computation() -> None:
    by = _replay()
    # Candidate tops: a (click, 10), d (click, 5), f (none): CTR@1 = 2/3, GMV@1 = 15/3.
    assert by["ctr@1"].candidate.value == pytest.approx(2 / 3)
    assert by["gmv@1"].candidate.value == pytest.approx(5.0)
    # Champion tops: b (none), e (click, 20), f (none): CTR@1 = 1/3, GMV@1 = 20/3.
    assert by["ctr@1"].champion.value == pytest.approx(1 / 3)
    assert by["gmv@1"].champion.value == pytest.approx(20 / 3)
    assert by["ctr@1"].difference.value == pytest.approx(1 / 3)
    # At k = 3 every shown item is in the top k: slots = 2 + 3 + 1, both models see all 3 clicks.
    assert by["ctr@3"].candidate.value == by["ctr@3"].champion.value == pytest.approx(3 / 6)
    assert by["gmv@3"].difference.value == pytest.approx(0.0)
    assert by["ctr@1"].rows == 3


def test_intervals_resample_requests_and_are_reproducible() -> None:
    rng = np.random.default_rng(0)
    requests = np.repeat(np.arange(400), 5)
    relevance = rng.random(requests.size)
    clicked = (rng.random(requests.size) < relevance * 0.4).astype(int)
    value = clicked * rng.uniform(5, 50, requests.size)
    good, noisy = relevance + 0.1 * rng.normal(size=requests.size), rng.random(requests.size)
    first = replay(requests, clicked, value, good, noisy, resamples=300, seed=4)
    again = replay(requests, clicked, value, good, noisy, resamples=300, seed=4)
    assert first == again
    ctr1 = next(c for c in first if c.metric == "ctr@1")
    assert ctr1.rows == 400 and ctr1.difference.lower > 0  # ranking by relevance clearly wins
    assert ctr1.difference.lower <= ctr1.difference.value <= ctr1.difference.upper


def test_mismatched_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="order_value has shape"):
        replay(["a", "b"], [0, 1], [0.0], [0.1, 0.2])
