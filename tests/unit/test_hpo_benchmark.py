"""The HPO benchmark's arithmetic on hand-made timelines: best AUC within a budget, epochs to a target."""

from __future__ import annotations

import importlib.util
import math
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def hpo() -> Iterator[ModuleType]:
    # benchmarks/ is a folder of scripts, not a package: load the file itself (registered while in use,
    # as its dataclasses look their module up).
    name = "benchmark_hpo"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "hpo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(name, None)


def _timeline(*results: tuple[str, float]) -> list[dict]:
    """Results in the order they arrived: (trial id, val_auc) per epoch."""
    return [{"time": 100.0 + i, "trial_id": t, "val_auc": auc} for i, (t, auc) in enumerate(results)]


def test_best_so_far_follows_arrival_order_across_trials(hpo: ModuleType) -> None:
    timeline = _timeline(("a", 0.60), ("b", 0.55), ("a", 0.65), ("b", 0.70), ("a", 0.62))
    shuffled = [timeline[i] for i in (3, 0, 4, 1, 2)]  # the callback's list order does not matter, time does

    assert hpo.best_so_far(shuffled) == [0.60, 0.60, 0.65, 0.70, 0.70]


def test_a_failed_epoch_does_not_hide_the_best(hpo: ModuleType) -> None:
    assert hpo.best_so_far(_timeline(("a", 0.6), ("b", math.nan), ("a", 0.7))) == [0.6, 0.6, 0.7]


def test_best_within_a_budget_and_a_search_that_stopped_early(hpo: ModuleType) -> None:
    curve = [0.60, 0.60, 0.65, 0.70, 0.70]

    assert hpo.best_at(curve, 3) == 0.65
    assert hpo.best_at(curve, 50) == 0.70  # stopped after 5 epochs: keeps its final best
    assert math.isnan(hpo.best_at(curve, 0)) and math.isnan(hpo.best_at([], 3))


def test_epochs_to_reach_a_target(hpo: ModuleType) -> None:
    curve = [0.60, 0.60, 0.65, 0.70, 0.70]

    assert hpo.epochs_to_reach(curve, 0.65) == 3
    assert hpo.epochs_to_reach(curve, 0.50) == 1
    assert hpo.epochs_to_reach(curve, 0.71) is None


def test_the_mean_curve_reaches_the_final_mean_exactly_when_the_last_seed_does(hpo: ModuleType) -> None:
    # Random search's target is the mean of its seeds' final bests: its own mean curve reaches it at the
    # epoch of the last improvement of any seed, despite float rounding in the mean.
    seeds = [[0.1, 0.7, 0.7, 0.7], [0.3, 0.3, 0.3, 0.9], [0.2, 0.2, 0.8]]
    target = sum(c[-1] for c in seeds) / len(seeds)
    mean = hpo.mean_curve(seeds, 4)

    assert mean == pytest.approx([0.2, 0.4, 0.6, 0.8])
    assert hpo.epochs_to_reach(mean, target) == 4


def test_matched_budgets_are_shares_of_random_search_epochs(hpo: ModuleType) -> None:
    assert hpo.budget_points(108) == [11, 27, 54, 108]
    assert hpo.budget_points(4) == [1, 1, 2, 4]  # never an empty budget


def test_each_configuration_counts_once_with_its_best_epoch(hpo: ModuleType) -> None:
    timeline = _timeline(("a", 0.60), ("b", 0.52), ("a", 0.65), ("b", 0.50), ("c", 0.71))

    assert hpo.trial_finals(timeline) == [0.52, 0.65, 0.71]


def test_mean_and_spread(hpo: ModuleType) -> None:
    assert hpo.mean_sd([0.70, 0.72, math.nan]) == "0.7100 ± 0.0141"
    assert hpo.mean_sd([math.nan]) == "n/a"


def test_the_benchmark_space_tunes_only_what_the_trainer_reads(hpo: ModuleType) -> None:
    from flywheel.training.space import load_search_space
    from flywheel.training.trainer import DEFAULT_PARAMS

    space = load_search_space(hpo.SPACE_FILE)

    assert set(space.parameters) <= set(DEFAULT_PARAMS)  # a parameter the model ignores would be noise
    lr = space.parameters["lr"]
    assert lr["type"] == "loguniform" and lr["high"] / lr["low"] >= 1e3


@pytest.mark.parametrize("end", ["low", "high"])
def test_the_spaces_extreme_shapes_train_and_export(hpo: ModuleType, end: str, tmp_path: Path) -> None:
    """No cross or deep part at all (depth 0) and the deepest, widest network both score and export."""
    import torch

    from flywheel.training.model import build_model, export_torchscript
    from flywheel.training.space import load_search_space

    parameters = load_search_space(hpo.SPACE_FILE).parameters
    pick = {"low": min, "high": max}[end]
    params = {
        "cross_layers": parameters["cross_layers"][end],
        "mlp_layers": parameters["mlp_layers"][end],
        "mlp_width": pick(parameters["mlp_width"]["values"]),
        "embedding_dim": pick(parameters["embedding_dim"]["values"]),
    }
    model = build_model([50, 20], 3, params)
    sparse, dense = torch.randint(0, 20, (8, 2)), torch.randn(8, 3)

    torch.nn.functional.binary_cross_entropy_with_logits(model(sparse, dense), torch.ones(8)).backward()
    scorer = torch.jit.load(str(export_torchscript(model.eval(), tmp_path / "model.pt")))
    assert scorer(sparse, dense).shape == (8, 1)
