"""The model registry, owned by no stage: model versions and their lifecycle, and which model is in service.

Training registers candidates, monitoring reads the model in service; every stage reads and writes model
state through this package and its ``registry.*`` tables, never through another stage.
"""

from __future__ import annotations

from flywheel.registry.versions import (
    STATUSES,
    TABLE,
    TRANSITIONS,
    ModelVersion,
    RegistryError,
    get_version,
    in_service,
    latest,
    list_versions,
    register_candidate,
    set_status,
)

__all__ = [
    "STATUSES",
    "TABLE",
    "TRANSITIONS",
    "ModelVersion",
    "RegistryError",
    "get_version",
    "in_service",
    "latest",
    "list_versions",
    "register_candidate",
    "set_status",
]
