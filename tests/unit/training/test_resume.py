"""A search killed with SIGKILL mid-way resumes: finished trials are not trained again, and the model is
exported and registered once (also when the task is retried after it succeeded)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from flywheel.config import Settings
from flywheel.registry import list_versions
from flywheel.training.backends import session_processes, stop_process_tree, training_command
from flywheel.training.run import main
from flywheel.training.runs import prepare_training_set, run_folder, train_and_register
from flywheel.warehouse import open_warehouse

RUN_ID = "manual__2026-01-02T00:00:00+00:00"
BUDGET, MAX_EPOCHS = 4, 3


def _starts(output: Path) -> dict[str, list[int]]:
    """Trial id -> the epoch each of its starts resumed from (0 = from scratch)."""
    return {
        log.stem: [int(line.rsplit("from_epoch=", 1)[1]) for line in log.read_text().splitlines()]
        for log in sorted((output / "trial_starts").glob("*.log"))
    }


def _result_rows(output: Path, trial_id: str) -> list[int]:
    lines = (output / "tune" / "search" / f"trial_{trial_id}" / "result.json").read_text().splitlines()
    return [json.loads(line)["training_iteration"] for line in lines]


@pytest.fixture
def ray_tmpdir(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A short RAY_TMPDIR (Ray's socket paths must fit the AF_UNIX limit), removed whatever happens."""
    path = tempfile.mkdtemp(prefix="fw-ray-test-")
    monkeypatch.setenv("RAY_TMPDIR", path)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_kill_9_mid_search_then_resume(home: Settings, small_frame: pd.DataFrame, ray_tmpdir: str) -> None:
    dataset_uri = prepare_training_set(small_frame, home)["dataset_uri"]
    output = run_folder(home, RUN_ID)
    cmd = training_command(dataset_uri, str(output), BUDGET, MAX_EPOCHS, resume=True)
    child = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    finished: list[str] = []
    seen: list[str] = []
    for line in child.stdout:
        seen.append(line)
        if " finished after " in line:
            finished.append(line.split()[1])
            break
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    assert finished, "no trial finished before the run ended:\n" + "".join(seen[-20:])
    assert not (output / "model" / "metadata.json").exists(), "the search completed before it was killed"
    before = _starts(output)
    rows_before = {t: _result_rows(output, t) for t in finished}
    # Ray's workers sit in process groups of their own: the backend's stop reaches them through the session.
    stop_process_tree(child, grace_s=1.0)
    assert session_processes(child.pid) == []

    result = train_and_register(small_frame, home, budget=BUDGET, max_epochs=MAX_EPOCHS, run_id=RUN_ID)

    starts = _starts(output)
    metadata = json.loads((output / "model" / "metadata.json").read_text())
    assert metadata["search"]["trial_count"] == BUDGET
    for trial_id in finished:
        assert starts[trial_id] == before[trial_id] == [0], f"finished trial {trial_id} was started again"
        assert _result_rows(output, trial_id) == rows_before[trial_id]
    # Trials interrupted by the kill continue from their last saved checkpoint (or from scratch without one);
    # the ones finished in the first run keep their results.
    kept = [t["trial_id"] for t in metadata["search"]["trials"]]
    assert set(finished) <= set(kept)
    assert result["version"] == "v0001"
    assert result["artifact_uri"] == f"{output}/model"
    assert result["val_auc"] == pytest.approx(metadata["metrics"]["val_auc"]) and result["val_auc"] > 0.55
    assert sorted(p.name for p in (output / "model").iterdir()) == [
        "feature_spec.json",
        "metadata.json",
        "model.pt",
    ]

    # The Airflow task retried after success: nothing is trained or registered again.
    again = train_and_register(small_frame, home, budget=BUDGET, max_epochs=MAX_EPOCHS, run_id=RUN_ID)
    assert again == result
    assert _starts(output) == starts
    assert [v.version for v in list_versions(open_warehouse(home.warehouse_url))] == ["v0001"]


def test_an_output_with_a_search_is_not_restarted_without_resume(home: Settings, small_frame, capsys) -> None:
    dataset_uri = prepare_training_set(small_frame, home)["dataset_uri"]
    output = home.artifacts_dir / "training" / "r1"
    output.mkdir(parents=True)
    (output / "run.json").write_text(json.dumps({"data_version": "somethingelse"}))
    args = ["--dataset", dataset_uri, "--output", str(output), "--budget", "2", "--max-epochs", "1"]

    assert main(args + ["--resume"]) == 2
    assert "holds a search over data version somethingelse" in capsys.readouterr().err

    (output / "run.json").unlink()
    (output / "tune" / "search").mkdir(parents=True)
    (output / "tune" / "search" / "tuner.pkl").write_bytes(b"")  # what Tune's can_restore looks for
    assert main(args) == 2
    assert "already holds a search: pass --resume" in capsys.readouterr().err
