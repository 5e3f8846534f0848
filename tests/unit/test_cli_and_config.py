"""The ``flywheel`` CLI and settings: FLYWHEEL_HOME is honoured, bad input names itself and exits 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from flywheel.cli import main
from flywheel.config import Settings, get_settings


def test_home_moves_every_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("FLYWHEEL_WAREHOUSE_URL", raising=False)
    s = get_settings()
    for path in (s.landing_dir, s.quarantine_dir, s.artifacts_dir, s.airflow_home):
        assert path.is_relative_to(tmp_path / "elsewhere")
    assert s.warehouse_url == f"duckdb:///{tmp_path / 'elsewhere' / 'warehouse.duckdb'}"


def test_simulate_then_ingest_from_the_cli(home: Settings, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--start", "2026-03-01T00:00", "--hours", "2", "--impressions-per-hour", "100", "--seed", "1"]
    assert main(["simulate", *args]) == 0
    summary = json.loads(capsys.readouterr().out)
    landed = sum(pq.read_metadata(p).num_rows for p in (home.landing_dir / "impressions").rglob("*.parquet"))
    assert summary["impressions"] == landed > 0

    assert main(["ingest", "--start", "2026-03-01T00:00", "--end", "2026-03-01T02:00"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows"]["impressions"] == landed


@pytest.mark.parametrize(
    "args, message",
    [
        (["--start", "2026-03-01T00:30", "--hours", "2"], "whole hour"),
        (["--start", "2026-03-01T00:00", "--hours", "2", "--drift", "sudden"], "sudden"),
        (["--start", "2026-03-01T00:00", "--hours", "0"], "hours"),
    ],
)
def test_simulate_refuses_bad_input_with_exit_2(
    home: Settings, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert main(["simulate", *args]) == 2
    assert message in capsys.readouterr().err
    assert not any(home.landing_dir.rglob("*.parquet"))


def test_unparseable_time_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "--start", "yesterday", "--hours", "1"])
    assert exit_info.value.code == 2
    assert "not an ISO time" in capsys.readouterr().err


#: ``{tmp}`` in an argument or value is the test's temporary folder; FLYWHEEL_HOME is ``{tmp}/home``.
HOUR = ["--start", "2026-03-01T00:00"]
PSI_ARGS = [
    "--reference",
    "marts.training_examples",
    "--current",
    "marts.training_examples",
    "--features",
    "price",
]
REFUSALS = {
    "ingest end before start": (
        ["ingest", "--start", "2026-03-01T02:00", "--end", "2026-03-01T01:00"],
        {},
        "--end 2026-03-01T01:00:00 is not after --start",
    ),
    "ingest empty interval": (
        ["ingest", "--start", "2026-03-01T02:00", "--end", "2026-03-01T02:00"],
        {},
        "is not after --start",
    ),
    "ingest start off the hour": (
        ["ingest", "--start", "2026-03-01T00:30", "--end", "2026-03-01T02:00"],
        {},
        "--start 2026-03-01T00:30:00 is not on a whole hour",
    ),
    "ingest unknown warehouse": (
        ["ingest", *HOUR, "--end", "2026-03-01T01:00"],
        {"FLYWHEEL_WAREHOUSE_URL": "mysql+foo://root@db/x"},
        "FLYWHEEL_WAREHOUSE_URL='mysql+foo://root@db/x' is not a duckdb, postgresql or postgres URL",
    ),
    "ingest unreachable warehouse": (
        ["ingest", *HOUR, "--end", "2026-03-01T01:00"],
        {"FLYWHEEL_WAREHOUSE_URL": "postgresql://postgres@127.0.0.1:1/x"},  # port 1: refused at once
        "cannot reach the warehouse postgresql://postgres@127.0.0.1:1/x",
    ),
    "demo unknown drift": (["demo", "--drift", "sudden"], {}, "--drift 'sudden' is not a drift scenario"),
    "demo drift too early": (
        ["demo", "--drift-at", "17"],
        {},
        "--drift-at 17 leaves 11 hours before the drift for the first model's training window",
    ),
    "demo too little after the drift": (
        ["demo", "--hours", "60"],
        {},
        "--hours 60 leaves 12 hours after the drift at 48: retraining needs 18 or more",
    ),
    "simulate unknown drift": (
        ["simulate", *HOUR, "--hours", "2", "--drift", "sudden"],
        {},
        "--drift 'sudden' is not a drift scenario",
    ),
    "simulate no hours": (["simulate", *HOUR, "--hours", "0"], {}, "hours must be >= 1"),
    "simulate unwritable --landing-dir": (
        ["simulate", *HOUR, "--hours", "2", "--landing-dir", "{tmp}/a-file/landing"],
        {},
        "cannot write to the landing folder {tmp}/a-file/landing",
    ),
    "simulate unwritable FLYWHEEL_LANDING_DIR": (
        ["simulate", *HOUR, "--hours", "2"],
        {"FLYWHEEL_LANDING_DIR": "{tmp}/a-file/landing"},
        "cannot write to the landing folder {tmp}/a-file/landing",
    ),
    "up bad port": (["up", "--port", "70000"], {}, "--port 70000 is not a TCP port"),
    "malformed FLYWHEEL_TRAIN_MAX_EPOCHS": (
        ["simulate", *HOUR, "--hours", "2"],
        {"FLYWHEEL_TRAIN_MAX_EPOCHS": "lots"},
        "FLYWHEEL_TRAIN_MAX_EPOCHS='lots' is not a whole number from 1 to 100",
    ),
    "malformed FLYWHEEL_DRIFT_PSI": (
        ["ingest", *HOUR, "--end", "2026-03-01T01:00"],
        {"FLYWHEEL_DRIFT_PSI": "high"},
        "FLYWHEEL_DRIFT_PSI='high' is not a number above 0",
    ),
    "malformed FLYWHEEL_ONLINE_STORE": (
        ["demo"],
        {"FLYWHEEL_ONLINE_STORE": "memcached"},
        "FLYWHEEL_ONLINE_STORE='memcached' is not one of sqlite, redis",
    ),
    "malformed FLYWHEEL_WAREHOUSE_URL": (
        ["ingest", *HOUR, "--end", "2026-03-01T01:00"],
        {"FLYWHEEL_WAREHOUSE_URL": "warehouse.duckdb"},
        "FLYWHEEL_WAREHOUSE_URL='warehouse.duckdb' is not a duckdb, postgresql or postgres URL",
    ),
    "malformed FLYWHEEL_TRAIN_CRON": (
        ["up"],
        {"FLYWHEEL_TRAIN_CRON": "every monday"},
        "FLYWHEEL_TRAIN_CRON='every monday' is not a cron expression",
    ),
    "malformed FLYWHEEL_PUSHGATEWAY_URL": (
        ["psi", *PSI_ARGS],
        {"FLYWHEEL_PUSHGATEWAY_URL": "ftp://gateway"},
        "FLYWHEEL_PUSHGATEWAY_URL='ftp://gateway' is not an http or https URL",
    ),
}


@pytest.mark.parametrize(("argv", "env", "message"), REFUSALS.values(), ids=REFUSALS.keys())
def test_every_command_refuses_bad_input_in_one_line_with_exit_2(
    tmp_path: Path, argv: list[str], env: dict[str, str], message: str
) -> None:
    (tmp_path / "a-file").write_text("a file where a folder is expected\n")
    home = tmp_path / "home"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("FLYWHEEL_")}
    environ |= {"FLYWHEEL_HOME": str(home), **{k: v.format(tmp=tmp_path) for k, v in env.items()}}
    done = subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *(a.format(tmp=tmp_path) for a in argv)],
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
    )

    command = argv[0]
    lines = done.stderr.splitlines()
    assert (done.returncode, "Traceback" not in done.stderr, len(lines)) == (2, True, 1), done.stderr
    assert lines[0].startswith(f"flywheel {command}: "), lines[0]
    assert message.format(tmp=tmp_path) in lines[0]
    assert "; " in lines[0].removeprefix(f"flywheel {command}: ").split(message.format(tmp=tmp_path), 1)[1]
    assert done.stdout == ""
    assert not home.exists() or not [p for p in home.rglob("*") if p.is_file()], "a refusal wrote files"
    assert not (home / "landing").exists()
