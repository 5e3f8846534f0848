"""The search's sampler, scheduler and epoch budget reach Ray Tune as chosen; the defaults stay ASHA + TPE."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from optuna.samplers import TPESampler
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
from ray.tune.search.basic_variant import BasicVariantGenerator
from ray.tune.search.optuna import OptunaSearch

from flywheel.training.search import SearchOptions, _tuner, epoch_budget, run_search, tune_config
from flywheel.training.trainer import prepare_data


def test_defaults_are_asha_with_optunas_tpe() -> None:
    config = tune_config(SearchOptions(budget=12, max_epochs=9, seed=3, num_cpus=2))

    assert isinstance(config.scheduler, ASHAScheduler)
    assert config.scheduler._max_t == 9  # ASHA's rungs end at the trial's last epoch
    assert isinstance(config.search_alg, OptunaSearch)
    assert isinstance(config.search_alg._sampler, TPESampler)
    assert config.max_concurrent_trials == 2  # Tune wraps the searcher in a ConcurrencyLimiter
    assert config.num_samples == 12


def test_random_sampling_and_fifo_scheduling_are_what_tune_gets() -> None:
    config = tune_config(
        SearchOptions(budget=12, max_epochs=9, scheduler="fifo", searcher="random", num_cpus=2)
    )

    assert type(config.scheduler) is FIFOScheduler  # ASHAScheduler subclasses FIFOScheduler
    assert isinstance(config.search_alg, BasicVariantGenerator)
    assert config.search_alg.max_concurrent == 2  # no queue of variants an epoch budget would strand


def test_asha_with_random_sampling() -> None:
    config = tune_config(SearchOptions(budget=12, max_epochs=9, scheduler="asha", searcher="random"))

    assert isinstance(config.scheduler, ASHAScheduler)
    assert isinstance(config.search_alg, BasicVariantGenerator)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"scheduler": "hyperband"}, "unknown scheduler 'hyperband'"),
        ({"searcher": "grid"}, "unknown searcher"),
    ],
)
def test_unknown_choices_are_refused_by_name(change: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tune_config(SearchOptions(budget=2, max_epochs=1, **change))


def test_the_tuner_is_built_with_the_chosen_settings(
    small_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(tune, "Tuner", lambda trainable, **kwargs: built.update(kwargs))
    options = SearchOptions(budget=20, max_epochs=3, searcher="random", scheduler="fifo", max_total_epochs=5)

    _tuner(prepare_data(small_frame), tmp_path, str(tmp_path / "tune"), options, 0, [], resume=False)

    assert isinstance(built["tune_config"].search_alg, BasicVariantGenerator)
    assert type(built["tune_config"].scheduler) is FIFOScheduler
    stopper = built["run_config"].stop
    for epoch in (1, 2, 3):
        assert stopper("t1", {"training_iteration": epoch}) is False  # the trial itself goes on
    stopper("t1", {"training_iteration": 3})  # t1 returned: Tune hands its last result over again
    stopper("t2", {"training_iteration": 1})
    assert not stopper.stop_all()
    stopper("t2", {"training_iteration": 2})
    assert stopper.stop_all()  # the fifth epoch ends the search


def test_no_epoch_budget_means_no_stopper(
    small_frame: pd.DataFrame, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: dict[str, Any] = {}
    monkeypatch.setattr(tune, "Tuner", lambda trainable, **kwargs: built.update(kwargs))

    _tuner(prepare_data(small_frame), tmp_path, str(tmp_path / "tune"), SearchOptions(2, 1), 0, [], False)

    assert built["run_config"].stop is None
    assert isinstance(built["tune_config"].search_alg, OptunaSearch)


def test_each_epoch_budget_counts_on_its_own() -> None:
    first, second = epoch_budget(1), epoch_budget(1)
    first("t1", {"training_iteration": 1})
    assert first.stop_all() and not second.stop_all()


def test_an_epoch_budget_stops_a_real_search(small_frame: pd.DataFrame, tmp_path: Path) -> None:
    """Ray stops the search at the budget, running trials included; ASHA would otherwise run 20 trials."""
    timeline: list[dict[str, Any]] = []
    options = SearchOptions(
        budget=20, max_epochs=3, searcher="random", num_cpus=2, first_guess=False, max_total_epochs=4
    )

    outcome = run_search(
        prepare_data(small_frame), tmp_path, options, resume=False, emit=lambda _: None, timeline=timeline
    )

    # A result already on its way when the budget is reached may still arrive (one per other running trial).
    assert 4 <= len(timeline) <= 4 + options.num_cpus - 1
    assert outcome.epochs_total == len(timeline)
    assert all(t["error"] is None for t in outcome.trials), outcome.trials  # stopped trials are not errors
