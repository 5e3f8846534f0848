"""What the ``train_model`` DAG calls: pick the training window, snapshot its training set, train (in a
subprocess or a pod), register the candidate. One function per task, named as the task; they pass small
JSON-able pointers (URIs, versions), never data.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import naive_utc

log = logging.getLogger(__name__)

#: Default span of impressions a model learns from, ending at the last complete hour of labels.
DEFAULT_WINDOW_HOURS = 48


def latest_complete_hour(settings: Settings) -> datetime:
    """The newest hour ``build_features`` published: the window ends at its start, since that hour's clicks
    may still arrive."""
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import PUBLISHED_HOURS_TABLE, newest_published_hour

    warehouse = open_warehouse(settings.warehouse_url)
    if not warehouse.table_exists(PUBLISHED_HOURS_TABLE):
        raise ValueError(
            f"{PUBLISHED_HOURS_TABLE} does not exist in the warehouse: build_features has not published "
            "any features yet"
        )
    newest = newest_published_hour(warehouse)
    if newest is None:
        raise ValueError("no hour of features is published yet: there is nothing to train on")
    return newest


def training_window(
    asset_events: Iterable[Any] | None, params: Mapping[str, Any], settings: Settings
) -> tuple[datetime, datetime]:
    """``[end - window_hours, end)``: ``end`` from the params, a ``retrain_requested`` event, or the data,
    and never later than the start of the evaluation's held-out hours (:func:`before_held_out`)."""
    hours = int(params.get("window_hours") or DEFAULT_WINDOW_HOURS)
    ends = [e.extra["window_end"] for e in asset_events or [] if e.extra and e.extra.get("window_end")]
    if params.get("window_end"):
        end = naive_utc(params["window_end"])
    elif ends:
        end = max(naive_utc(x) for x in ends)
    else:
        end = latest_complete_hour(settings)
    end = before_held_out(end, settings)
    return end - timedelta(hours=hours), end


def before_held_out(end: datetime, settings: Settings) -> datetime:
    """``end``, or the start of the held-out window (the newest ``FLYWHEEL_EVAL_HELD_OUT_HOURS`` published
    hours) if that is earlier: ``evaluate_model`` judges every candidate on those hours, so none may learn
    from them. With too few hours published for a held-out window, ``end`` as it is (and a warning:
    evaluation refuses until there are enough)."""
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import held_out_window

    held_out = settings.evaluation.held_out_hours
    try:
        start, _ = held_out_window(open_warehouse(settings.warehouse_url), held_out)
    except ValueError as exc:
        log.warning("no held-out window to keep out of the training window: %s", exc)
        return end
    if end > start:
        log.info(
            "the training window ends at %s, where the %d held-out hours of evaluation begin (asked: %s)",
            start,
            held_out,
            end,
        )
        return start
    return end


