"""The hyperparameter search: Ray Tune with ASHA (early stopping of weak trials) and Optuna's TPE sampler.

The experiment lives under the run's output folder, so a rerun with ``resume`` picks it up: finished
trials are kept, interrupted ones continue from their last epoch checkpoint, and missing ones start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flywheel.artifacts.storage import tune_storage
from flywheel.config import get_settings
from flywheel.training.space import SearchSpace, load_search_space
from flywheel.training.trainer import PATIENCE, TrainingData
from flywheel.training.trial import STARTS_DIR, TrialSettings, train_trial

EXPERIMENT = "search"
#: Save the experiment state at least this often (seconds), so a killed driver loses little on resume.
STATE_PERIOD_S = 2


class SearchError(RuntimeError):
    """The search produced no usable trial; the message says where the trial errors are."""


@dataclass(frozen=True)
class SearchOptions:
    budget: int  # number of trials
    max_epochs: int
    patience: int = PATIENCE
    seed: int = 0
    scheduler: str = "asha"  # "asha" or "fifo" (every trial runs to max_epochs or patience)
    searcher: str = "tpe"  # "tpe" (Optuna's TPE sampler) or "random" (Tune's random variants)
    grace_period: int = 1
    reduction_factor: int = 3
    num_cpus: int = 2
    first_guess: bool = True  # try DEFAULT_PARAMS (or first_params) as the first trial
    first_params: dict[str, Any] | None = None  # a warm start's first trial: near the champion's params
    # A warm start: the state dict every trial starts from (a checkpoint, when there is one, wins).
    initial_weights: dict[str, Any] | None = None
    space: SearchSpace = field(default_factory=load_search_space)
    # Stop the whole search once its trials have trained this many epochs (benchmarks compare searches
    # at equal cost); None: the trial budget alone decides. Not carried across a resume.
    max_total_epochs: int | None = None


@dataclass
class SearchOutcome:
    best_trial_id: str
    best_params: dict[str, Any]
    best_metrics: dict[str, Any]  # the best trial's epoch with the highest validation AUC
    checkpoint_dir: Path  # the best trial's last checkpoint; it holds the weights of its best epoch
    trial_count: int
    epochs_total: int
    trials: list[dict[str, Any]]


def experiment_path(storage: str) -> str:
    """Where the experiment of a run lives: ``<storage>/search`` (a local folder or an object store URI)."""
    return f"{storage.rstrip('/')}/{EXPERIMENT}"


def has_experiment(storage: str) -> bool:
    from ray import tune

    root, filesystem = tune_storage(storage)
    return tune.Tuner.can_restore(experiment_path(root), storage_filesystem=filesystem)


@contextlib.contextmanager
def ray_session(output: Path, num_cpus: int, object_store_bytes: int) -> Iterator[int]:
    """A private, local Ray instance for one search (yields the GPU count); always shut down after.

    Ray's sockets live in its temp dir, whose path must stay short (AF_UNIX limit), hence the fallback.
    """
    import optuna
    import ray
    import torch

    configured = get_settings().training.ray_tmpdir  # RAY_TMPDIR, e.g. the trainer image's /tmp/ray
    temp = str(configured or output / "ray")
    if configured is None and len(temp) >= 60:
        temp = tempfile.mkdtemp(prefix="fw-ray-")
    Path(temp).mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no phoning home from a training pod
    os.environ["TUNE_GLOBAL_CHECKPOINT_S"] = str(STATE_PERIOD_S)
    os.environ["TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"] = "0"
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")  # our progress lines instead of Ray's tables
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    gpus = torch.cuda.device_count()
    ray.init(
        num_cpus=num_cpus,
        num_gpus=gpus,
        object_store_memory=max(object_store_bytes, 80 * 1024**2),
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        _temp_dir=temp,
        log_to_driver=False,
        logging_level="warning",
        configure_logging=True,
    )
    try:
        yield gpus
    finally:
        ray.shutdown()
        if configured is None:  # ours to remove; a configured folder is the deployment's
            shutil.rmtree(temp, ignore_errors=True)


def trial_dirname(trial: Any) -> str:
    """Short trial folder names (Ray's default repeats every parameter and hits path limits)."""
    return f"trial_{trial.trial_id}"


def tune_config(options: SearchOptions) -> Any:
    """Ray Tune's settings for a new search: the scheduler, the searcher and how many trials run at once."""
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler, FIFOScheduler
    from ray.tune.search.basic_variant import BasicVariantGenerator
    from ray.tune.search.optuna import OptunaSearch

    from flywheel.training.trainer import DEFAULT_PARAMS

    if options.scheduler not in ("asha", "fifo"):
        raise ValueError(f"unknown scheduler {options.scheduler!r}: use asha or fifo")
    if options.searcher not in ("tpe", "random"):
        raise ValueError(f"unknown searcher {options.searcher!r}: use tpe or random")
    space = options.space
    at_once = max(1, min(options.num_cpus, options.budget))  # one CPU per trial
    # Both searchers get the same first guess (or none), so neither starts from a better point.
    guess = options.first_params or DEFAULT_PARAMS
    first = [{k: v for k, v in guess.items() if k in space.parameters}] if options.first_guess else None
    if options.searcher == "tpe":
        search_alg = OptunaSearch(sampler=TPESampler(seed=options.seed), points_to_evaluate=first)
    else:
        # Capped here too: uncapped, Tune queues up to 200 variants, which an epoch budget leaves unstarted.
        search_alg = BasicVariantGenerator(first, max_concurrent=at_once, random_state=options.seed)
    scheduler = FIFOScheduler()
    if options.scheduler == "asha":
        scheduler = ASHAScheduler(
            max_t=options.max_epochs,
            grace_period=options.grace_period,
            reduction_factor=options.reduction_factor,
        )
    return tune.TuneConfig(
        metric=space.metric,
        mode=space.mode,
        num_samples=options.budget,
        scheduler=scheduler,
        search_alg=search_alg,
        max_concurrent_trials=at_once if options.searcher == "tpe" else None,  # wraps only a Searcher
        trial_dirname_creator=trial_dirname,
        reuse_actors=True,  # a new worker process per trial would re-import torch each time
    )


def epoch_budget(limit: int) -> Any:
    """A Tune stopper that ends the search (running trials included) after ``limit`` epochs in all."""
    from ray.tune.stopper import Stopper

    class EpochBudget(Stopper):
        def __init__(self) -> None:
            # (trial, epoch) pairs: a trial that returns on its own is reported once more, as a duplicate.
            self.seen: set[tuple[str, Any]] = set()

        def __call__(self, trial_id: str, result: dict[str, Any]) -> bool:
            self.seen.add((trial_id, result.get("training_iteration")))
            return False

        def stop_all(self) -> bool:
            return len(self.seen) >= limit

    return EpochBudget()


def _tuner(
    data: TrainingData,
    output: Path,
    storage: str,
    options: SearchOptions,
    gpus: int,
    callbacks: list[Any],
    resume: bool,
) -> Any:
    from ray import tune

    concurrency = max(1, min(options.num_cpus, options.budget))
    settings = TrialSettings(
        max_epochs=options.max_epochs,
        patience=options.patience,
        seed=options.seed,
        starts_dir=str(output / STARTS_DIR),
        initial_weights=options.initial_weights,
    )
    resources = {"cpu": 1, "gpu": gpus / concurrency if gpus else 0}
    trainable = tune.with_resources(
        tune.with_parameters(train_trial, data=data, settings=settings), resources
    )
    # An object store is reached through the dataset's own fsspec filesystem (its endpoint and keys).
    root, filesystem = tune_storage(storage)
    path = experiment_path(root)
    if resume and tune.Tuner.can_restore(path, storage_filesystem=filesystem):
        # resume_errored retries interrupted trials from their checkpoints; restart_errored breaks Optuna.
        return tune.Tuner.restore(path, trainable, resume_errored=True, storage_filesystem=filesystem)
    config = tune_config(options)
    if filesystem is None and Path(path).exists():
        # A leftover that cannot be restored (killed before its first state save): start clean.
        shutil.rmtree(path)
    return tune.Tuner(
        trainable,
        param_space=options.space.to_tune(),
        tune_config=config,
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=root,
            storage_filesystem=filesystem,
            stop=epoch_budget(options.max_total_epochs) if options.max_total_epochs else None,
            # Retention is CheckpointRetention's job: Tune's num_to_keep can strand a resume (see there).
            checkpoint_config=tune.CheckpointConfig(num_to_keep=None),
            failure_config=tune.FailureConfig(max_failures=1),
            callbacks=callbacks,
            verbose=0,
        ),
    )


