"""Click probabilities of a registered model on a held-out frame: its artifact folder resolved through the
registry, features encoded with the folder's own spec, and the exported TorchScript scored as serving
would score it (``flywheel.artifacts``), so evaluation never imports training."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE, score_exported
from flywheel.artifacts.storage import is_local, resolve
from flywheel.config import Settings, get_settings
from flywheel.registry import ModelVersion, get_version

if TYPE_CHECKING:
    import pandas as pd

    from flywheel.artifacts.spec import FeatureSpec

#: Rows per TorchScript call: 8,192 x ~30 columns keeps each batch's tensors near 1 MB.
BATCH = 8192


class MissingArtifacts(FileNotFoundError):
    """A registered version whose artifact folder lacks the files scoring needs."""


def resolve_version(version: str | ModelVersion, settings: Settings | None = None) -> ModelVersion:
    """The registry's record of ``version`` (``RegistryError`` naming the known versions if it has none)."""
    if isinstance(version, ModelVersion):
        return version
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    return get_version(str(version), open_warehouse(settings.warehouse_url))


def check_artifacts(model: ModelVersion) -> None:
    """Refuse a version whose folder lacks ``model.pt`` or ``feature_spec.json``, naming what is missing."""
    filesystem, root = resolve(model.artifact_uri)
    missing = [
        name for name in (MODEL_FILE, SPEC_FILE) if not filesystem.exists(f"{root.rstrip('/')}/{name}")
    ]
    if missing:
        raise MissingArtifacts(
            f"version {model.version} has no artifacts at {model.artifact_uri}: {', '.join(missing)} "
            "missing; the training run that registered it did not finish writing its model folder, or the "
            "folder was moved (FLYWHEEL_ARTIFACTS_DIR): retrain, or evaluate another version"
        )


def load_spec(model: ModelVersion) -> FeatureSpec:
    """The feature spec saved beside the model (local folder or object store)."""
    from flywheel.artifacts.spec import FeatureSpec  # pandas: not at import time

    filesystem, root = resolve(model.artifact_uri)
    return FeatureSpec.from_dict(json.loads(filesystem.cat_file(f"{root.rstrip('/')}/{SPEC_FILE}").decode()))


def score_version(
    version: str | ModelVersion, frame: pd.DataFrame, settings: Settings | None = None, *, batch: int = BATCH
) -> np.ndarray:
    """Click probabilities (float64, one per row of ``frame``) of a registered model.

    Rows are encoded as in training (``encode(..., serving=False)``: the logged position is kept, as the
    model was trained on it), then scored by the exported TorchScript in batches of ``batch`` rows.
    Refuses an unknown version (``RegistryError``), a version without its artifacts (``MissingArtifacts``)
    and a frame without the spec's columns (``FeatureSpecError``), each naming what is wrong.
    """
    from flywheel.artifacts.spec import encode

    model = resolve_version(version, settings)
    check_artifacts(model)
    spec = load_spec(model)
    sparse, dense = encode(frame, spec, serving=False)
    if is_local(model.artifact_uri):
        folder = Path(resolve(model.artifact_uri)[1])
        return score_exported(folder, sparse, dense, batch=batch).astype(np.float64)
    # TorchScript loads from a local file: copy the scorer from the object store first.
    filesystem, root = resolve(model.artifact_uri)
    with tempfile.TemporaryDirectory(prefix=f"flywheel-{model.version}-") as scratch:
        filesystem.get_file(f"{root.rstrip('/')}/{MODEL_FILE}", str(Path(scratch) / MODEL_FILE))
        return score_exported(Path(scratch), sparse, dense, batch=batch).astype(np.float64)
