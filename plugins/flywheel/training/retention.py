"""Checkpoint retention: every epoch checkpoints, but only the newest few of each trial stay on disk.

Tune's own ``num_to_keep`` deletes the previous checkpoint at once, before the experiment state that
points at the new one reaches storage; a driver killed in between leaves a trial that cannot resume.
Here an old checkpoint goes only once it is older than any state a resume could read.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from ray.tune import Callback

#: Checkpoints kept per trial beyond the newest, and the age (seconds) before an older one may go.
KEEP = 1
GRACE_S = 60.0
_CHECKPOINT = re.compile(r"^checkpoint_(\d+)$")


class CheckpointRetention(Callback):
    """Deletes a trial's checkpoints except the newest ``keep + 1`` once they are ``grace_s`` old."""

    def __init__(self, keep: int = KEEP, grace_s: float = GRACE_S) -> None:
        self.keep = keep
        self.grace_s = grace_s
        self._seen: dict[str, list[tuple[float, Any]]] = defaultdict(list)

    def on_checkpoint(
        self, iteration: int, trials: list[Any], trial: Any, checkpoint: Any, **info: Any
    ) -> None:
        seen = self._seen[trial.trial_id]
        seen.append((time.monotonic(), checkpoint))
        now = time.monotonic()
        while len(seen) > self.keep + 1 and now - seen[0][0] > self.grace_s:
            _, old = seen.pop(0)
            try:
                old.filesystem.delete_dir(old.path)
            except OSError:
                pass  # already gone; retention is best effort


def prune_finished(experiment_dir: str | Path) -> int:
    """After a search has ended (state saved): keep only the newest checkpoint of each local trial folder."""
    removed = 0
    root = Path(experiment_dir)
    if not root.is_dir():
        return 0
    import shutil

    for trial_dir in root.iterdir():
        if not trial_dir.is_dir():
            continue
        checkpoints = sorted(
            (int(m.group(1)), p)
            for p in trial_dir.iterdir()
            if (m := _CHECKPOINT.match(p.name)) and p.is_dir()
        )
        for _, path in checkpoints[:-1]:
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
    return removed
