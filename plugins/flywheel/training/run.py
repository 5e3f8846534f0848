"""Entry point of a training run, the same locally and in the trainer image:

    python -m flywheel.training.run --dataset URI --output URI --budget N --max-epochs E [--resume] [--seed S]
        [--warm-start-from MODEL_URI --warm-start-version V]

It searches hyperparameters (or fine-tunes a model), exports the best model to ``<output>/model/`` and
prints progress lines.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.artifacts.folder import (
    METADATA_FILE,
    METADATA_FORMAT,
    MODEL_DIR,
    MODEL_FILE,
    SPEC_FILE,
    read_metadata,
    score_exported,
    upload_folder,
    write_json,
)
from flywheel.training.dataset import (
    TrainingDataError,
    check_training_set,
    data_version,
    is_local,
    local_path,
)
from flywheel.training.dataset import load_training_set as load
from flywheel.training.trainer import PATIENCE, VAL_FRACTION

RUN_FILE = "run.json"


class RunError(RuntimeError):
    """The run cannot go on with this output folder; the message says why and what to do."""


def emit(line: str) -> None:
    print(line, flush=True)


def _work_dir(output: str) -> Path:
    """A local folder for the run: the output itself, or (object store outputs) a scratch folder."""
    if is_local(output):
        return local_path(output)
    from flywheel.config import get_settings

    base = get_settings().training.workdir
    return base / f"flywheel-train-{hashlib.sha256(output.encode()).hexdigest()[:12]}"


def _claim_output(work: Path, storage: str, version: str, args: argparse.Namespace) -> dict[str, Any] | None:
    """Refuse to mix data versions or to restart without ``--resume``; the record of the run this output
    already holds (``None``: a new run). :func:`_record_run` writes the record."""
    from flywheel.training.search import has_experiment

    record = work / RUN_FILE
    previous = None
    if record.exists():
        previous = json.loads(record.read_text())
        if previous.get("data_version") != version:
            raise RunError(
                f"output {args.output} holds a search over data version {previous.get('data_version')}, "
                f"not {version}: use a new output folder for a new training set"
            )
        if not args.resume:
            raise RunError(f"output {args.output} already holds a search: pass --resume to continue it")
    elif not args.resume and has_experiment(storage):
        raise RunError(f"output {args.output} already holds a search: pass --resume to continue it")
    return previous


def _record_run(work: Path, version: str, args: argparse.Namespace, warm_start: dict[str, Any]) -> None:
    """What this output is for, and how its search started (a resume must start the same way)."""
    write_json(
        work / RUN_FILE,
        {
            "data_version": version,
            "dataset": args.dataset,
            "budget": args.budget,
            "max_epochs": args.max_epochs,
            "seed": args.seed,
            "warm_start": warm_start,
        },
    )


def train(args: argparse.Namespace) -> dict[str, Any]:
    """Run the whole training job for parsed arguments and return the metadata it wrote."""
    from flywheel.training.search import SearchOptions, run_search
    from flywheel.training.space import load_search_space
    from flywheel.training.trainer import prepare_data
    from flywheel.training.trial import load_trainer_state
    from flywheel.training.warm import choose_start, warm_options

    started = time.perf_counter()
    frame = load(args.dataset)
    check_training_set(frame, args.dataset)
    version = data_version(frame)
    model_uri = f"{args.output.rstrip('/')}/{MODEL_DIR}"
    done = read_metadata(model_uri)
    if done is not None:
        if done.get("data_version") != version or not args.resume:
            raise RunError(
                f"{model_uri} already holds a model (data version {done.get('data_version')}); "
                "use a new output folder, or --resume to accept the finished run"
            )
        emit(f"run already complete: {model_uri} (val_auc={done['metrics']['val_auc']:.4f}); nothing to do")
        return done
    work = _work_dir(args.output)
    work.mkdir(parents=True, exist_ok=True)
    storage = str(work / "tune") if is_local(args.output) else f"{args.output.rstrip('/')}/tune"
    previous = _claim_output(work, storage, version, args)
    champion, warm_start = choose_start(
        previous, args.warm_start_from, args.warm_start_version, frame, args.val_fraction, emit
    )
    _record_run(work, version, args, warm_start)

    # Warm: encoded with the champion's spec, so each input means what it meant to its weights.
    data = prepare_data(frame, args.val_fraction, spec=champion.spec if champion else None)
    emit(
        f"dataset {args.dataset}: data version {version}, {len(frame):,} rows "
        f"({int(frame['label'].sum()):,} clicks); train {len(data.train):,} / validation {len(data.val):,} "
        f"(event_ts >= {data.cutoff})"
    )
    load_s = time.perf_counter() - started
    options = SearchOptions(
        budget=args.budget,
        max_epochs=args.max_epochs,
        patience=args.patience,
        seed=args.seed,
        num_cpus=args.num_cpus,
        space=load_search_space(args.search_space),
    )
    if champion is not None:
        options = warm_options(options, champion)  # fewer trials, a narrowed space, the champion's weights
        emit(
            f"fine-tuning {champion.version}: {options.budget} trial(s) (of {args.budget}) in a space "
            f"narrowed around its hyperparameters"
        )
    tick = time.perf_counter()
    outcome = run_search(data, work, options, resume=args.resume, emit=emit, storage=storage)
    search_s = time.perf_counter() - tick

    tick = time.perf_counter()
    model_dir = work / MODEL_DIR
    state = load_trainer_state(outcome.checkpoint_dir)
    from flywheel.training.model import export_model  # torch: only once there is a model to export

    export_model(state, data.spec, model_dir)
    from flywheel.training.trainer import log_loss, roc_auc

    scores = score_exported(model_dir, data.val.sparse, data.val.dense)
    export_s = time.perf_counter() - tick
    metadata = {
        "format": METADATA_FORMAT,
        "model": "dcn",
        "created_at": datetime.now(UTC).replace(tzinfo=None).isoformat(),
        "data_version": version,
        "dataset_uri": args.dataset,
        "params": outcome.best_params,
        "metrics": {
            # Recomputed from the exported file: what serving will score, not what the trial believed.
            "val_auc": roc_auc(data.val.label, scores),
            "val_logloss": log_loss(data.val.label, scores),
            "trial_val_auc": outcome.best_metrics["val_auc"],
            "samples_per_s": outcome.best_metrics.get("samples_per_s"),
        },
        "epochs": {"best": state["best_epoch"], "trained": state["epoch"], "max": args.max_epochs},
        "data": {
            "rows": len(frame),
            "train_rows": len(data.train),
            "val_rows": len(data.val),
            "val_cutoff": data.cutoff,
            "val_fraction": args.val_fraction,
            "click_rate": float(frame["label"].mean()),
        },
        "search": {
            "trial_count": outcome.trial_count,
            "best_trial_id": outcome.best_trial_id,
            "epochs_total": outcome.epochs_total,
            "budget": options.budget,
            "seed": args.seed,
            "scheduler": "asha",
            "searcher": "optuna-tpe",
            "space": options.space.parameters,
            "trials": outcome.trials,
        },
        "warm_start": warm_start,
        "timings": {
            "load_s": load_s,
            "search_s": search_s,
            "export_s": export_s,
            "total_s": time.perf_counter() - started,
        },
        "artifacts": {"model": MODEL_FILE, "feature_spec": SPEC_FILE, "metadata": METADATA_FILE},
        "inputs": data.spec.to_dict()["tensors"],
    }
    write_json(model_dir / METADATA_FILE, metadata)
    if not is_local(args.output):
        upload_folder(model_dir, model_uri)
    emit(
        f"best trial {outcome.best_trial_id}: val_auc={metadata['metrics']['val_auc']:.4f} "
        f"logloss={metadata['metrics']['val_logloss']:.4f} after {state['best_epoch']} epoch(s); "
        f"{outcome.trial_count} trial(s), {outcome.epochs_total} epoch(s) in total"
    )
    emit(f"model written to {model_uri}")
    return metadata


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m flywheel.training.run", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--dataset", required=True, help="training set: Parquet file or folder, path or URI")
    parser.add_argument("--output", required=True, help="run folder (path, file:// or object store URI)")
    parser.add_argument("--budget", type=int, required=True, help="number of trials")
    parser.add_argument("--max-epochs", type=int, required=True, help="epochs per trial at most")
    parser.add_argument("--resume", action="store_true", help="continue the search found in --output")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--patience", type=int, default=PATIENCE, help="epochs without a better AUC")
    parser.add_argument("--val-fraction", type=float, default=VAL_FRACTION, help="latest share of rows")
    parser.add_argument("--num-cpus", type=int, default=min(2, os.cpu_count() or 1), help="trials at once")
    parser.add_argument("--search-space", default=None, help="YAML file (default: the packaged one)")
    parser.add_argument(
        "--warm-start-from",
        default=None,
        help="model folder (path or URI) to fine-tune when its feature spec fits; else a cold search",
    )
    parser.add_argument("--warm-start-version", default=None, help="its registry version, for the record")
    args = parser.parse_args(argv)
    for name in ("budget", "max_epochs", "patience", "num_cpus"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from flywheel.artifacts.spec import FeatureSpecError
    from flywheel.config import SettingsError
    from flywheel.training.search import SearchError
    from flywheel.training.space import SearchSpaceError
    from flywheel.training.warm import WarmStartError

    try:
        train(args)
    except (
        TrainingDataError,
        RunError,
        SearchError,
        SearchSpaceError,
        FeatureSpecError,
        SettingsError,
        WarmStartError,
    ) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
