"""The code base stays ruff- and sqlfluff-clean, and keeps its architecture (import-linter contracts): style
or layering drift fails the suite, not review."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "."], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_sqlfluff_passes_on_the_sql_analysts_edit() -> None:
    # dbt models, the analysts' sql/ tree and the packages' own sql/ folders, DuckDB dialect, Jinja rendered
    # offline (.sqlfluff files give example identifiers; .sqlfluffignore says why a file is left out).
    sqlfluff = Path(sys.executable).with_name("sqlfluff")
    # Every package's sql/ folder, as the Makefile's lint target globs them: a new stage is linted too.
    packages = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "plugins" / "flywheel").glob("*/sql"))
    assert "plugins/flywheel/registry/sql" in packages
    paths = ["dbt/models", "sql", *packages]
    result = subprocess.run([str(sqlfluff), "lint", *paths], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    lint_imports = Path(sys.executable).with_name("lint-imports")
    # The package under `root` shadows the installed (editable) one: PYTHONPATH comes first on sys.path.
    env = {**os.environ, "PYTHONPATH": f"{root / 'plugins'}{os.pathsep}{root}"}
    return subprocess.run(
        [str(lint_imports), "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )


def test_the_import_contracts_hold() -> None:
    # Layers (DAGs -> entry points -> simulator -> stages -> registry, warehouse, config), independent
    # stages, the simulator kept out of production code: pyproject.toml [tool.importlinter].
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "line", "contract"),
    [
        ("training/peek.py", "from flywheel.monitoring import drift", "layers"),
        ("monitoring/peek.py", "import flywheel.features.tasks", "layers"),
        ("training/peek.py", "from flywheel.simulate import simulate", "simulator"),
        ("registry/peek.py", "from flywheel.training import runs", "layers"),
    ],
)
def test_the_contracts_break_when_a_stage_imports_another(
    tmp_path: Path, module: str, line: str, contract: str
) -> None:
    shutil.copytree(ROOT / "plugins" / "flywheel", tmp_path / "plugins" / "flywheel", ignore=_NO_CACHES)
    shutil.copytree(ROOT / "dags", tmp_path / "dags", ignore=_NO_CACHES)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "plugins" / "flywheel" / module).write_text(f"from __future__ import annotations\n\n{line}\n")
    result = _lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout[-3000:]
    report = " ".join(result.stdout.split())  # contract names wrap at 80 columns
    assert f"{CONTRACTS[contract]} BROKEN" in report, report[-3000:]
    assert f"flywheel.{module[:-3].replace('/', '.')}" in report


_NO_CACHES = shutil.ignore_patterns("__pycache__", "*.pyc")
CONTRACTS = {
    c["id"]: c["name"]
    for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
}
