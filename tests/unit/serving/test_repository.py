"""Exporting a version into Triton's repository layout: the config Triton reads (parsed back with Triton's own
``ModelConfig`` schema), the files beside it, idempotent and atomic re-exports, and refusals that name the bad
input and leave the repository as it was."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pandas as pd
import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2

from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE
from flywheel.artifacts.spec import FeatureSpec
from flywheel.serving.repository import (
    MAX_BATCH_SIZE,
    MODEL_SOURCE,
    ExportError,
    export_version,
    exported_versions,
    remove_version,
    render_config,
    triton_model_name,
)

GPU_EXAMPLE = Path(__file__).resolve().parents[3] / "images" / "triton" / "config.gpu.pbtxt.example"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory, train_small_model) -> Path:
    """A real exported model (one epoch on two simulated hours): ``model.pt`` and ``feature_spec.json``."""
    from flywheel.simulate.training_set import simulated_training_set

    frame: pd.DataFrame = simulated_training_set(hours=2, impressions_per_hour=300, seed=5)
    return train_small_model(frame, tmp_path_factory.mktemp("models") / "model", epochs=1)


def _config(folder: Path) -> model_config_pb2.ModelConfig:
    return text_format.Parse((folder / "config.pbtxt").read_text(), model_config_pb2.ModelConfig())


def _listing(repository: Path) -> dict[str, tuple[int, int]]:
    """Every path under the repository with its inode and mtime: what a no-op export must leave alone."""
    return {
        str(p.relative_to(repository)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in repository.rglob("*")
    }


def test_a_version_is_exported_in_tritons_layout_with_a_config_sized_from_its_spec(
    model_dir: Path, tmp_path: Path
) -> None:
    folder = export_version("v0007", model_dir, tmp_path / "models")

    assert folder == tmp_path / "models" / "flywheel_v0007"
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "1", "1/model.pt", "1/model.py", "config.pbtxt", "feature_spec.json",
    ]  # fmt: skip
    assert (folder / "1" / "model.pt").read_bytes() == (model_dir / MODEL_FILE).read_bytes()
    assert (folder / "1" / "model.py").read_text() == MODEL_SOURCE.read_text()
    assert json.loads((folder / "feature_spec.json").read_text()) == json.loads(
        (model_dir / SPEC_FILE).read_text()
    )

    spec = FeatureSpec.load(model_dir / SPEC_FILE)
    config = _config(folder)  # Triton's own schema: a misspelt field would not parse
    assert (config.name, config.backend, config.max_batch_size) == (
        "flywheel_v0007",
        "python",
        MAX_BATCH_SIZE,
    )
    inputs = {i.name: (model_config_pb2.DataType.Name(i.data_type), list(i.dims)) for i in config.input}
    assert inputs == {
        "sparse": ("TYPE_INT64", [len(spec.sparse_columns)]),
        "dense": ("TYPE_FP32", [len(spec.dense_columns)]),
    }
    assert [(o.name, model_config_pb2.DataType.Name(o.data_type), list(o.dims)) for o in config.output] == [
        ("probability", "TYPE_FP32", [1])
    ]
    assert config.HasField("dynamic_batching")
    assert config.version_policy.latest.num_versions == 1
    assert [
        (g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind)) for g in config.instance_group
    ] == [(1, "KIND_CPU")]
    assert config.parameters["flywheel_version"].string_value == "v0007"
    assert exported_versions(tmp_path / "models") == ["v0007"]


def test_the_triton_model_name_is_a_valid_identifier_per_registry_version() -> None:
    assert triton_model_name("v0001") == "flywheel_v0001"
    assert triton_model_name("v1.2-rc:3") == "flywheel_v1_2_rc_3"


def test_exporting_again_changes_nothing_and_leaves_no_scratch_folder(
    model_dir: Path, tmp_path: Path
) -> None:
    repository = tmp_path / "models"
    first = export_version("v0001", model_dir, repository)
    before = _listing(repository)

    again = export_version("v0001", model_dir, repository)

    assert again == first
    assert _listing(repository) == before  # same inodes and times: a loaded model's folder is not touched


def test_exports_of_one_version_racing_each_other_leave_one_whole_folder(
    model_dir: Path, tmp_path: Path
) -> None:
    repository = tmp_path / "models"

    with ThreadPoolExecutor(max_workers=6) as pool:  # two DAG runs deploying the same version, say
        folders = set(pool.map(lambda _: export_version("v0001", model_dir, repository), range(12)))

    assert folders == {repository / "flywheel_v0001"}
    assert [p.name for p in repository.iterdir()] == ["flywheel_v0001"]
    assert (repository / "flywheel_v0001" / "1" / "model.pt").read_bytes() == (
        model_dir / MODEL_FILE
    ).read_bytes()


def test_a_re_export_with_other_settings_replaces_the_folder_whole(model_dir: Path, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    export_version("v0001", model_dir, repository)
    export_version("v0002", model_dir, repository)

    folder = export_version("v0001", model_dir, repository, kind="KIND_GPU", count=2, gpus=(0, 1))

    groups = _config(folder).instance_group
    assert [
        (g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind), list(g.gpus)) for g in groups
    ] == [(2, "KIND_GPU", [0, 1])]
    assert sorted(p.name for p in repository.iterdir()) == ["flywheel_v0001", "flywheel_v0002"]
    assert (folder / "1" / "model.pt").read_bytes() == (model_dir / MODEL_FILE).read_bytes()


def test_the_gpu_example_beside_the_triton_image_is_what_export_renders(model_dir: Path) -> None:
    example = GPU_EXAMPLE.read_text()
    generated = example[example.index("# Generated by") :]  # after the explanation above it

    assert generated == render_config(
        "v0007", FeatureSpec.load(model_dir / SPEC_FILE), kind="KIND_GPU", gpus=(0,)
    )
    groups = text_format.Parse(example, model_config_pb2.ModelConfig()).instance_group
    assert [
        (g.count, model_config_pb2.ModelInstanceGroup.Kind.Name(g.kind), list(g.gpus)) for g in groups
    ] == [(1, "KIND_GPU", [0])]


def test_removing_a_version_deletes_only_its_folder(model_dir: Path, tmp_path: Path) -> None:
    repository = tmp_path / "models"
    for version in ("v0001", "v0002"):
        export_version(version, model_dir, repository)

    remove_version("v0001", repository)
    remove_version("v0001", repository)  # absent: nothing to do

    assert sorted(p.name for p in repository.iterdir()) == ["flywheel_v0002"]
    assert exported_versions(repository) == ["v0002"]


@pytest.mark.parametrize(
    ("version", "kwargs", "damage", "message"),
    [
        ("v0001", {}, "no folder", "does not exist: pass the artifact folder"),
        ("v0001", {}, MODEL_FILE, "lacks model.pt: it is not a finished training export"),
        ("v0001", {}, SPEC_FILE, "lacks feature_spec.json"),
        ("v0001", {}, "bad spec", "feature_spec.json is not a flywheel feature spec"),
        ('v"1', {}, None, "registry version 'v\"1' is not a version name"),
        ("", {}, None, "registry version '' is not a version name"),
        ("v0001", {"kind": "KIND_TPU"}, None, "instance kind 'KIND_TPU' is not one of KIND_CPU, KIND_GPU"),
        ("v0001", {"count": 0}, None, "instance count 0 must be at least 1"),
        ("v0001", {"gpus": (0,)}, None, "GPU ids apply to KIND_GPU only"),
    ],
)
def test_bad_input_is_refused_by_name_and_leaves_the_repository_untouched(
    model_dir: Path, tmp_path: Path, version: str, kwargs: dict, damage: str | None, message: str
) -> None:
    source = tmp_path / "source"
    if damage != "no folder":
        source.mkdir()
        for name in (MODEL_FILE, SPEC_FILE):
            if name != damage:
                (source / name).write_bytes((model_dir / name).read_bytes())
        if damage == "bad spec":
            (source / SPEC_FILE).write_text('{"format": "something/else"}')
    repository = tmp_path / "models"
    repository.mkdir()
    export_version("v0009", model_dir, repository)
    before = _listing(repository)

    with pytest.raises(ExportError) as refused:
        export_version(version, source, repository, **kwargs)

    assert message in str(refused.value)
    if damage:
        assert str(source) in str(refused.value)  # which folder is wrong
    assert _listing(repository) == before


def test_a_drill_export_carries_its_delay_and_a_served_export_none(model_dir: Path, tmp_path: Path) -> None:
    from flywheel.serving.repository import DELAY_PARAMETER

    served = _config(export_version("v0001", model_dir, tmp_path / "served"))
    drill = _config(export_version("v0001", model_dir, tmp_path / "drill", drill_delay_ms=150))
    assert DELAY_PARAMETER not in served.parameters
    assert drill.parameters[DELAY_PARAMETER].string_value == "150"
