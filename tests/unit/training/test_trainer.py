"""The model learns the simulator's signal, resumes exactly from a checkpoint, and exports faithfully."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from flywheel.artifacts.folder import score_exported
from flywheel.training.model import export_model
from flywheel.training.trainer import Trainer, fit, prepare_data, roc_auc


@pytest.fixture(scope="module")
def data(training_frame: pd.DataFrame):
    return prepare_data(training_frame)


def test_model_learns_clicks_well_above_chance(data) -> None:
    torch.set_num_threads(1)
    trainer = fit(data, {"lr": 3e-3}, max_epochs=3, patience=1, seed=0)

    assert trainer.best_auc > 0.65
    assert trainer.history[0]["samples_per_s"] > 0
    assert {"val_auc", "val_logloss", "samples_per_s", "train_loss"} <= set(trainer.history[0])


def test_shuffled_labels_teach_nothing(training_frame: pd.DataFrame) -> None:
    # The control for the test above: same features, labels with no relation to them.
    shuffled = training_frame.assign(
        label=training_frame["label"].sample(frac=1.0, random_state=0).to_numpy()
    )
    trainer = fit(prepare_data(shuffled), max_epochs=1, seed=0)
    assert abs(trainer.best_auc - 0.5) < 0.05


def test_resumed_training_matches_uninterrupted_training(data) -> None:
    straight = Trainer(data, {}, seed=3)
    straight.run_epoch()
    expected = straight.run_epoch()

    first = Trainer(data, {}, seed=3)
    first.run_epoch()
    state = first.state_dict()
    resumed = Trainer(data, {}, seed=99)  # a different seed: everything must come from the checkpoint
    resumed.load_state_dict(state)
    got = resumed.run_epoch()

    assert got.epoch == expected.epoch == 2
    assert got.val_auc == pytest.approx(expected.val_auc, abs=1e-9)
    assert got.train_loss == pytest.approx(expected.train_loss, rel=1e-9)


def test_torchscript_export_scores_like_the_eager_model(data, tmp_path) -> None:
    trainer = fit(data, max_epochs=1, seed=0)
    export_model(trainer.state_dict(), data.spec, tmp_path)

    eager = trainer.best_model()
    with torch.no_grad():
        expected = torch.sigmoid(eager(torch.as_tensor(data.val.sparse), torch.as_tensor(data.val.dense)))
    scripted = score_exported(tmp_path, data.val.sparse, data.val.dense)

    np.testing.assert_allclose(scripted, expected.numpy(), rtol=1e-5, atol=1e-6)
    assert roc_auc(data.val.label, scripted) == pytest.approx(trainer.best_auc, abs=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["feature_spec.json", "model.pt"]


def test_auc_counts_ties_as_half() -> None:
    assert roc_auc(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.5, 0.5])) == pytest.approx(0.875)
    assert np.isnan(roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
