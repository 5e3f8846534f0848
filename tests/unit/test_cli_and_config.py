"""The ``flywheel`` CLI and settings: FLYWHEEL_HOME is honoured, bad input names itself and exits 2."""

from __future__ import annotations

import json
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
