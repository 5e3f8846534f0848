"""Artifacts in an object store: ``FLYWHEEL_ARTIFACTS_DIR=s3://...`` stays a URI, and the trainer reads its
dataset from and writes its model to a real S3 endpoint (moto's server on 127.0.0.1)."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path

import boto3
import pandas as pd
import pytest

from flywheel.artifacts.folder import METADATA_FILE, MODEL_FILE, SPEC_FILE
from flywheel.config import get_settings
from flywheel.training.backends import train
from flywheel.training.dataset import data_version, load_training_set
from flywheel.training.runs import prepare_training_set, register_candidate, run_folder
from flywheel.warehouse import open_warehouse


def _keys(bucket: str, prefix: str = "") -> list[str]:
    listing = boto3.client("s3").list_objects_v2(Bucket=bucket.removeprefix("s3://"), Prefix=prefix)
    return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture
def s3_home(home, s3_bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A flywheel home whose artifacts live in the bucket (the warehouse stays local)."""
    monkeypatch.setenv("FLYWHEEL_ARTIFACTS_DIR", f"{s3_bucket}/flywheel/")
    monkeypatch.setenv("FLYWHEEL_TRAIN_WORKDIR", str(tmp_path / "work"))
    return get_settings()


def test_an_s3_artifacts_dir_stays_a_uri_and_local_paths_stay_paths(
    s3_home, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert s3_home.artifacts_dir == "s3://flywheel-test/flywheel"
    s3_home.ensure_dirs()  # nothing to create in a bucket, and no "<cwd>/s3:/..." folder either
    assert not Path("s3:").exists()
    assert run_folder(s3_home, "scheduled__2026-03-02T03:00:00+00:00") == (
        "s3://flywheel-test/flywheel/training/scheduled__2026-03-02T03_00_00_00_00"
    )
    monkeypatch.setenv("FLYWHEEL_ARTIFACTS_DIR", str(tmp_path / "art"))
    assert get_settings().artifacts_dir == tmp_path / "art"
    monkeypatch.setenv("FLYWHEEL_ARTIFACTS_DIR", f"file://{tmp_path}/art")
    assert get_settings().artifacts_dir == tmp_path / "art"


def test_snapshot_is_written_once_to_the_bucket_and_reads_back(s3_home, small_frame: pd.DataFrame) -> None:
    prepared = prepare_training_set(small_frame, s3_home)
    version = prepared["data_version"]
    assert prepared["dataset_uri"] == f"s3://flywheel-test/flywheel/datasets/{version}/training_set.parquet"
    assert _keys("flywheel-test") == [f"flywheel/datasets/{version}/training_set.parquet"]

    again = prepare_training_set(small_frame.sample(frac=1.0, random_state=1), s3_home)
    assert again == prepared and len(_keys("flywheel-test")) == 1
    assert data_version(load_training_set(prepared["dataset_uri"])) == version


def test_trainer_reads_its_dataset_from_and_writes_its_model_to_s3(
    s3_home, small_frame: pd.DataFrame
) -> None:
    import torch

    prepared = prepare_training_set(small_frame, s3_home)
    output = run_folder(s3_home, "manual__2026-03-02")
    metadata = train(prepared["dataset_uri"], output, budget=1, max_epochs=1, seed=3, timeout=300)

    model_keys = _keys("flywheel-test", "flywheel/training/manual__2026-03-02/model/")
    assert [k.rsplit("/", 1)[1] for k in model_keys] == sorted([METADATA_FILE, MODEL_FILE, SPEC_FILE])
    assert _keys("flywheel-test", "flywheel/training/manual__2026-03-02/tune/search/")  # resumable there
    assert metadata["dataset_uri"] == prepared["dataset_uri"]
    assert metadata["data_version"] == prepared["data_version"]
    assert metadata["search"]["seed"] == 3 and metadata["epochs"]["trained"] == 1
    assert not Path("s3:").exists()

    # The uploaded TorchScript is a model that scores rows, not just a file.
    model_key = next(k for k in model_keys if k.endswith(f"/{MODEL_FILE}"))
    body = boto3.client("s3").get_object(Bucket="flywheel-test", Key=model_key)["Body"].read()
    scorer = torch.jit.load(io.BytesIO(body))
    sparse_width = len(metadata["inputs"]["sparse"]["columns"])
    dense_width = len(metadata["inputs"]["dense"]["columns"])
    probability = scorer(torch.zeros(2, sparse_width, dtype=torch.int64), torch.zeros(2, dense_width))
    assert probability.shape == (2, 1) and bool(((probability > 0) & (probability < 1)).all())

    window = (datetime(2026, 3, 1), datetime(2026, 3, 2))
    registered = register_candidate(output, "manual__2026-03-02", window, s3_home)
    assert registered["artifact_uri"] == f"{output}/model"
    assert open_warehouse(s3_home.warehouse_url).table_exists("registry.model_versions")
