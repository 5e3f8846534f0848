"""Attribution: a model that reads one feature gives it all the attribution; on a model linear in its dense
inputs the Shapley values are the analytic w * (x - baseline) and sum to f(x) - f(baseline); two models
that read different features show a reported shift, one model twice shows none; the same seed gives the
same values; specs that differ and a first model are compared over what each has."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from flywheel.artifacts.spec import COUNTS, PRICES, RATES, encode, fit_spec
from flywheel.config import EvaluationSettings, get_settings
from flywheel.evaluation.attribution import (
    ModelAttribution,
    attribute,
    attribute_models,
    compare_attributions,
    feature_masks,
    reference_rows,
    sample_rows,
    shapley_values,
)
from flywheel.evaluation.gate import GateDecision

# The exported models are TorchScript, as training writes them (Triton's libtorch backend loads it).
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")


def _frame(n: int = 300, seed: int = 0) -> pd.DataFrame:
    """Rows with every column a feature spec reads, in plausible ranges."""
    rng = np.random.default_rng(seed)
    categories = np.array(["books", "garden", "music", "toys"])
    frame = {
        "user_id": rng.integers(0, 400, n),
        "item_id": rng.integers(0, 200, n),
        "category": categories[rng.integers(0, 4, n)],
        "user_top_category": categories[rng.integers(0, 4, n)],
        "item_category": categories[rng.integers(0, 4, n)],
        "position": rng.integers(1, 11, n),
        "user_hours_since_last_click": rng.uniform(0, 168, n),
        "label": rng.integers(0, 2, n),
    }
    frame |= {name: rng.poisson(20, n) for name in COUNTS}
    frame |= {name: rng.uniform(0, 0.2, n) for name in RATES}
    frame |= {name: rng.lognormal(3, 1, n) for name in PRICES}
    return pd.DataFrame(frame)


class _Dense(nn.Module):
    """``sigmoid(dense @ weights + bias)``: its logit is linear in the dense features, blind to sparse."""

    def __init__(self, weights: torch.Tensor, bias: float = -2.0) -> None:
        super().__init__()
        self.weights = weights
        self.bias = bias

    def forward(self, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(dense @ self.weights + self.bias).unsqueeze(1)


class _OneSparse(nn.Module):
    """A click probability looked up from one sparse column alone (a non-linear function of it)."""

    def __init__(self, column: int, levels: int) -> None:
        super().__init__()
        self.column = column
        self.logits = torch.linspace(-4.0, 1.0, levels) ** 2 / 4 - 3

    def forward(self, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits[sparse[:, self.column]]).unsqueeze(1)


def _only(spec, name: str, scale: float = 1.0):
    """A scripted model that reads the dense feature ``name`` only."""
    weights = torch.zeros(len(spec.dense_columns))
    weights[spec.dense_columns.index(name)] = scale
    return torch.jit.script(_Dense(weights))


def _dcn(spec, seed: int = 0):
    from flywheel.training.model import ClickScorer, build_model

    torch.manual_seed(seed)
    model = build_model(spec.cardinalities, len(spec.numeric), {"mlp_width": 16, "embedding_dim": 4})
    return torch.jit.script(ClickScorer(model).eval())


@pytest.fixture(scope="module")
def sample() -> pd.DataFrame:
    return _frame()


@pytest.fixture(scope="module")
def spec(sample: pd.DataFrame):
    return fit_spec(sample, id_buckets={"user_id": 128, "item_id": 64})


def test_a_model_that_reads_one_feature_gives_it_all_the_attribution(sample, spec) -> None:
    for name, model in (
        ("item_price", _only(spec, "item_price", 1.5)),
        ("item_category", torch.jit.script(_OneSparse(spec.sparse_columns.index("item_category"), 5))),
    ):
        result = attribute(model, spec, sample, "v1", seed=0)
        assert result.importance[name] > 0.1
        assert result.shares()[name] == pytest.approx(1.0, abs=1e-6), result.importance
        assert list(result.importance) == spec.input_columns  # one player per raw feature, spec order


def _logit(model, sparse: np.ndarray, dense: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        p = model(torch.as_tensor(sparse), torch.as_tensor(dense))[:, 0].double().numpy()
    return np.log(p) - np.log1p(-p)


def test_linear_model_gets_the_analytic_shapley_values_which_add_up_to_the_output(sample, spec) -> None:
    weights = torch.linspace(-0.6, 0.6, len(spec.dense_columns))
    model = torch.jit.script(_Dense(weights, bias=-1.0))
    sparse, dense = encode(sample, spec)
    players, *masks = feature_masks(spec)
    for baseline in (  # one reference row for all, or one per row (as attribute pairs them)
        (sparse[:1], np.median(dense, axis=0, keepdims=True)),
        (sparse[reference_rows(len(sample), 0)], dense[reference_rows(len(sample), 0)]),
    ):
        phi = shapley_values(model, sparse, dense, tuple(masks), baseline, seed=3, permutations=5)
        dense_players = [players.index(name) for name in spec.dense_columns]
        expected = (dense - baseline[1]) * weights.numpy()
        np.testing.assert_allclose(phi[:, dense_players], expected, atol=2e-4)
        # The null player gets nothing (up to float32 sums taken over batches of another size).
        sparse_players = [players.index(name) for name in spec.sparse_columns]
        assert np.abs(phi[:, sparse_players]).max() < 1e-6
        efficiency = _logit(model, sparse, dense) - _logit(model, *baseline)
        np.testing.assert_allclose(phi.sum(axis=1), efficiency, atol=2e-4)


def test_on_a_dcn_the_attributions_of_each_row_add_up_to_its_logit_minus_its_references(sample, spec) -> None:
    model = _dcn(spec)
    sparse, dense = encode(sample, spec)
    reference = reference_rows(len(sample), 0)
    assert sorted(reference) == list(range(len(sample))) and (reference != np.arange(len(sample))).all()
    _, *masks = feature_masks(spec)
    baseline = (sparse[reference], dense[reference])
    phi = shapley_values(model, sparse, dense, tuple(masks), baseline, seed=0, permutations=3)
    efficiency = _logit(model, sparse, dense) - _logit(model, *baseline)
    np.testing.assert_allclose(phi.sum(axis=1), efficiency, atol=1e-5)
    result = attribute(model, spec, sample, "v1", seed=0)
    assert result.mean_logit == pytest.approx(_logit(model, sparse, dense).mean(), abs=1e-6)


def test_two_models_reading_different_features_show_a_reported_shift(sample, spec) -> None:
    price = attribute(_only(spec, "item_price"), spec, sample, "v2", seed=0)
    ctr = attribute(_only(spec, "user_ctr_7d"), spec, sample, "v1", seed=0)
    comparison = compare_attributions(price, ctr, threshold=0.2, seed=0)
    assert comparison.shift == pytest.approx(1.0) and comparison.shifted
    note = comparison.note()
    assert note is not None and "total variation distance 1.000 >= 0.2" in note
    assert "item_price 0% -> 100%" in note and "user_ctr_7d 100% -> 0%" in note
    first = comparison.features[0]
    assert (first.feature, first.candidate_rank) == ("item_price", 1)
    assert first.champion_share == pytest.approx(0.0, abs=1e-9)
    rows = {r["metric"]: r for r in comparison.as_rows()}
    assert rows["attribution_shift"]["value"] == pytest.approx(1.0)
    assert rows["attribution_shift"]["detail"]["note"] == note
    assert rows["attribution:item_price"]["value"] == price.importance["item_price"]
    assert rows["attribution:user_ctr_7d"]["detail"]["champion"] == ctr.importance["user_ctr_7d"]
    assert "passed" not in rows["attribution_shift"]  # reported, not gated
    table = GateDecision(passed=True, checks=[], notes=[note]).table()
    assert "notes (reported, not gated):" in table and note in table


def test_the_same_model_twice_shows_no_shift_and_two_seeds_barely_any(sample, spec) -> None:
    model = _dcn(spec)
    once = attribute(model, spec, sample, "v2", seed=0)
    again = attribute(model, spec, sample, "v1", seed=0)
    assert once.importance == again.importance  # reproducible with the seed
    same = compare_attributions(once, again, threshold=0.2, seed=0)
    assert same.shift == pytest.approx(0.0, abs=1e-12) and not same.shifted and same.note() is None
    other_seed = attribute(model, spec, sample, "v1", seed=1)
    assert other_seed.importance != once.importance
    noise = compare_attributions(once, other_seed, threshold=0.2, seed=0).shift
    assert noise is not None and noise < 0.05  # sampling noise alone stays far below the threshold


def test_the_sample_is_drawn_by_the_seed_and_kept_whole_when_small() -> None:
    frame = _frame(1000)
    assert sample_rows(frame, 200, 5).index.equals(sample_rows(frame, 200, 5).index)
    assert not sample_rows(frame, 200, 5).index.equals(sample_rows(frame, 200, 6).index)
    assert sample_rows(frame, 200, 5).index.is_monotonic_increasing
    assert sample_rows(frame, 2000, 5) is frame


def test_models_with_different_specs_are_compared_over_the_union_of_their_features(sample, spec) -> None:
    fewer = replace(spec, numeric=[f for f in spec.numeric if f.name != "item_price"])
    candidate = attribute(_only(fewer, "user_ctr_7d"), fewer, sample, "v2", seed=0)
    champion = attribute(_only(spec, "item_price"), spec, sample, "v1", seed=0)
    assert "item_price" not in candidate.importance
    comparison = compare_attributions(candidate, champion, threshold=0.2, seed=0)
    by_name = {f.feature: f for f in comparison.features}
    assert set(by_name) == set(spec.input_columns)
    price = by_name["item_price"]
    assert (price.candidate, price.candidate_share, price.candidate_rank) == (None, 0.0, None)
    assert price.champion_share == pytest.approx(1.0)
    assert comparison.features[-1].feature == "item_price"  # a feature the candidate lacks comes last
    row = next(r for r in comparison.as_rows() if r["metric"] == "attribution:item_price")
    assert row["value"] == 0.0 and row["detail"]["champion"] == champion.importance["item_price"]


def test_a_first_model_has_its_profile_and_no_shift() -> None:
    alone = ModelAttribution("v1", {"item_price": 0.3, "user_id": 0.1}, 2000, -2.9)
    comparison = compare_attributions(alone, None, threshold=0.2, seed=0)
    assert comparison.shift is None and not comparison.shifted and comparison.note() is None
    assert [f.feature for f in comparison.features] == ["item_price", "user_id"]
    assert [f.champion_share for f in comparison.features] == [None, None]
    assert comparison.features[0].candidate_share == pytest.approx(0.75)
    assert [r["metric"] for r in comparison.as_rows()] == ["attribution:item_price", "attribution:user_id"]
    assert (
        comparison.as_dict()["shift"] is None and comparison.report_inputs()["champion_attribution"] is None
    )


def test_zero_rows_turns_attribution_off(sample) -> None:
    settings = replace(get_settings(), evaluation=EvaluationSettings(attribution_rows=0))
    assert attribute_models("v2", "v1", sample, settings) is None  # no registry or model is touched
