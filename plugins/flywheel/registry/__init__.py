"""The model registry, owned by no stage. It owns four tables and the functions over them:
``registry.model_versions`` (versions and their status), ``registry.status_changes`` (the lifecycle's
history), ``registry.evaluations`` (offline evaluations) and ``registry.deployments`` (rollout steps).

Training registers candidates, evaluation blesses or rejects them, serving rolls them out and promotes or
rolls back, monitoring reads the model in service; every stage reads and writes model state through this
package, never through another stage. The statuses and the moves between them are ``STATUSES`` and
``TRANSITIONS``.
"""

from __future__ import annotations

from flywheel.registry.deployments import DECISIONS, DeploymentStep, deployments, record_deployment_step
from flywheel.registry.evaluations import ALL_SLICE, Evaluation, evaluations, record_evaluation
from flywheel.registry.lifecycle import StatusChange, baseline_for, history, in_service, set_status
from flywheel.registry.store import (
    DEPLOYMENTS_TABLE,
    EVALUATIONS_TABLE,
    STATUS_CHANGES_TABLE,
    TABLE,
    RegistryError,
)
from flywheel.registry.versions import (
    STATUSES,
    TRANSITIONS,
    ModelVersion,
    get_version,
    latest,
    list_versions,
    register_candidate,
)

__all__ = [
    "ALL_SLICE",
    "DECISIONS",
    "DEPLOYMENTS_TABLE",
    "EVALUATIONS_TABLE",
    "STATUSES",
    "STATUS_CHANGES_TABLE",
    "TABLE",
    "TRANSITIONS",
    "DeploymentStep",
    "Evaluation",
    "ModelVersion",
    "RegistryError",
    "StatusChange",
    "baseline_for",
    "deployments",
    "evaluations",
    "get_version",
    "history",
    "in_service",
    "latest",
    "list_versions",
    "record_deployment_step",
    "record_evaluation",
    "register_candidate",
    "set_status",
]
