"""One Ray Tune trial: train a configuration epoch by epoch, report and checkpoint after every epoch.

A trial restored from a checkpoint continues where it stopped; one whose checkpoint is already complete
(last epoch, or patience spent) trains nothing again.
"""

from __future__ import annotations

import os
import tempfile
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.training.trainer import Trainer, TrainingData

CHECKPOINT_FILE = "trainer.pt"
#: Per-trial start log (one line each time a trial process starts): how tests and people see reruns.
STARTS_DIR = "trial_starts"


@dataclass(frozen=True)
class TrialSettings:
    """What every trial shares and the search does not tune."""

    max_epochs: int
    patience: int
    seed: int
    threads: int = 1
    starts_dir: str | None = None
    #: A warm start's weights (the model in service); a trial resumed from its checkpoint ignores them.
    initial_weights: dict[str, Any] | None = None


def trial_seed(seed: int, trial_id: str) -> int:
    """A seed per trial: differs between trials, and stays the same when a trial resumes."""
    return (seed * 1_000_003 + zlib.crc32(trial_id.encode())) % 2**31


def load_trainer_state(checkpoint_dir: str | Path) -> dict[str, Any]:
    import torch

    return torch.load(Path(checkpoint_dir) / CHECKPOINT_FILE, map_location="cpu", weights_only=False)


def _log_start(settings: TrialSettings, trial_id: str, epoch: int) -> None:
    if not settings.starts_dir:
        return
    folder = Path(settings.starts_dir)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{trial_id}.log", "a") as f:
        f.write(f"{time.time():.3f} pid={os.getpid()} from_epoch={epoch}\n")


def train_trial(config: dict[str, Any], data: TrainingData, settings: TrialSettings) -> None:
    """The Ray Tune function trainable (bind ``data`` and ``settings`` with ``tune.with_parameters``)."""
    import torch
    from ray import tune

    torch.set_num_threads(settings.threads)
    trial_id = tune.get_context().get_trial_id()
    trainer = Trainer(
        data, config, seed=trial_seed(settings.seed, trial_id), initial_weights=settings.initial_weights
    )
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            trainer.load_state_dict(load_trainer_state(folder))
    _log_start(settings, trial_id, trainer.epoch)
    while trainer.epoch < settings.max_epochs and trainer.epochs_since_best < settings.patience:
        metrics = trainer.run_epoch()
        with tempfile.TemporaryDirectory(prefix="flywheel-ckpt-") as folder:
            torch.save(trainer.state_dict(), Path(folder) / CHECKPOINT_FILE)
            tune.report(
                {**metrics.as_dict(), "max_epochs": settings.max_epochs},
                checkpoint=tune.Checkpoint.from_directory(folder),
            )
