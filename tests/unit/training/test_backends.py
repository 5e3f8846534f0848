"""The local backend streams the child's lines, reports its errors, and leaves no process behind."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from flywheel.training.backends import TrainingFailed, stop_process_tree, train

# A child that starts a grandchild in a process group of its own, as Ray's workers do, then waits.
FAMILY = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], process_group=0)
print(grandchild.pid, flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes() and _alive(int(cmdline.parent.name)):
                found.append(int(cmdline.parent.name))
        except OSError:
            continue
    return [p for p in found if p != os.getpid()]


def test_stopping_kills_grandchildren_in_their_own_process_groups() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", FAMILY], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    grandchild = int(proc.stdout.readline())
    assert os.getpgid(grandchild) != os.getpgid(proc.pid)

    stop_process_tree(proc, grace_s=2.0)

    assert not _alive(proc.pid)
    deadline = time.monotonic() + 5
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def test_failed_run_raises_its_error_line_and_logs_every_line(tmp_path, caplog) -> None:
    empty = tmp_path / "empty.parquet"
    columns = {"impression_id": str, "event_ts": "datetime64[us]", "label": "int64"}
    pd.DataFrame({name: pd.Series([], dtype=dtype) for name, dtype in columns.items()}).to_parquet(empty)
    logger = logging.getLogger("test.training")
    with caplog.at_level(logging.INFO, logger="test.training"):
        with pytest.raises(TrainingFailed, match="exited with code 2: error: training set has 0 rows for"):
            train(str(empty), str(tmp_path / "out"), budget=2, max_epochs=1, logger=logger)

    assert any("error: training set has 0 rows" in r.getMessage() for r in caplog.records)
    assert not (tmp_path / "out").exists()


def test_timeout_stops_the_whole_run(small_frame: pd.DataFrame, tmp_path) -> None:
    data = tmp_path / "set.parquet"
    small_frame.to_parquet(data)
    output = tmp_path / "timeout-run"
    with pytest.raises(TrainingFailed, match="timed out after 2 s.*a retry resumes"):
        train(str(data), str(output), budget=4, max_epochs=5, timeout=2)
    assert _processes_mentioning(str(output)) == []
