"""The Kubernetes backend: the same entry point in the trainer image, on a GPU node, as a pod operator.

The cluster is reached through an Airflow Connection (``kubernetes_conn_id``); the trainer's own secrets
(object store keys, ``AWS_ENDPOINT_URL`` for MinIO) come from a Kubernetes Secret named by
``FLYWHEEL_TRAINER_SECRET``, loaded as env. Data and checkpoints live behind object store URIs or on a PVC.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from flywheel.artifacts.storage import is_local, local_path
from flywheel.training.backends import training_command

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
#: Ray's object store lives in /dev/shm, which a container gets only 64 MiB of unless a volume replaces it.
SHM_SIZE = "8Gi"


@dataclass(frozen=True)
class TrainerPodSettings:
    """Where and as whom the trainer pod runs, from ``FLYWHEEL_TRAINER_*`` (environment only: parse-safe)."""

    image: str
    namespace: str
    kubernetes_conn_id: str
    secret_name: str | None
    pvc_claim_name: str | None
    mount_path: str
    service_account_name: str | None

    @classmethod
    def from_env(cls) -> TrainerPodSettings:
        from flywheel.config import get_settings

        pod = get_settings().trainer
        return cls(
            image=pod.image,
            namespace=pod.namespace,
            kubernetes_conn_id=pod.kubernetes_conn_id,
            secret_name=pod.secret_name,
            pvc_claim_name=pod.pvc_claim_name,
            mount_path=pod.mount_path,
            service_account_name=pod.service_account_name,
        )


class UnreachableFromPod(ValueError):
    """A dataset or run folder lives on the worker's own disk, which the trainer pod cannot see."""


def pod_uri(
    uri: str | os.PathLike[str],
    artifacts_dir: str | os.PathLike[str],
    pvc_claim_name: str | None,
    mount_path: str,
) -> str:
    """How the trainer pod addresses a dataset or run folder the worker addresses as ``uri``.

    Object store URIs are the same everywhere. A local path is reachable only through the PVC, which holds
    the artifacts folder at its root: the workers mount it at ``FLYWHEEL_ARTIFACTS_DIR``, the pod at
    ``mount_path``.
    """
    if not is_local(uri):
        return str(uri)
    where = f"{uri} is on the worker's disk (FLYWHEEL_ARTIFACTS_DIR={artifacts_dir})"
    if not pvc_claim_name:
        raise UnreachableFromPod(
            f"the Kubernetes trainer cannot read {where}: set FLYWHEEL_ARTIFACTS_DIR to an object store URI "
            "(s3://bucket/prefix), or FLYWHEEL_TRAINER_PVC to a claim the workers mount at that folder"
        )
    path, root = local_path(uri), local_path(artifacts_dir)
    if not path.is_relative_to(root):
        raise UnreachableFromPod(
            f"{where} but outside that folder, so not on the claim {pvc_claim_name}: keep datasets and "
            "run folders under FLYWHEEL_ARTIFACTS_DIR"
        )
    return str(PurePosixPath(mount_path, path.relative_to(root)))


def build_training_pod_operator(
    task_id: str,
    image: str | None,
    dataset_uri: str,
    output_uri: str,
    budget: int,
    max_epochs: int,
    gpu_count: int = 1,
    namespace: str | None = None,
    node_selector: Mapping[str, str] | None = None,
    tolerations: Sequence[Any] | None = None,
    secret_name: str | None = None,
    pvc_claim_name: str | None = None,
    mount_path: str | None = None,
    cpu: int = 4,
    memory: str = "32Gi",
    seed: int = 0,
    kubernetes_conn_id: str | None = None,
    timeout_s: int | None = None,
    extra_args: Sequence[str] = (),
    **operator_kwargs: Any,
) -> Any:
    """A ``KubernetesPodOperator`` running ``python -m flywheel.training.run ... --resume`` on a GPU node.

    ``dataset_uri``/``output_uri`` may be Jinja templates (``arguments`` is a templated field), e.g. an XCom
    of the snapshot task. Arguments left ``None`` come from :class:`TrainerPodSettings` (environment).
    Always ``--resume``: a retried pod continues the search it finds in ``output_uri``.
    """
    from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
    from kubernetes.client import models as k8s

    defaults = TrainerPodSettings.from_env()
    secret_name = secret_name if secret_name is not None else defaults.secret_name
    pvc_claim_name = pvc_claim_name if pvc_claim_name is not None else defaults.pvc_claim_name
    mount_path = mount_path or defaults.mount_path
    if gpu_count < 0:
        raise ValueError(f"gpu_count must be >= 0, got {gpu_count}")

    args = training_command(dataset_uri, output_uri, budget, max_epochs, resume=True, seed=seed)[3:]
    args += ["--num-cpus", str(cpu), *extra_args]  # extra_args: e.g. a warm start's --warm-start-from
    limits = {"cpu": str(cpu), "memory": memory}
    if gpu_count:
        limits[GPU_RESOURCE] = str(gpu_count)
    volumes = [
        k8s.V1Volume(name="dshm", empty_dir=k8s.V1EmptyDirVolumeSource(medium="Memory", size_limit=SHM_SIZE))
    ]
    mounts = [k8s.V1VolumeMount(name="dshm", mount_path="/dev/shm")]
    if pvc_claim_name:
        volumes.append(
            k8s.V1Volume(
                name="flywheel-data",
                persistent_volume_claim=k8s.V1PersistentVolumeClaimVolumeSource(claim_name=pvc_claim_name),
            )
        )
        mounts.append(k8s.V1VolumeMount(name="flywheel-data", mount_path=mount_path))
    env_from = (
        [k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name=secret_name, optional=False))]
        if secret_name
        else []
    )
    if tolerations is None:
        tolerations = (
            [k8s.V1Toleration(key=GPU_RESOURCE, operator="Exists", effect="NoSchedule")] if gpu_count else []
        )
    return KubernetesPodOperator(
        task_id=task_id,
        name=f"flywheel-{task_id.replace('_', '-')}",
        image=image or defaults.image,
        namespace=namespace or defaults.namespace,
        kubernetes_conn_id=kubernetes_conn_id or defaults.kubernetes_conn_id,
        arguments=args,
        env_vars=[
            k8s.V1EnvVar(name="RAY_TMPDIR", value="/tmp/ray"),
            k8s.V1EnvVar(name="FLYWHEEL_TRAIN_WORKDIR", value=f"{mount_path}/work"),
            k8s.V1EnvVar(name="PYTHONUNBUFFERED", value="1"),
        ],
        env_from=env_from,
        container_resources=k8s.V1ResourceRequirements(
            requests={"cpu": str(cpu), "memory": memory}, limits=limits
        ),
        node_selector=dict(DEFAULT_NODE_SELECTOR if node_selector is None else node_selector),
        tolerations=list(tolerations),
        volumes=volumes,
        volume_mounts=mounts,
        service_account_name=defaults.service_account_name,
        labels={"app.kubernetes.io/name": "flywheel-trainer", "app.kubernetes.io/part-of": "flywheel"},
        # The image runs as uid 1000; fs_group makes the PVC writable for it.
        security_context=k8s.V1PodSecurityContext(run_as_non_root=True, run_as_user=1000, fs_group=1000),
        container_security_context=k8s.V1SecurityContext(allow_privilege_escalation=False),
        get_logs=True,
        durable=True,  # a retried task reattaches to the running pod instead of starting a second one
        on_finish_action="delete_succeeded_pod",
        startup_timeout_seconds=900,  # a GPU node may have to scale up first
        active_deadline_seconds=timeout_s,
        **operator_kwargs,
    )
