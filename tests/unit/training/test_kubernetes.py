"""The GPU training pod renders without a cluster and validates against the Kubernetes 1.33 schema, also as
the ``train_model`` DAG's kubernetes branch builds it for a run: that run's dataset, run folder and seed."""

from __future__ import annotations

import copy
from datetime import datetime
from pathlib import Path
from typing import Any

import kubernetes_validate
import pandas as pd
import pytest
from kubernetes.client import ApiClient

from flywheel.config import PROJECT_ROOT, get_settings
from flywheel.training.kubernetes import UnreachableFromPod, build_training_pod_operator
from flywheel.training.tasks import prepare_run, training_pod_operator

IMAGE = "registry.example/flywheel-trainer:1.0"
RUN_ID = "scheduled__2026-03-02T03:00:00+00:00"
WINDOW = (datetime(2026, 2, 28, 3), datetime(2026, 3, 2, 3))


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


@pytest.fixture(scope="module")
def train_model_dag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(PROJECT_ROOT / "dags" / "train_model.py"))
    assert bag.import_errors == {}
    return bag.dags["train_model"]


class RunXComs:
    """What ``ti.xcom_pull`` returns in one DAG run: the values its finished tasks returned, by task id."""

    def __init__(self, returned: dict[str, Any]) -> None:
        self.returned = returned

    def xcom_pull(self, task_ids: str, key: str = "return_value", **_: Any) -> Any:
        assert key == "return_value"
        return self.returned[task_ids]


def _run_pod(dag: Any, prepared: dict[str, Any], form: dict[str, Any]) -> tuple[dict, list[str]]:
    """The pod the DAG's kubernetes branch creates in a run whose build_training_set returned ``prepared``:
    its templated arguments rendered for the run, the operator built from them as the task does."""
    params = copy.deepcopy(dag.params)
    params.update(form)  # what the trigger form sends
    params = params.validate()
    assert dag.get_task("choose_backend").python_callable(params=params) == "train_on_kubernetes"
    task = copy.deepcopy(dag.get_task("train_on_kubernetes"))
    context = {"ti": RunXComs({"build_training_set": prepared}), "params": params, "run_id": RUN_ID}
    task.render_template_fields(context)
    (rendered,) = task.op_args
    operator = training_pod_operator(rendered, params)
    manifest = ApiClient().sanitize_for_serialization(
        operator.build_pod_request_obj(context=None, dry_run=True)
    )
    kubernetes_validate.validate(manifest, "1.33.0", strict=True)
    return manifest, manifest["spec"]["containers"][0]["args"]


def _arg(args: list[str], flag: str) -> str:
    return args[args.index(flag) + 1]


def test_the_dags_pod_reads_the_runs_dataset_from_s3_and_writes_its_run_folder(
    train_model_dag: Any, s3_bucket: str, small_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_ARTIFACTS_DIR", f"{s3_bucket}/flywheel")
    monkeypatch.setenv("FLYWHEEL_TRAINER_IMAGE", IMAGE)
    monkeypatch.delenv("FLYWHEEL_TRAINER_PVC", raising=False)
    prepared = prepare_run(small_frame, *WINDOW, RUN_ID, get_settings())

    manifest, args = _run_pod(train_model_dag, prepared, {"backend": "kubernetes", "seed": 7, "budget": 12})

    version = prepared["data_version"]
    assert _arg(args, "--dataset") == f"s3://flywheel-test/flywheel/datasets/{version}/training_set.parquet"
    assert (
        _arg(args, "--output") == "s3://flywheel-test/flywheel/training/scheduled__2026-03-02T03_00_00_00_00"
    )
    assert _arg(args, "--seed") == "7" and _arg(args, "--budget") == "12" and "--resume" in args
    assert _arg(args, "--max-epochs") == str(train_model_dag.params["max_epochs"])
    assert manifest["spec"]["containers"][0]["image"] == IMAGE
    # Nothing of the worker's disk leaks into the pod.
    assert not any(str(Path.cwd()) in a or a.startswith(("/tmp", str(get_settings().home))) for a in args)


def test_local_artifacts_reach_the_pod_only_through_the_claim(
    train_model_dag: Any, home, small_frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FLYWHEEL_TRAINER_PVC", raising=False)
    prepared = prepare_run(small_frame, *WINDOW, RUN_ID, home)
    assert prepared["dataset_uri"].startswith(str(home.artifacts_dir))  # the local default, as before
    with pytest.raises(
        UnreachableFromPod, match=r"is on the worker's disk .*set FLYWHEEL_ARTIFACTS_DIR to an"
    ):
        _run_pod(train_model_dag, prepared, {"backend": "kubernetes"})

    monkeypatch.setenv("FLYWHEEL_TRAINER_PVC", "flywheel-artifacts")
    monkeypatch.setenv("FLYWHEEL_TRAINER_MOUNT", "/flywheel")
    manifest, args = _run_pod(train_model_dag, prepared, {"backend": "kubernetes", "seed": 3})
    version = prepared["data_version"]
    assert _arg(args, "--dataset") == f"/flywheel/datasets/{version}/training_set.parquet"
    assert _arg(args, "--output") == "/flywheel/training/scheduled__2026-03-02T03_00_00_00_00"
    assert _arg(args, "--seed") == "3"
    mounts = manifest["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "flywheel-data", "mountPath": "/flywheel"} in mounts