def build_training_set(
    asset_events: Iterable[Any] | None,
    params: Mapping[str, Any],
    run_id: str,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Fetch the point-in-time training set from the feature store and snapshot it under a data version."""
    from flywheel.feature_store.store import training_set

    settings = settings or get_settings()
    start, end = training_window(asset_events, params, settings)
    frame = published_rows(training_set(start, end, settings), start, end, settings)
    log.info(
        "training window [%s, %s): %d impressions, %.2f%% clicked",
        start,
        end,
        len(frame),
        100 * frame["label"].mean(),
    )
    # Read here, under the warehouse pool, and handed on: a retried train task starts the same way.
    return {**prepare_run(frame, start, end, run_id, settings), "warm_start": warm_start(params, settings)}


def warm_start(params: Mapping[str, Any], settings: Settings) -> dict[str, str] | None:
    """The model in service to fine-tune when the run asks for a warm start (the form's ``warm_start``;
    unset, as in drift-triggered runs: ``FLYWHEEL_TRAIN_WARM_START``), else ``None``: a cold search."""
    from flywheel.training.runs import warm_start_source

    wanted = params.get("warm_start")
    if wanted is None:
        wanted = settings.training.warm_start
    if not wanted:
        log.info("warm start off (the form's warm_start / FLYWHEEL_TRAIN_WARM_START): cold search")
        return None
    return warm_start_source(settings)


def published_rows(frame: Any, start: datetime, end: datetime, settings: Settings) -> Any:
    """The rows of ``frame`` whose hour ``build_features`` published after every gate passed.

    An hour whose gate failed (or that a run is rebuilding) stays out until a rerun publishes it.
    """
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import keep_published_rows, published_hours

    published = published_hours(open_warehouse(settings.warehouse_url), start, end)
    if not published:
        raise ValueError(
            f"no hour of the training window [{start}, {end}) is published: build_features has not passed "
            "its gates for it (features.published_hours); rerun build_features for it or pick another window"
        )
    return keep_published_rows(frame, published, "training set")


def prepare_run(
    frame: Any, start: datetime, end: datetime, run_id: str, settings: Settings
) -> dict[str, Any]:
    """Snapshot a window's training set and name the run's folder: what every later task is handed."""
    from flywheel.training.runs import prepare_training_set, run_folder

    prepared = prepare_training_set(frame, settings)
    return {
        **prepared,
        "window_start": start.isoformat(),
        "window_end": end.isoformat(),
        "rows": len(frame),
        "output_uri": str(run_folder(settings, run_id)),
    }


def choose_backend(params: Mapping[str, Any]) -> str:
    """The task that runs the search: ``train`` (a local subprocess) or ``train_on_kubernetes``."""
    return "train_on_kubernetes" if params.get("backend") == "kubernetes" else "train"


def train(prepared: Mapping[str, Any], params: Mapping[str, Any], logger: logging.Logger) -> dict:
    """The search as a subprocess in its own process group, its output streamed into the task log."""
    from flywheel.training import backends
    from flywheel.training.runs import warm_start_args

    metadata = backends.train(
        prepared["dataset_uri"],
        prepared["output_uri"],
        int(params["budget"]),
        int(params["max_epochs"]),
        resume=True,  # a retried task continues the search it finds in output_uri
        logger=logger,
        seed=int(params.get("seed") or 0),
        extra_args=warm_start_args(prepared.get("warm_start")),
    )
    return trained(metadata, logger)


def trained(metadata: Mapping[str, Any], logger: logging.Logger | None) -> dict[str, Any]:
    """What a train task returns, once its log says how the search started (fine-tuned or cold, and why)."""
    logger = logger or log
    start = metadata.get("warm_start") or {}
    if start.get("from"):
        logger.info("fine-tuned from %s: %s", start["from"], start.get("reason"))
    else:
        logger.info("cold search: %s", start.get("reason", "no warm start"))
    return {"val_auc": metadata["metrics"]["val_auc"], "warm_start_from": start.get("from")}


def training_pod_operator(
    prepared: Mapping[str, Any], params: Mapping[str, Any], settings: Settings | None = None
) -> Any:
    """The pod operator of one run: its dataset and run folder as the pod addresses them, its budget,
    epochs and seed. Raises ``UnreachableFromPod`` when the artifacts are on the worker's own disk."""
    from flywheel.training.kubernetes import build_training_pod_operator, pod_uri
    from flywheel.training.runs import warm_start_args

    settings = settings or get_settings()
    pod = settings.trainer

    def for_pod(uri: str) -> str:
        return pod_uri(uri, settings.artifacts_dir, pod.pvc_claim_name, pod.mount_path)

    return build_training_pod_operator(
        task_id="train_on_kubernetes",
        image=None,  # FLYWHEEL_TRAINER_IMAGE; cluster, namespace, secret and PVC: FLYWHEEL_TRAINER_*
        dataset_uri=for_pod(prepared["dataset_uri"]),
        output_uri=for_pod(prepared["output_uri"]),
        budget=int(params["budget"]),
        max_epochs=int(params["max_epochs"]),
        seed=int(params.get("seed") or 0),
        extra_args=warm_start_args(prepared.get("warm_start"), for_pod),
    )


def train_on_kubernetes(
    prepared: Mapping[str, Any],
    params: Mapping[str, Any],
    context: Mapping[str, Any],
    settings: Settings | None = None,
) -> dict:
    """The search as a pod on a GPU node, its log streamed into the task log; it leaves the model where
    ``register_candidate`` looks for it (``<output_uri>/model``)."""
    from flywheel.artifacts.folder import MODEL_DIR, read_metadata
    from flywheel.training.backends import TrainingFailed

    training_pod_operator(prepared, params, settings).execute(context)
    model_uri = f"{str(prepared['output_uri']).rstrip('/')}/{MODEL_DIR}"
    metadata = read_metadata(model_uri)
    if metadata is None:
        raise TrainingFailed(
            f"the trainer pod succeeded but {model_uri}/metadata.json is missing: check that the pod and "
            "the workers see the same FLYWHEEL_ARTIFACTS_DIR (bucket and endpoint, or claim)"
        )
    return trained(metadata, log)


def register_candidate(
    prepared: Mapping[str, Any], run_id: str, settings: Settings | None = None
) -> dict[str, Any]:
    """Register the finished run's model as a candidate with its training window (idempotent) and
    describe it for the ``model_candidate`` event; monitoring profiles the window when it serves."""
    from flywheel.training import runs

    settings = settings or get_settings()
    window = (naive_utc(prepared["window_start"]), naive_utc(prepared["window_end"]))
    registered = runs.register_candidate(prepared["output_uri"], run_id, window, settings)
    log.info(
        "candidate %s: validation AUC %.4f on data version %s (window %s .. %s)",
        registered["version"],
        registered["val_auc"],
        registered["data_version"],
        prepared["window_start"],
        prepared["window_end"],
    )
    return {**registered, "window_start": prepared["window_start"], "window_end": prepared["window_end"]}
