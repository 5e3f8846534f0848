"""Rerunning a repaired old interval through build_features' dbt tasks rebuilds it: afterwards every mart
row equals a from-scratch build of the correct data, although the hour is far older than the lookback.
"""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from flywheel.config import Settings, get_settings
from flywheel.events import hour_dir
from flywheel.features.dbt import build_model, run_dbt
from flywheel.features.dbt_group import load_models
from flywheel.features.tasks import resolve_interval
from flywheel.ingest.load import load_events
from flywheel.simulate import SimulationConfig, simulate
from flywheel.simulate.writer import FILE_NAME
from flywheel.warehouse import open_warehouse

START = datetime(2026, 1, 1)
HOURS = 30
#: The hour whose clicks file first arrives cut off: 18 hours before the newest, three times the lookback.
REPAIRED = START + timedelta(hours=10)
MARTS = {
    "marts.user_features": ["user_id", "feature_ts"],
    "marts.item_features": ["item_id", "feature_ts"],
    "marts.training_examples": ["impression_id"],
}


def _models_in_build_order() -> list[str]:
    """The dbt models, parents first: the order build_features' dbt task group runs them in."""
    models = load_models()
    ordered: list[str] = []

    def visit(unique_id: str) -> None:
        if models[unique_id]["name"] in ordered:
            return
        for parent in models[unique_id]["parents"]:
            if parent in models:
                visit(parent)
        ordered.append(models[unique_id]["name"])

    for unique_id in sorted(models):
        visit(unique_id)
    return ordered


def _build_features(settings: Settings, start: datetime, end: datetime, target: Path) -> None:
    """What a manual build_features run for [start, end) does to the marts: resolve the interval, then
    each dbt task's build_model with it."""
    params = {"interval_start": start.isoformat(), "interval_end": end.isoformat()}
    interval = resolve_interval([], params, settings)
    for model in _models_in_build_order():
        build_model(model, interval, settings, target_path=target)


def _clicks_file(settings: Settings) -> Path:
    return hour_dir(settings.landing_dir, "clicks", REPAIRED) / FILE_NAME


def _read(settings: Settings, table: str) -> pd.DataFrame:
    keys = ", ".join(MARTS[table])
    return (
        open_warehouse(settings.warehouse_url)
        .read_arrow(f"select * from {table} order by {keys}")
        .to_pandas()
    )


def _differences(actual: pd.DataFrame, expected: pd.DataFrame, keys: list[str]) -> str:
    """Empty when both hold the same rows (floats to 1e-9), else which keys and columns differ."""
    if list(actual.columns) != list(expected.columns):
        return f"columns {list(actual.columns)} != {list(expected.columns)}"
    merged = actual.merge(expected, on=keys, how="outer", suffixes=("", "_expected"), indicator=True)
    only = merged[merged["_merge"] != "both"]
    if len(only):
        side = {"left_only": "rerun", "right_only": "scratch build"}[only["_merge"].iloc[0]]
        example = only[keys].head(3).to_dict("records")
        return f"{len(only)} keys in one build only, e.g. {example} (in the {side})"
    problems = []
    for column in (c for c in actual.columns if c not in keys):
        a, e = merged[column], merged[f"{column}_expected"]
        if a.dtype.kind == "f":
            same = ((a - e).abs() <= 1e-9 * (1 + e.abs())) | (a.isna() & e.isna())
        else:
            same = (a == e) | (a.isna() & e.isna())
        if not same.all():
            first = merged.loc[~same, keys].head(2).to_dict("records")
            problems.append(f"{column} in {(~same).sum()} rows, e.g. {first}")
    return "; ".join(problems)


@pytest.mark.slow  # about 110 s on 2 cores: 22 dbt invocations, one per model and build
def test_rerun_of_a_repaired_old_interval_equals_a_build_from_scratch(
    home: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small world (300 users, 200 items) so users come back and the windows have something to count.
    cfg = SimulationConfig(start=START, hours=HOURS, impressions_per_hour=200, n_users=300, n_items=200)
    simulate(cfg, home.landing_dir)
    loaded_end = START + timedelta(hours=HOURS + 1)  # + the hour of the last late clicks and orders

    # World B: a fresh home with the correct files, built from scratch by plain `dbt build`.
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "scratch"))
    scratch = get_settings()
    scratch.ensure_dirs()
    shutil.copytree(home.landing_dir, scratch.landing_dir, dirs_exist_ok=True)
    load_events(START, loaded_end, settings=scratch, run_id="scratch")
    run_dbt(["build"], scratch, target_path=tmp_path / "scratch-target")
    expected = {table: _read(scratch, table) for table in MARTS}

    # World A: hour 10's clicks delivered cut off (the first half of the file), then everything built.
    full_clicks = pq.read_table(_clicks_file(home))
    assert full_clicks.num_rows >= 4, "the repaired hour needs clicks to lose"
    pq.write_table(full_clicks.slice(0, full_clicks.num_rows // 2), _clicks_file(home))
    load_events(START, loaded_end, settings=home, run_id="first")
    _build_features(home, START, START + timedelta(hours=HOURS), tmp_path / "target")
    corrupted = {table: _read(home, table) for table in MARTS}
    # The lost clicks reach labels and every later snapshot's windows: without a rebuild the marts differ.
    for table, keys in MARTS.items():
        assert _differences(corrupted[table], expected[table], keys), f"{table}: lost clicks changed nothing"

    # The repair: the full file re-landed, hour 10 re-ingested, build_features rerun for [10, 11) only.
    pq.write_table(full_clicks, _clicks_file(home))
    load_events(REPAIRED, REPAIRED + timedelta(hours=1), settings=home, run_id="repair")
    _build_features(home, REPAIRED, REPAIRED + timedelta(hours=1), tmp_path / "target")

    for table, keys in MARTS.items():
        repaired = _read(home, table)
        assert len(repaired) == len(expected[table]), table
        assert not (problems := _differences(repaired, expected[table], keys)), f"{table}: {problems}"


def test_each_dbt_task_of_the_dag_builds_its_model_for_the_runs_interval() -> None:
    # The DAG runs what the test above runs: build_model(model, the gate's interval), per model, and a
    # skipped gate_raw_events (nothing new) skips every model.
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder="dags/build_features.py").dags["build_features"]
    for name in _models_in_build_order():
        task = dag.get_task(f"dbt_models.{name}")
        model, interval = task.op_args
        assert model == name and interval.operator.task_id == "gate_raw_events", name
        assert "gate_raw_events" in task.upstream_task_ids and task.trigger_rule == "all_success", name
