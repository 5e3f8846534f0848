"""A search whose trial diverged (NaN scores at every epoch, as a learning rate of 0.1 can give) still
names its best trial and lists the diverged one with why, instead of failing the whole search."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
from pyarrow.fs import LocalFileSystem

from flywheel.training.search import SearchError, summarise


def _result(trial_id: str, aucs: list[float], checkpoint: bool = True) -> SimpleNamespace:
    frame = pd.DataFrame(
        {
            "trial_id": trial_id,
            "training_iteration": range(1, len(aucs) + 1),
            "val_auc": aucs,
            "val_logloss": 0.3,
            "train_loss": 0.3,
            "samples_per_s": 1000.0,
        }
    )
    return SimpleNamespace(
        metrics_dataframe=frame,
        metrics={"trial_id": trial_id},
        config={"lr": 0.1 if trial_id == "diverged" else 0.001},
        checkpoint=SimpleNamespace(filesystem=LocalFileSystem(), path=f"/tmp/{trial_id}/checkpoint")
        if checkpoint
        else None,
        error=None,
        path=f"/tmp/{trial_id}",
    )


def test_a_diverged_trial_is_listed_and_the_best_finite_one_wins() -> None:
    grid = [_result("diverged", [float("nan")] * 3), _result("good", [0.70, float("nan"), 0.72])]
    outcome = summarise(grid, "val_auc")
    assert outcome.best_trial_id == "good"
    listed = {t["trial_id"]: t for t in outcome.trials}
    assert listed["diverged"]["error"] == "no finite val_auc"
    assert listed["good"]["val_auc"] == pytest.approx(0.72)


def test_a_search_where_every_trial_diverged_says_so() -> None:
    with pytest.raises(SearchError, match="no trial reported val_auc"):
        summarise(_Grid([_result("diverged", [float("nan")])]), "val_auc")


class _Grid(list):
    experiment_path = "/tmp/search"
