"""Training: feature spec, DCN model, Ray Tune search, model registry, and the local / Kubernetes backends.

Importing this package is cheap (no torch, no Ray): DAG files import from it at parse time.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

# Public names -> the module that defines them, imported on first use.
_EXPORTS = {
    "train_and_register": "flywheel.training.runs",
    "prepare_training_set": "flywheel.training.runs",
    "register_candidate": "flywheel.training.runs",
    "train": "flywheel.training.backends",
    "build_training_pod_operator": "flywheel.training.kubernetes",
    "snapshot_training_set": "flywheel.training.dataset",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
