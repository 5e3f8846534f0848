"""The evaluation gate through a real Airflow: ``model_candidate`` starts ``evaluate_model``, which rejects a
model without files, blesses the first real model on absolute thresholds, then, against it, rejects a
model of shuffled clicks (AUC), rejects one that is better overall but worse on one item category (that
slice), blesses a better one; each blessing updates ``model_blessed``, which starts its consumer."""

from __future__ import annotations

import shutil
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from flywheel.config import Settings
from flywheel.local.processes import AirflowProcesses, admin_api, airflow_cli_batch
from flywheel.simulate.scenario import START, prepare_drift_world

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]

ROOT = Path(__file__).resolve().parents[2]
HOURS, TRAIN_HOURS = 30, 24
#: The category whose clicks the slice candidate learns shuffled: about 13% of impressions, so the model
#: stays better than the baseline overall while it learns nothing about that category.
CORRUPTED = "cat_01"


def test_the_gate_judges_candidates_through_the_scheduler(
    home: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, train_small_model
) -> None:
    from flywheel.evaluation.heldout import label_slices
    from flywheel.feature_store.store import training_set
    from flywheel.registry import evaluations, get_version, history, register_candidate
    from flywheel.warehouse import open_warehouse

    # Margins for a world of 2,500 impressions an hour (14,000 held out): replayed CTR@k and calibration
    # intervals are wider than the defaults, sized for production traffic (docs/evaluation.md).
    monkeypatch.setenv("FLYWHEEL_EVAL_CTR_MARGIN", "0.03")
    monkeypatch.setenv("FLYWHEEL_EVAL_ECE_MARGIN", "0.03")
    stale = prepare_drift_world(  # registers a record without model files: it must be rejected, not crash
        home, "none", hours=HOURS, drift_at=HOURS, impressions_per_hour=2500, reference_hours=(0, TRAIN_HOURS)
    )
    window = (START, START + timedelta(hours=TRAIN_HOURS))
    frame = training_set(*window, home)
    rng = np.random.default_rng(1)
    noisy = frame.copy()  # the baseline: half its clicks shuffled, so it is fair but beatable
    half = rng.random(len(noisy)) < 0.5
    noisy.loc[half, "label"] = rng.permutation(noisy.loc[half, "label"].to_numpy())
    sliced = frame.copy()
    in_slice = (label_slices(frame.copy())["slice_item_category"] == CORRUPTED).to_numpy()
    sliced.loc[in_slice, "label"] = rng.permutation(sliced.loc[in_slice, "label"].to_numpy())
    runs = Path(home.artifacts_dir) / "runs"
    folders = {
        "baseline": train_small_model(noisy, runs / "baseline"),
        "shuffled": train_small_model(frame, runs / "shuffled", shuffle=True),
        "sliced": train_small_model(sliced, runs / "sliced"),
        "better": train_small_model(frame, runs / "better"),
    }

    def register(name: str) -> str:
        return register_candidate(
            data_version=f"gate-{name}",
            artifact_uri=str(folders[name]),
            params={"trained_on": name},
            metrics={},
            window=window,
            warehouse=open_warehouse(home.warehouse_url),
        )

    baseline = register("baseline")
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "evaluate_model.py", dags)
    shutil.copy(Path(__file__).parent / "blessed_dags" / "consume_blessed.py", dags)

    def setup(env):
        airflow_cli_batch(
            [["dags", "unpause", dag_id] for dag_id in ("evaluate_model", "consume_blessed")], env
        )

    with AirflowProcesses(home, dags_folder=dags, setup=setup) as procs:
        api = admin_api(procs)
        procs.wait_for(
            lambda: api.assets("model_candidate"),
            "the model_candidate asset to be registered",
        )
        # 1. The first candidates: the record without files, and the first real model (no baseline yet).
        api.emit_asset_event("model_candidate", {"version": baseline})
        first = api.wait_for_runs("evaluate_model", 1, timeout=600, check=procs.check_alive)
        # Registered only now: no task holds the warehouse (DuckDB admits one writer) between runs.
        shuffled, sliced_version, better = register("shuffled"), register("sliced"), register("better")
        # 2. One event; the run owns every candidate since (three), each judged against the baseline.
        api.emit_asset_event("model_candidate", {"version": better})
        runs_done = api.wait_for_runs("evaluate_model", 2, timeout=900, check=procs.check_alive)
        consumed = api.wait_for_runs("consume_blessed", 2, timeout=300, check=procs.check_alive)
        second = next(r for r in runs_done if r["dag_run_id"] != first[0]["dag_run_id"])
        judged = {
            api.task_result("evaluate_model", second["dag_run_id"], "judge", i)["version"]: i
            for i in range(3)
        }
        logs = {}
        for version, i in judged.items():
            ti = api.task_instance("evaluate_model", second["dag_run_id"], "judge", i)
            tries = ti["try_number"]  # the log of the try that succeeded
            logs[version] = api.task_log("evaluate_model", second["dag_run_id"], "judge", tries, i)
        announced = [
            api.task_result("consume_blessed", r["dag_run_id"], "consume")
            for r in sorted(consumed, key=lambda r: r["run_after"])
        ]
        api.close()

    assert [r["state"] for r in runs_done] == ["success", "success"]
    assert all(r["run_type"] == "asset_triggered" for r in runs_done)
    warehouse = open_warehouse(home.warehouse_url)
    status = {
        v: get_version(v, warehouse).status for v in (stale, baseline, shuffled, sliced_version, better)
    }
    assert status == {
        stale: "rejected",
        baseline: "blessed",
        shuffled: "rejected",
        sliced_version: "rejected",
        better: "blessed",
    }
    assert history(stale, warehouse)[-1].reason.startswith(f"not judged: version {stale} has no artifacts")
    assert history(baseline, warehouse)[-1].reason.startswith("gate passed on absolute thresholds")

    def failed(version: str) -> set[tuple[str, str]]:
        # The gate's verdict sits on the difference rows (candidate - baseline) of registry.evaluations.
        rows = evaluations(version, warehouse)
        return {(e.metric.removesuffix("_difference"), e.slice) for e in rows if e.passed is False}

    # Judged in the second run against the baseline, never against each other.
    for version in (shuffled, sliced_version, better):
        assert {e.baseline_version for e in evaluations(version, warehouse)} == {baseline}
    assert ("auc", "all") in failed(shuffled)
    reason = history(shuffled, warehouse)[-1].reason
    assert reason.startswith(f"gate failed against {baseline}: ") and "auc on all: lower bound" in reason
    # Better overall, worse on the corrupted category: rejected on that slice alone.
    assert failed(sliced_version) == {("auc", f"item_category={CORRUPTED}")}, failed(sliced_version)
    assert (
        f"auc on item_category={CORRUPTED}: regressed beyond -0.01"
        in history(sliced_version, warehouse)[-1].reason
    )
    assert failed(better) == set()
    # The task log carries the gate's table, the verdict and the report.
    assert "gate REJECTED" in logs[shuffled] and "auc on all" in logs[shuffled]
    assert f"item_category={CORRUPTED}" in logs[sliced_version]
    assert "gate PASSED" in logs[better] and "report: file://" in logs[better]
    report = next(line for line in logs[better].splitlines() if "report: file://" in line)
    assert Path(report.split("report: file://", 1)[1].strip()).is_file()
    # Each blessing announced its version on model_blessed, and its consumer received it.
    assert announced == [
        [{"version": baseline, "versions": [baseline]}],
        [{"version": better, "versions": [better]}],
    ]
