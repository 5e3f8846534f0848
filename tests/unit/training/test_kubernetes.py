"""The GPU training pod renders without a cluster and validates against the Kubernetes 1.33 schema."""

from __future__ import annotations

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from flywheel.training.kubernetes import build_training_pod_operator

IMAGE = "registry.example/flywheel-trainer:1.0"


def _manifest(**kwargs) -> dict:
    op = build_training_pod_operator(
        task_id="train_model",
        image=IMAGE,
        dataset_uri="/flywheel/artifacts/datasets/0123abcd/training_set.parquet",
        output_uri="/flywheel/artifacts/training/run1",
        budget=16,
        max_epochs=10,
        **kwargs,
    )
    pod = op.build_pod_request_obj(context=None, dry_run=True)
    return ApiClient().sanitize_for_serialization(pod)


def test_pod_requests_a_gpu_node_and_resumes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_TRAINER_SECRET", "flywheel-trainer-env")
    manifest = _manifest(gpu_count=2, pvc_claim_name="flywheel-data")
    kubernetes_validate.validate(manifest, "1.33.0", strict=True)

    spec = manifest["spec"]
    container = spec["containers"][0]
    assert container["image"] == IMAGE
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert spec["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    args = container["args"]
    assert "--resume" in args
    assert args[args.index("--budget") + 1] == "16" and args[args.index("--max-epochs") + 1] == "10"
    assert args[args.index("--output") + 1] == "/flywheel/artifacts/training/run1"
    assert container["envFrom"] == [{"secretRef": {"name": "flywheel-trainer-env", "optional": False}}]
    claims = [
        v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v
    ]
    assert claims == ["flywheel-data"]
    assert {"name": "flywheel-data", "mountPath": "/flywheel"} in container["volumeMounts"]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]  # Ray's object store


def test_object_store_variant_has_no_claim_and_cpu_only_has_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FLYWHEEL_TRAINER_SECRET", raising=False)
    monkeypatch.delenv("FLYWHEEL_TRAINER_PVC", raising=False)
    manifest = _manifest(gpu_count=0, node_selector={})
    kubernetes_validate.validate(manifest, "1.33.0", strict=True)

    spec = manifest["spec"]
    assert "nvidia.com/gpu" not in spec["containers"][0]["resources"]["limits"]
    assert not spec.get("tolerations") and not spec.get("nodeSelector")
    assert all("persistentVolumeClaim" not in v for v in spec["volumes"])