def run_search(
    data: TrainingData,
    output: Path,
    options: SearchOptions,
    resume: bool = True,
    emit: Callable[[str], None] = print,
    timeline: list[dict[str, Any]] | None = None,
    storage: str | None = None,
) -> SearchOutcome:
    """Run (or resume) the search inside a Ray session and summarise its trials.

    ``output`` is a local working folder (trial start logs, Ray's temp dir); the experiment and its
    checkpoints go to ``storage`` (default ``<output>/tune``), which may be an object store URI.
    """
    storage = storage or str(output / "tune")
    from flywheel.training.progress import ProgressCallback
    from flywheel.training.retention import CheckpointRetention, prune_finished

    nbytes = sum(a.nbytes for s in (data.train, data.val) for a in (s.sparse, s.dense, s.label))
    nbytes += sum(w.nbytes for w in (options.initial_weights or {}).values())
    with ray_session(output, options.num_cpus, 2 * nbytes + 64 * 1024**2) as gpus:
        callback = ProgressCallback(emit, options.max_epochs, options.space.metric, timeline)
        tuner = _tuner(data, output, storage, options, gpus, [callback, CheckpointRetention()], resume)
        started = time.perf_counter()
        grid = tuner.fit()
        if "://" not in storage:
            prune_finished(experiment_path(storage))
        emit(f"search finished in {time.perf_counter() - started:.1f} s: {len(grid)} trial(s)")
        return summarise(grid, options.space.metric)


