"""The model folder a run leaves behind: ``model.pt`` (TorchScript), ``feature_spec.json``, ``metadata.json``.
Training writes it; evaluation and serving read it (load, encode with its spec, score).

``metadata.json`` is written last and atomically: a folder holding it is a complete model, so a retried
run that finds it has nothing left to do.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

MODEL_DIR = "model"
MODEL_FILE = "model.pt"
SPEC_FILE = "feature_spec.json"
METADATA_FILE = "metadata.json"
METADATA_FORMAT = "flywheel.model_metadata/1"


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Write JSON through a scratch file and a rename, so readers never see half a file."""
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    os.replace(tmp, path)
    return path


def read_metadata(model_dir: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The metadata of a complete model folder (path or URI), or ``None`` when it has none yet."""
    from flywheel.artifacts.storage import resolve

    filesystem, path = resolve(model_dir)
    target = f"{path.rstrip('/')}/{METADATA_FILE}"
    if not filesystem.exists(target):
        return None
    return json.loads(filesystem.cat_file(target).decode())


def score_exported(model_dir: Path, sparse: np.ndarray, dense: np.ndarray, batch: int = 8192) -> np.ndarray:
    """Click probabilities from the exported TorchScript file, as serving would compute them."""
    import torch

    scorer = load_torchscript(model_dir / MODEL_FILE)
    out = []
    with torch.no_grad():
        for start in range(0, len(sparse), batch):
            s = torch.as_tensor(sparse[start : start + batch])
            d = torch.as_tensor(dense[start : start + batch])
            out.append(scorer(s, d)[:, 0].numpy())
    return np.concatenate(out) if out else np.empty(0, dtype=np.float32)


def load_torchscript(path: str | Path) -> Any:
    """The TorchScript scorer of a model folder, on the CPU, in eval mode."""
    import warnings

    import torch

    with warnings.catch_warnings():
        # Deprecated in torch 2.13 in favour of torch.export, but Triton's libtorch backend loads TorchScript.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        return torch.jit.load(str(path), map_location="cpu").eval()


def upload_folder(local: Path, uri: str) -> None:
    """Copy a finished local folder to an object store URI (metadata.json last, as locally)."""
    from flywheel.artifacts.storage import resolve

    filesystem, root = resolve(uri)
    files = sorted(p for p in local.rglob("*") if p.is_file())
    files.sort(key=lambda p: p.name == METADATA_FILE)
    for path in files:
        filesystem.put_file(str(path), f"{root.rstrip('/')}/{path.relative_to(local).as_posix()}")
