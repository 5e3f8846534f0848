"""Preparing an Airflow home runs its CLI commands in one process: the same metadata database as one
command a process, and a failing command is named with its output."""

from __future__ import annotations

import sqlite3

import pytest

from flywheel.config import Settings
from flywheel.local.processes import POOLS, airflow_cli_batch, airflow_environ, prepare, queue_backfill


def test_prepare_and_a_backfill_leave_the_database_as_the_cli_would(home: Settings) -> None:
    from datetime import UTC, datetime

    env = airflow_environ(home, 28999, None, None)
    prepare(env)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    queue_backfill(
        env, "ingest_events", start, start.replace(hour=3), unpause=["ingest_events", "train_model"]
    )

    with sqlite3.connect(home.airflow_home / "airflow.db") as db:
        pools = dict(db.execute("select pool, slots from slot_pool").fetchall())
        paused = dict(db.execute("select dag_id, is_paused from dag").fetchall())
        runs = db.execute(
            "select run_id from dag_run where dag_id = 'ingest_events' order by run_id"
        ).fetchall()
    assert {name: slots for name, (slots, _) in POOLS.items()}.items() <= pools.items()
    assert paused["ingest_events"] == 0 and paused["train_model"] == 0 and paused["deploy_model"] == 1
    assert len(runs) == 4 and all(r[0].startswith("backfill__2026-01-01T0") for r in runs), runs


def test_a_failing_command_is_named_and_stops_the_rest(home: Settings) -> None:
    env = airflow_environ(home, 28998, None, None)
    commands = [["version"], ["pools", "set", "half"], ["pools", "set", "next", "1", "never made"]]
    with pytest.raises(RuntimeError, match=r"`airflow pools set half` failed \(2\)") as failed:
        airflow_cli_batch(commands, env)
    assert "the following arguments are required" in str(failed.value)
    assert "$ airflow pools set next" not in str(failed.value)
