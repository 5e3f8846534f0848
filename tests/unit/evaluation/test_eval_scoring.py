"""Scoring a registered model: the folder the registry names, encoded with its own spec, scored like the
exported TorchScript scores; unknown versions, missing artifacts and frames without the spec's columns are
refused with messages naming them."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE, score_exported
from flywheel.artifacts.spec import FeatureSpecError, encode, fit_spec
from flywheel.config import Settings
from flywheel.evaluation.scoring import MissingArtifacts, score_version
from flywheel.registry import RegistryError, get_version, register_candidate
from flywheel.warehouse import open_warehouse


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """Two simulated hours, about a thousand impressions in the training set's shape."""
    from flywheel.simulate.training_set import simulated_training_set

    return simulated_training_set(hours=2, impressions_per_hour=500, seed=3)


def _export(frame: pd.DataFrame, folder: Path) -> Path:
    """A model folder as training leaves it: ``model.pt`` and ``feature_spec.json``.

    A small DCN with its initial weights, exported the way training exports (no search, no Ray): these
    tests are about finding, encoding and scoring, not about what the model learned.
    """
    import torch

    from flywheel.training.model import build_model, export_torchscript

    torch.manual_seed(0)
    spec = fit_spec(frame, id_buckets={"user_id": 256, "item_id": 128})
    folder.mkdir(parents=True)
    spec.save(folder / SPEC_FILE)
    export_torchscript(
        build_model(spec.cardinalities, len(spec.numeric), {"mlp_width": 16}).eval(), folder / MODEL_FILE
    )
    return folder


def _register(settings: Settings, uri: str) -> str:
    return register_candidate(
        data_version=f"test-{uri}",
        artifact_uri=uri,
        params={},
        metrics={},
        warehouse=open_warehouse(settings.warehouse_url),
    )


def test_scores_match_the_exported_scorer_on_the_encoded_frame(
    home: Settings, frame: pd.DataFrame, tmp_path: Path
) -> None:
    from flywheel.artifacts.spec import FeatureSpec

    folder = _export(frame, tmp_path / "run" / "model")
    version = _register(home, str(folder))
    sparse, dense = encode(frame, FeatureSpec.load(folder / SPEC_FILE))
    expected = score_exported(folder, sparse, dense)

    scores = score_version(version, frame, home, batch=100)  # several batches, one partial

    assert scores.shape == (len(frame),) and scores.dtype == np.float64
    np.testing.assert_allclose(scores, expected, atol=1e-6, rtol=0)
    assert ((scores > 0) & (scores < 1)).all() and scores.std() > 0  # real, varied probabilities
    # A ModelVersion from the registry scores the same without a second look-up.
    by_record = score_version(get_version(version, open_warehouse(home.warehouse_url)), frame)
    np.testing.assert_allclose(by_record, scores, atol=1e-6, rtol=0)


def test_scores_a_model_in_an_object_store(home: Settings, frame: pd.DataFrame, tmp_path: Path) -> None:
    import fsspec

    folder = _export(frame, tmp_path / "model")
    memory = fsspec.filesystem("memory")
    for name in (MODEL_FILE, SPEC_FILE):
        memory.pipe_file(f"/eval-scoring/model/{name}", (folder / name).read_bytes())
    version = _register(home, "memory://eval-scoring/model")
    try:
        scores = score_version(version, frame, home)
    finally:
        memory.rm("/eval-scoring", recursive=True)

    np.testing.assert_allclose(scores, score_version(_register(home, str(folder)), frame, home), atol=1e-6)


def test_unknown_version_is_refused_by_name(home: Settings, frame: pd.DataFrame) -> None:
    with pytest.raises(RegistryError, match=r"no model version 'v0042' in registry.model_versions"):
        score_version("v0042", frame, home)


def test_version_without_artifacts_is_refused_naming_it(
    home: Settings, frame: pd.DataFrame, tmp_path: Path
) -> None:
    empty = tmp_path / "unfinished" / "model"
    empty.mkdir(parents=True)
    (empty / SPEC_FILE).write_text("{}")
    version = _register(home, str(empty))

    with pytest.raises(
        MissingArtifacts, match=re.escape(f"version {version} has no artifacts at {empty}: model.pt missing")
    ):
        score_version(version, frame, home)
    gone = _register(home, str(tmp_path / "never-written"))
    with pytest.raises(MissingArtifacts, match="model.pt, feature_spec.json missing"):
        score_version(gone, frame, home)


def test_frame_without_the_spec_columns_is_refused_by_the_spec(
    home: Settings, frame: pd.DataFrame, tmp_path: Path
) -> None:
    version = _register(home, str(_export(frame, tmp_path / "model")))
    with pytest.raises(FeatureSpecError, match="lacks column.*item_ctr_7d"):
        score_version(version, frame.drop(columns="item_ctr_7d"), home)
