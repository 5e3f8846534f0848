"""Evaluation end to end on a small simulated world: a model trained on real clicks clears the first-model
gate, one trained on shuffled clicks fails the AUC check against it, both are recorded with their report,
and ``flywheel evaluate`` exits 0/1 on the verdict and refuses bad input in one line with exit 2."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest

from flywheel.cli import main
from flywheel.config import Settings, get_settings
from flywheel.evaluation.evaluate import evaluate
from flywheel.registry import evaluations, register_candidate
from flywheel.simulate.scenario import START
from flywheel.warehouse import open_warehouse

pytestmark = pytest.mark.slow

HOURS = 30
#: The world's first 24 hours train; the newest 6 (FLYWHEEL_EVAL_HELD_OUT_HOURS' default) are held out.
TRAIN_HOURS = 24


@dataclass(frozen=True)
class World:
    settings: Settings
    good: str
    shuffled: str
    #: The version prepare_drift_world registers: a record whose model folder was never written.
    no_artifacts: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, train_small_model) -> Iterator[World]:
    from flywheel.feature_store.store import training_set
    from flywheel.simulate.scenario import prepare_drift_world

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLYWHEEL_HOME", str(tmp_path_factory.mktemp("eval-e2e") / "home"))
        patch.delenv("FLYWHEEL_WAREHOUSE_URL", raising=False)
        settings = get_settings()
        stale = prepare_drift_world(
            settings,
            "none",
            hours=HOURS,
            drift_at=HOURS,
            impressions_per_hour=800,
            reference_hours=(0, TRAIN_HOURS),
        )
        window = (START, START + timedelta(hours=TRAIN_HOURS))
        frame = training_set(*window, settings)
        versions = {}
        for name, shuffle in (("good", False), ("shuffled", True)):
            folder = train_small_model(
                frame, Path(settings.artifacts_dir) / "runs" / name / "model", shuffle=shuffle
            )
            versions[name] = register_candidate(
                data_version=f"e2e-{name}",
                artifact_uri=str(folder),
                params={"labels": "shuffled" if shuffle else "logged"},
                metrics={},
                window=window,
                warehouse=open_warehouse(settings.warehouse_url),
            )
        yield World(settings, versions["good"], versions["shuffled"], stale)


def test_a_model_of_real_clicks_passes_the_first_model_gate(world: World) -> None:
    result = evaluate(world.good, settings=world.settings)

    auc = next(c for c in result.decision.checks if c.name == "auc" and c.slice == "all")
    assert result.champion is None and auc.champion is None  # no champion yet: absolute thresholds
    assert auc.candidate > 0.55 and auc.lower < auc.candidate < auc.upper, auc
    assert result.rows > 1000 and result.window[1] == START + timedelta(hours=HOURS)
    assert result.passed, result.decision.table()
    rows = {
        (e.metric, e.slice): e for e in evaluations(world.good, open_warehouse(world.settings.warehouse_url))
    }
    assert rows["auc", "all"].evaluation_id == result.evaluation_id
    assert rows["auc", "all"].passed is True and rows["auc", "all"].baseline_version is None
    assert (
        Path(result.report_uri).is_file() and Path(result.report_uri).name == f"{result.evaluation_id}.html"
    )
    assert world.good in Path(result.report_uri).read_text()


def test_a_model_of_shuffled_clicks_fails_auc_against_the_real_one(world: World) -> None:
    result = evaluate(world.shuffled, champion=world.good, settings=world.settings, evaluation_id="shuffled")

    assert not result.passed and result.champion == world.good
    auc = next(c for c in result.decision.failed if c.name == "auc" and c.slice == "all")
    assert auc.upper < -world.settings.evaluation.auc_margin, auc  # clearly worse, not just unproven
    assert "lower bound" in auc.reason and "auc on all" in result.decision.table()
    rows = [e for e in evaluations(world.shuffled, open_warehouse(world.settings.warehouse_url))]
    difference = next(e for e in rows if e.metric == "auc_difference" and e.slice == "all")
    assert (difference.evaluation_id, difference.baseline_version, difference.passed) == (
        "shuffled",
        world.good,
        False,
    )
    assert Path(world.settings.artifacts_dir, "evaluations", "shuffled.html").is_file()


def test_the_cli_exits_on_the_verdict(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["evaluate", "--candidate", world.shuffled, "--champion", world.good]
    assert main([*argv, "--format", "json", "--no-record"]) == 1
    printed = json.loads(capsys.readouterr().out)
    assert printed["passed"] is False and printed["report"] == "not written (--no-record)"
    assert any(c["name"] == "auc" and c["status"] == "failed" for c in printed["checks"])

    assert main(["evaluate", "--candidate", world.good]) == 0
    out = capsys.readouterr().out
    assert out.startswith("gate PASSED") and f"report {world.settings.artifacts_dir}" in out


@pytest.mark.parametrize(
    ("candidate", "message"),
    [
        ("v0999", "no model version 'v0999' in registry.model_versions; latest are v0003, v0002, v0001"),
        ("stale", "has no artifacts at"),
    ],
    ids=["unknown version", "version without artifacts"],
)
def test_the_cli_refuses_unknown_and_unfinished_versions(
    world: World, capsys: pytest.CaptureFixture[str], candidate: str, message: str
) -> None:
    candidate = world.no_artifacts if candidate == "stale" else candidate
    assert main(["evaluate", "--candidate", candidate]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flywheel evaluate: ") and message in lines[0], lines
    assert captured.out == ""


def test_the_cli_refuses_a_held_out_window_longer_than_the_published_hours(
    world: World, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FLYWHEEL_EVAL_HELD_OUT_HOURS", "48")
    assert main(["evaluate", "--candidate", world.good]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert (
        "the held-out window needs the newest 48 published hours but features.published_hours holds 30"
        in (lines[0])
    )


def test_the_cli_refuses_a_world_with_no_published_hour(
    world: World, home: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """A fresh home whose registry knows a finished model but whose warehouse has published nothing."""
    folder = Path(world.settings.artifacts_dir) / "runs" / "good" / "model"
    version = register_candidate(
        data_version="e2e-elsewhere",
        artifact_uri=str(folder),
        params={},
        metrics={},
        warehouse=open_warehouse(home.warehouse_url),
    )
    assert main(["evaluate", "--candidate", version]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert "no hour is published in features.published_hours: build_features has not published" in lines[0]
