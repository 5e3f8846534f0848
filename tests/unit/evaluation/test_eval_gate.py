"""The gate: a clearly worse candidate fails, a clearly better one passes, one bad slice blocks promotion,
tiny slices are reported not gated, Holm matches a hand computation, and a seed fixes the decision."""

from __future__ import annotations

import numpy as np
import pytest

from flywheel.config import EvaluationSettings
from flywheel.evaluation.bootstrap import Comparison, Estimate, compare_models
from flywheel.evaluation.gate import decide, holm, non_inferiority_p_value
from flywheel.registry.evaluations import _check_row

SETTINGS = EvaluationSettings(resamples=400, min_slice_rows=1000)
N = 20_000


def _world(seed: int = 0) -> dict[str, np.ndarray]:
    """Clicks from a true logit; models see it through more or less noise. Half the users are 'new'."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-1.5, 1.2, N)
    y = (rng.random(N) < 1 / (1 + np.exp(-logit))).astype(int)
    noisy = lambda sd: 1 / (1 + np.exp(-(logit + sd * rng.normal(size=N))))  # noqa: E731
    segment = np.where(np.arange(N) % 2 == 0, "new", "returning")
    tiny = np.where(np.arange(N) < 200, "rare", "common")
    return {
        "y": y,
        "good": noisy(0.3),
        "fair": noisy(0.8),
        "poor": noisy(2.5),
        "fair_too": noisy(0.8),  # as good as "fair", its own noise
        "segment": segment,
        "tiny": tiny,
    }


def _decide(candidate: np.ndarray, champion: np.ndarray | None, world: dict, seed: int = 0):
    slices = {"segment": world["segment"], "tiny": world["tiny"]}
    comparisons = compare_models(
        world["y"], candidate, champion, slices=slices, min_slice_rows=1000, resamples=400, seed=seed
    )
    return decide(comparisons, SETTINGS)


def test_a_clearly_better_candidate_passes_and_a_clearly_worse_one_fails_on_auc() -> None:
    w = _world()
    better = _decide(w["good"], w["fair"], w)
    assert better.passed, better.table()
    worse = _decide(w["poor"], w["fair"], w)
    assert not worse.passed
    auc = next(c for c in worse.checks if c.name == "auc" and c.slice == "all")
    assert auc.passed is False and auc.lower <= -SETTINGS.auc_margin
    assert "lower bound" in auc.reason and "auc" in worse.table()


def test_lower_is_better_metrics_are_judged_on_the_upper_bound() -> None:
    w = _world()
    worse = _decide(w["poor"], w["fair"], w)
    loss = next(c for c in worse.checks if c.name == "log_loss" and c.slice == "all")
    assert loss.difference > 0 and loss.upper >= SETTINGS.log_loss_margin and loss.passed is False
    assert "lower is better" in loss.reason


def test_better_overall_but_much_worse_on_one_slice_is_rejected_on_that_slice() -> None:
    w = _world()
    candidate = w["good"].copy()
    new = w["segment"] == "new"
    candidate[new] = np.random.default_rng(9).permutation(candidate[new])  # useless for new users
    decision = _decide(candidate, w["poor"], w)
    assert not decision.passed
    failed = {(c.name, c.slice) for c in decision.failed}
    assert ("auc", "segment=new") in failed
    assert ("auc", "all") not in failed and ("auc", "segment=returning") not in failed
    reason = next(c.reason for c in decision.failed if c.slice == "segment=new")
    assert reason.startswith("regressed beyond -0.01: Holm-adjusted p") and "over 3 slice(s)" in reason


def test_a_slice_too_noisy_to_prove_anything_does_not_block_a_similar_candidate() -> None:
    # 1,500 rows: the slice's interval is wider than its margin both ways, so it can neither show the
    # candidate no worse nor show it worse. Only a shown regression blocks.
    w = _world()
    few = np.where(np.arange(N) < 1500, "few", "many")
    comparisons = compare_models(
        w["y"], w["fair_too"], w["fair"], slices={"group": few}, min_slice_rows=1000, resamples=400, seed=0
    )
    auc = next(c for c in comparisons if c.metric == "auc" and c.slice == "group=few")
    assert auc.difference.lower < -SETTINGS.auc_margin < auc.difference.upper  # unproven either way
    decision = decide(comparisons, SETTINGS)
    checked = next(c for c in decision.checks if c.name == "auc" and c.slice == "group=few")
    assert checked.passed is True and checked.reason.startswith("no regression beyond -0.01 shown")


def test_a_tiny_slice_is_reported_too_small_and_not_gated() -> None:
    w = _world()
    y, rare = w["y"].copy(), w["tiny"] == "rare"
    candidate = w["good"].copy()
    candidate[rare] = 1 - candidate[rare]  # terrible on 200 rows: would fail if it were gated
    decision = _decide(candidate, w["fair"], {**w, "y": y})
    tiny = [c for c in decision.checks if c.slice == "tiny=rare"]
    assert tiny and all(c.status == "too small" and c.passed is None for c in tiny)
    assert "FLYWHEEL_EVAL_MIN_SLICE_ROWS=1000" in tiny[0].reason
    assert decision.passed, decision.table()


def test_holm_adjusted_p_values_match_a_hand_computation() -> None:
    # Sorted: 0.005 x 4 = 0.02; 0.01 x 3 = 0.03; 0.03 x 2 = 0.06; 0.04 x 1 = 0.04, raised to 0.06 (monotone).
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])


def test_the_p_value_counts_draws_beyond_the_margin_on_the_losing_side() -> None:
    draws = np.array([-0.03, -0.02, -0.01, 0.0, 0.01, 0.02, 0.03, 0.04, 0.05])
    assert non_inferiority_p_value(draws, 0.015, higher_is_better=True) == pytest.approx(3 / 10)
    assert non_inferiority_p_value(draws, 0.035, higher_is_better=False) == pytest.approx(3 / 10)


def test_too_few_resamples_for_holm_say_so() -> None:
    draws = np.full(100, -0.05)  # every slice clearly worse
    slices = [
        Comparison("auc", f"c={i}", 5000, Estimate(0.75), Estimate(0.8), Estimate(-0.05, -0.05, -0.05), draws)
        for i in range(4)
    ]
    decision = decide(slices, EvaluationSettings())  # 4 slices x 1/101 >= 0.025: none can show it
    assert not decision.passed
    assert "raise FLYWHEEL_EVAL_RESAMPLES to 160+" in decision.failed[0].reason
    # Slices that show no regression even before the correction pass: too few resamples cannot confirm a
    # regression, and there is none to confirm.
    fine = [
        Comparison("auc", f"c={i}", 5000, Estimate(0.85), Estimate(0.8), Estimate(0.05, 0.04, 0.06), -draws)
        for i in range(4)
    ]
    assert decide(fine, EvaluationSettings()).passed


def test_the_same_seed_gives_the_same_decision() -> None:
    w = _world(3)
    first = _decide(w["good"], w["fair"], w, seed=7)
    assert first == _decide(w["good"], w["fair"], w, seed=7)
    assert first.table() == _decide(w["good"], w["fair"], w, seed=7).table()


def test_the_first_model_is_judged_on_absolute_thresholds() -> None:
    w = _world()
    assert _decide(w["good"], None, w).passed
    useless = _decide(np.random.default_rng(1).random(N), None, w)
    assert not useless.passed
    assert {c.name for c in useless.failed} >= {"auc"}
    assert all(c.slice == "all" for c in useless.checks if c.passed is not None)


def test_rows_are_what_record_evaluation_accepts() -> None:
    w = _world()
    decision = _decide(w["poor"], w["fair"], w)
    rows = decision.as_rows()
    checked = [_check_row(i, row) for i, row in enumerate(rows)]  # raises on a malformed row
    keys = [(r["metric"], r["slice"]) for r in checked]
    assert len(keys) == len(set(keys))
    auc = next(r for r in rows if r["metric"] == "auc_difference" and r["slice"] == "all")
    assert auc["passed"] is False and auc["detail"]["margin"] == SETTINGS.auc_margin
    assert next(r for r in rows if r["metric"] == "auc" and r["slice"] == "all")["passed"] is None


def test_a_failed_check_says_whether_it_is_worse_or_only_unproven() -> None:
    worse = Comparison(
        "auc", "all", 5000, Estimate(0.70), Estimate(0.75), Estimate(-0.05, -0.07, -0.03), np.full(100, -0.05)
    )
    unproven = Comparison(
        "ctr@5", "all", 800, Estimate(0.11), Estimate(0.11), Estimate(0.0, -0.02, 0.02), np.zeros(100)
    )
    checks = {c.name: c for c in decide([worse, unproven], EvaluationSettings()).checks}
    assert checks["auc"].reason.endswith("worse beyond the margin over the whole interval")
    assert "inconclusive on 800 requests" in checks["ctr@5"].reason
    assert "FLYWHEEL_EVAL_HELD_OUT_HOURS" in checks["ctr@5"].reason