def _local_checkpoint(checkpoint: Any) -> Path:
    """The checkpoint's folder on this machine: downloaded first when it lives in an object store."""
    from pyarrow.fs import LocalFileSystem

    if isinstance(checkpoint.filesystem, LocalFileSystem):
        return Path(checkpoint.path)
    return Path(checkpoint.to_directory())


def summarise(grid: Any, metric: str) -> SearchOutcome:
    """The best trial (highest validation AUC at any epoch) and a per-trial summary."""
    trials, best = [], None
    for result in grid:
        frame = result.metrics_dataframe
        if frame is None or frame.empty or metric not in frame:
            if result.error is not None:  # no error: stopped (max_total_epochs) before its first epoch
                trials.append({"trial_id": result.metrics.get("trial_id"), "error": str(result.error)})
            continue
        finite = frame[metric].dropna()
        if finite.empty:  # diverged (a learning rate too high gives NaN scores): a result, not a crash
            trials.append({"trial_id": result.metrics.get("trial_id"), "error": f"no finite {metric}"})
            continue
        top = frame.loc[finite.idxmax()].to_dict()
        row = {
            "trial_id": top["trial_id"],
            "epochs": int(frame["training_iteration"].max()),
            metric: float(top[metric]),
            "best_epoch": int(top["training_iteration"]),
            "params": dict(result.config),
            "error": str(result.error) if result.error else None,
        }
        trials.append(row)
        if result.checkpoint is not None and (best is None or row[metric] > best[0][metric]):
            best = (row, top, result)
    if best is None:
        raise SearchError(
            f"no trial reported {metric} with a checkpoint; see error.txt in the trial folders of "
            f"{grid.experiment_path}"
        )
    row, top, result = best
    keep = ("val_auc", "val_logloss", "train_loss", "samples_per_s", "training_iteration")
    return SearchOutcome(
        best_trial_id=row["trial_id"],
        best_params=row["params"],
        best_metrics={k: float(top[k]) for k in keep if k in top},
        checkpoint_dir=_local_checkpoint(result.checkpoint),
        trial_count=len(trials),
        epochs_total=sum(t.get("epochs", 0) for t in trials),
        trials=trials,
    )
