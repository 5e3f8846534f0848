"""The local backend: the training entry point in a child process of its own session, its output lines
streamed into a logger as they come, and the whole process tree stopped on timeout or cancellation.

Ray's workers put themselves in process groups of their own, so stopping the child's group is not
enough: every process left in the child's session is stopped too.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flywheel.artifacts.folder import MODEL_DIR, read_metadata

log = logging.getLogger(__name__)

#: Seconds a stopped run gets to exit after SIGTERM before everything left is killed.
STOP_GRACE_S = 5.0


class TrainingFailed(RuntimeError):
    """The training process exited non-zero (or was stopped); the message carries its last error line."""


def training_command(
    dataset_uri: str,
    output_uri: str,
    budget: int,
    max_epochs: int,
    resume: bool = True,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    python: str | None = None,
) -> list[str]:
    """The command line of the entry point (the trainer image runs the same arguments)."""
    cmd = [python or sys.executable, "-m", "flywheel.training.run", "--dataset", str(dataset_uri)]
    cmd += ["--output", str(output_uri), "--budget", str(budget), "--max-epochs", str(max_epochs)]
    cmd += ["--seed", str(seed), *(["--resume"] if resume else []), *extra_args]
    return cmd


def session_processes(session_id: int) -> list[int]:
    """Pids of live processes in a session (Linux ``/proc``; empty elsewhere)."""
    pids = []
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # After "pid (comm)": state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == session_id and fields[0] != "Z":
            pids.append(int(entry.parent.name))
    return pids


def stop_process_tree(proc: subprocess.Popen[Any], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM the child's group, then SIGKILL whatever is left of its session after ``grace_s``."""
    sid = proc.pid  # start_new_session=True: the child leads a new session and group with its pid
    with _ignore_missing():
        os.killpg(sid, signal.SIGTERM)
    try:
        proc.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        pass
    with _ignore_missing():
        os.killpg(sid, signal.SIGKILL)
    deadline = time.monotonic() + grace_s
    while (left := [p for p in session_processes(sid) if p != os.getpid()]) and time.monotonic() < deadline:
        for pid in left:
            with _ignore_missing():
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.1)
    proc.wait()


class _ignore_missing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> bool:
        return kind is not None and issubclass(kind, ProcessLookupError | PermissionError)


def _pump(stream: Any, logger: logging.Logger, tail: deque[str]) -> None:
    for line in stream:
        line = line.rstrip("\n")
        tail.append(line)
        logger.info("%s", line)


def train(
    dataset_uri: str,
    output_uri: str,
    budget: int,
    max_epochs: int,
    resume: bool = True,
    timeout: float | None = None,
    logger: logging.Logger | None = None,
    seed: int = 0,
    extra_args: Sequence[str] = (),
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Run ``python -m flywheel.training.run`` to completion and return the ``metadata.json`` it wrote.

    Raises ``TrainingFailed`` on a non-zero exit or a timeout; on any exception in the caller's thread
    (an Airflow task being cancelled, Ctrl-C) the child's whole process tree is stopped first.
    """
    logger = logger or log
    cmd = training_command(dataset_uri, output_uri, budget, max_epochs, resume, seed, extra_args)
    child_env = {**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"}
    own_tmp = None
    if "RAY_TMPDIR" not in child_env:
        # Short (Ray's socket paths must be) and ours to remove, even when the run is killed.
        own_tmp = child_env["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="fw-ray-")
    logger.info("starting training: %s", " ".join(cmd))
    try:
        return _supervise(cmd, child_env, dataset_uri, output_uri, timeout, logger)
    finally:
        if own_tmp:
            shutil.rmtree(own_tmp, ignore_errors=True)


def _supervise(
    cmd: list[str],
    child_env: dict[str, str],
    dataset_uri: str,
    output_uri: str,
    timeout: float | None,
    logger: logging.Logger,
) -> dict[str, Any]:
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        bufsize=1,
        start_new_session=True,
        env=child_env,
    )
    tail: deque[str] = deque(maxlen=50)
    pump = threading.Thread(target=_pump, args=(proc.stdout, logger, tail), daemon=True)
    pump.start()
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        logger.error("training ran past its %.0f s timeout: stopping its process tree", timeout)
        stop_process_tree(proc)
        pump.join(timeout=5)
        raise TrainingFailed(
            f"training of {dataset_uri} timed out after {timeout:.0f} s; its checkpoints stay in "
            f"{output_uri}, so a retry resumes the search"
        ) from None
    except BaseException:
        logger.warning("training interrupted: stopping its process tree")
        stop_process_tree(proc)
        raise
    pump.join(timeout=5)
    # Ray's workers may outlive a finished driver by a moment; never leave them behind.
    stop_process_tree(proc, grace_s=1.0)
    if rc != 0:
        errors = [line for line in tail if line.startswith("error:")]
        detail = errors[-1] if errors else (tail[-1] if tail else "no output")
        raise TrainingFailed(f"training exited with code {rc}: {detail}")
    metadata = read_metadata(f"{output_uri.rstrip('/')}/{MODEL_DIR}")
    if metadata is None:
        raise TrainingFailed(f"training exited 0 but wrote no {MODEL_DIR}/metadata.json under {output_uri}")
    return metadata
