"""The code base stays ruff-clean (with Airflow's AIR rules), so style drift fails the suite, not review."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlfluff_passes_on_the_sql_analysts_edit() -> None:
    # dbt models and monitoring templates, DuckDB dialect, Jinja rendered offline (.sqlfluff files).
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    paths = ["dbt/models", "sql/monitoring", "plugins/flywheel/quality/sql"]
    result = subprocess.run([str(sqlfluff), "lint", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
