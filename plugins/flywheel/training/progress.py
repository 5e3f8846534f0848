"""Progress lines of a search: one per trial epoch with the best so far, and one per finished trial.

A trial is announced as finished only once Tune's saved experiment state says so: from that line on,
a resume after a crash keeps the trial instead of training it again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from typing import Any

from ray.tune import Callback

#: How often (seconds) to look at the saved experiment state while a finished trial waits to be announced.
STATE_POLL_S = 0.5


class ProgressCallback(Callback):
    """Prints plain lines (the Airflow task log and the pod log show them as they come)."""

    def __init__(
        self,
        emit: Callable[[str], None],
        max_epochs: int,
        metric: str = "val_auc",
        timeline: list[dict[str, Any]] | None = None,
    ) -> None:
        self.emit = emit
        self.max_epochs = max_epochs
        self.metric = metric
        self.timeline = timeline
        self.best = (-math.inf, "")
        self._finished: dict[str, str] = {}
        self._last_poll = 0.0

    def on_trial_start(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.emit(f"trial {trial.trial_id} started: {_params(trial.config)}")

    def on_trial_result(
        self, iteration: int, trials: list[Any], trial: Any, result: dict, **info: Any
    ) -> None:
        value = float(result.get(self.metric, math.nan))
        if value > self.best[0]:
            self.best = (value, trial.trial_id)
        if self.timeline is not None:
            self.timeline.append({"time": time.time(), "trial_id": trial.trial_id, **result})
        self.emit(
            f"trial {trial.trial_id} epoch {result.get('training_iteration')}/{self.max_epochs} "
            f"{self.metric}={value:.4f} logloss={result.get('val_logloss', math.nan):.4f} "
            f"samples/s={result.get('samples_per_s', 0):,.0f} | best so far {self.best[0]:.4f} "
            f"({self.best[1]})"
        )

    def on_trial_complete(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        last = trial.last_result or {}
        self._finished[trial.trial_id] = (
            f"trial {trial.trial_id} finished after {last.get('training_iteration', 0)} epoch(s): "
            f"best {self.metric}={last.get('best_val_auc', math.nan):.4f} at epoch {last.get('best_epoch')}"
        )

    def on_trial_error(self, iteration: int, trials: list[Any], trial: Any, **info: Any) -> None:
        self.emit(f"trial {trial.trial_id} failed; its traceback is in {trial.path}/error.txt")

    def on_step_end(self, iteration: int, trials: list[Any], **info: Any) -> None:
        if not self._finished or time.monotonic() - self._last_poll < STATE_POLL_S:
            return
        self._last_poll = time.monotonic()
        saved = saved_trial_status(trials[0].storage) if trials else {}
        for trial_id in [t for t in self._finished if saved.get(t) == "TERMINATED"]:
            self.emit(self._finished.pop(trial_id))

    def on_experiment_end(self, trials: list[Any], **info: Any) -> None:
        # Tune has saved the final state (and waited for it) before this hook.
        for line in self._finished.values():
            self.emit(line)
        self._finished.clear()


def saved_trial_status(storage: Any) -> dict[str, str]:
    """Trial id -> status in the newest experiment state on storage (what a resume would see)."""
    from pyarrow import fs as pafs

    filesystem, folder = storage.storage_filesystem, storage.experiment_fs_path
    try:
        infos = filesystem.get_file_info(pafs.FileSelector(folder))
        states = [i for i in infos if i.base_name.startswith("experiment_state-") and i.extension == "json"]
        if not states:
            return {}
        newest = max(states, key=lambda i: i.mtime_ns or 0)
        with filesystem.open_input_stream(newest.path) as f:
            data = json.loads(f.read())
        trials = (json.loads(entry[0]) for entry in data["trial_data"])
        return {t["trial_id"]: t["status"] for t in trials}
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        return {}  # mid-write or an unknown format: ask again on a later step


def _params(config: dict[str, Any]) -> str:
    return ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in sorted(config.items())
    )
