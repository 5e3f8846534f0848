"""Training runs as a library: snapshot a training set, name a run's folder, register what a run left
behind, or all of it in one call (``train_and_register``) for notebooks, tests and benchmarks.

Each step is idempotent per Airflow run: the snapshot is content-addressed, the run folder is named by
the run id (a retry resumes its search), and registration is keyed on (data version, artifact).
"""

from __future__ import annotations

import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from flywheel.artifacts.folder import MODEL_DIR, read_metadata
from flywheel.artifacts.storage import join
from flywheel.config import Settings, get_settings
from flywheel.training.dataset import check_training_set, load_training_set, snapshot_training_set

log = logging.getLogger(__name__)
BACKENDS = ("local", "kubernetes")


def run_folder(settings: Settings, run_id: str) -> Path | str:
    """``<artifacts>/training/<run id>``: one folder per Airflow run, so a retry finds its own search.

    A ``Path`` for local artifacts, a URI string when ``FLYWHEEL_ARTIFACTS_DIR`` is an object store.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", run_id).strip("._") or "run"
    return join(settings.artifacts_dir, "training", safe)


def prepare_training_set(
    dataset: pd.DataFrame | str | Path, settings: Settings | None = None
) -> dict[str, str]:
    """Check the training set and snapshot it; returns ``{"dataset_uri", "data_version"}``.

    An empty or single-class set fails here, before anything is written or registered.
    """
    return _prepare(dataset, settings or get_settings())[0]


def _prepare(dataset: pd.DataFrame | str | Path, settings: Settings) -> tuple[dict[str, str], pd.DataFrame]:
    source = "the DataFrame given" if isinstance(dataset, pd.DataFrame) else str(dataset)
    frame = dataset if isinstance(dataset, pd.DataFrame) else load_training_set(dataset)
    check_training_set(frame, source)
    uri, version = snapshot_training_set(frame, settings.artifacts_dir)
    log.info("training set %s: %d rows, data version %s -> %s", source, len(frame), version, uri)
    return {"dataset_uri": uri, "data_version": version}, frame


def register_candidate(
    output_uri: str,
    run_id: str,
    window: tuple[datetime, datetime] | None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Register the model a finished run left in ``<output>/model`` as a candidate (once per artifact),
    with the training window ``[start, end)`` that monitoring profiles as its drift reference."""
    from flywheel import registry
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    artifact_uri = f"{str(output_uri).rstrip('/')}/{MODEL_DIR}"
    metadata = read_metadata(artifact_uri)
    if metadata is None:
        raise FileNotFoundError(f"{artifact_uri} has no metadata.json: the training run did not finish")
    search = metadata["search"]
    metrics = {
        **metadata["metrics"],
        "epochs": metadata["epochs"],
        "trial_count": search["trial_count"],
        "best_trial_id": search["best_trial_id"],
        "timings": metadata["timings"],
        # The version it was fine-tuned from; None: a cold search (the reason is in metadata.json).
        "warm_start_from": (metadata.get("warm_start") or {}).get("from"),
    }
    version = registry.register_candidate(
        data_version=metadata["data_version"],
        artifact_uri=artifact_uri,
        params=metadata["params"],
        metrics=metrics,
        run_id=run_id,
        window=window,
        warehouse=open_warehouse(settings.warehouse_url),
    )
    log.info(
        "registered %s as candidate %s (val_auc %.4f)", artifact_uri, version, metadata["metrics"]["val_auc"]
    )
    return {
        "version": version,
        "val_auc": metadata["metrics"]["val_auc"],
        "artifact_uri": artifact_uri,
        "data_version": metadata["data_version"],
        "warm_start_from": metrics["warm_start_from"],
    }


def warm_start_source(settings: Settings) -> dict[str, str] | None:
    """The model a warm start fine-tunes: the one in service (``registry.in_service``: the champion, or
    before any promotion the newest blessed model), as ``{"version", "artifact_uri"}``; ``None`` when
    nothing is in service or only a candidate the gate has not judged (never fine-tune an unjudged model)."""
    from flywheel import registry
    from flywheel.warehouse import open_warehouse

    model = registry.in_service(open_warehouse(settings.warehouse_url))
    if model is None:
        log.info("warm start asked for, but no model is in service (%s): cold search", registry.TABLE)
        return None
    if model.status == "candidate":
        log.info("warm start asked for, but %s is not judged yet (candidate): cold search", model.version)
        return None
    log.info("warm start asked for: the model in service is %s (%s)", model.version, model.status)
    return {"version": model.version, "artifact_uri": model.artifact_uri}


def warm_start_args(source: dict[str, str] | None, uri: Any = None) -> list[str]:
    """The entry point's arguments for a warm start from ``source`` (its folder through ``uri``, e.g. as a
    pod sees it); none for a cold search."""
    if not source:
        return []
    where = uri(source["artifact_uri"]) if uri else source["artifact_uri"]
    return ["--warm-start-from", where, "--warm-start-version", source["version"]]


def train_and_register(
    dataset: pd.DataFrame | str | Path,
    settings: Settings | None = None,
    budget: int | None = None,
    max_epochs: int | None = None,
    backend: str = "local",
    run_id: str = "manual",
    seed: int = 0,
    timeout: float | None = None,
    logger: logging.Logger | None = None,
    warm_start: bool = False,
) -> dict[str, Any]:
    """Snapshot, train with the local backend, register; returns version, val_auc, artifact, data version
    and the version it was fine-tuned from (``warm_start``: from the model in service when its spec fits).

    ``budget`` and ``max_epochs`` default to ``FLYWHEEL_TRAIN_BUDGET`` and ``FLYWHEEL_TRAIN_MAX_EPOCHS``.

    The Kubernetes backend is a pod of its own task: use ``prepare_training_set``, then
    ``build_training_pod_operator(...)``, then ``register_candidate``.
    """
    from flywheel.training import backends

    if backend != "local":
        raise ValueError(
            f"train_and_register runs the local backend only, got backend={backend!r}; for Kubernetes wire "
            "prepare_training_set -> build_training_pod_operator -> register_candidate as three tasks"
        )
    settings = settings or get_settings()
    prepared, frame = _prepare(dataset, settings)
    output = run_folder(settings, run_id)
    backends.train(
        prepared["dataset_uri"],
        str(output),
        budget or settings.training.budget,
        max_epochs or settings.training.max_epochs,
        resume=True,
        timeout=timeout,
        logger=logger or log,
        seed=seed,
        extra_args=warm_start_args(warm_start_source(settings) if warm_start else None),
    )
    return register_candidate(str(output), run_id, data_window(frame), settings)


def data_window(frame: pd.DataFrame) -> tuple[datetime, datetime] | None:
    """The hours a training set spans, ``[first hour, last hour + 1h)``; None without ``event_ts``."""
    if "event_ts" not in frame or frame.empty:
        return None
    hours = pd.to_datetime(frame["event_ts"]).dt.floor("h")
    return hours.min().to_pydatetime(), (hours.max() + pd.Timedelta(hours=1)).to_pydatetime()
