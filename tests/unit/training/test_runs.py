"""``train_and_register`` refuses unlearnable training sets before writing or registering anything."""

from __future__ import annotations

import pandas as pd
import pytest

from flywheel.config import Settings
from flywheel.registry import list_versions
from flywheel.training.dataset import TrainingDataError
from flywheel.training.runs import run_folder, train_and_register
from flywheel.warehouse import open_warehouse


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (lambda f: f.head(0), "training set has 0 rows for the DataFrame given"),
        (
            lambda f: f[f["label"] == 0],
            r"training set has only label=0 \([\d,]+ rows\).*cannot train a click model",
        ),
    ],
)
def test_unlearnable_sets_fail_and_register_nothing(
    home: Settings, small_frame: pd.DataFrame, rows, message
) -> None:
    with pytest.raises(TrainingDataError, match=message):
        train_and_register(rows(small_frame), home, budget=2, max_epochs=1, run_id="manual__2026-01-01")

    assert list_versions(open_warehouse(home.warehouse_url)) == []
    assert not (home.artifacts_dir / "datasets").exists()
    assert not run_folder(home, "manual__2026-01-01").exists()


def test_run_folders_are_safe_names_of_the_run_id(home: Settings) -> None:
    folder = run_folder(home, "scheduled__2026-01-01T00:00:00+00:00")
    assert folder.parent == home.artifacts_dir / "training"
    assert folder.name == "scheduled__2026-01-01T00_00_00_00_00"


def test_kubernetes_backend_is_wired_as_its_own_tasks(home: Settings, small_frame: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="build_training_pod_operator"):
        train_and_register(small_frame, home, backend="kubernetes")
