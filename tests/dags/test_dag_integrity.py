"""Every DAG file imports cleanly and follows the house rules that keep unattended runs safe."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

DAGS_DIR = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_DIR.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    from flywheel.local.processes import POOLS

    # known_pools makes a task naming a pool the project does not create an import error.
    return DagBag(dag_folder=str(DAGS_DIR), known_pools={"default_pool", *POOLS})


def test_there_are_dags() -> None:
    assert DAG_FILES, f"no DAG files in {DAGS_DIR}"


def test_no_import_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_dag_follows_the_house_rules(dagbag, path: Path) -> None:
    dag = dagbag.dags.get(path.stem)
    assert dag is not None, f"{path.name} must define a DAG whose dag_id is the file stem {path.stem!r}"
    assert dag.tags, f"{dag.dag_id}: add tags"
    assert dag.doc_md, f"{dag.dag_id}: pass the module docstring as doc_md"
    for task in dag.tasks:
        assert task.retries >= 2, f"{dag.dag_id}.{task.task_id}: retries={task.retries}, need >= 2"


def _dag_decorator_keywords(path: Path) -> dict[str, ast.expr]:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            for deco in node.decorator_list:
                if isinstance(deco, ast.Call) and getattr(deco.func, "id", None) == "dag":
                    return {kw.arg: kw.value for kw in deco.keywords}
    raise AssertionError(f"{path.name}: no @dag(...) decorator found")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_catchup_and_start_date_are_static(path: Path) -> None:
    keywords = _dag_decorator_keywords(path)
    catchup = keywords.get("catchup")
    assert isinstance(catchup, ast.Constant) and isinstance(catchup.value, bool), (
        f"{path.name}: set catchup=True/False explicitly"
    )
    start = keywords.get("start_date")
    # A start date computed at parse time (now() - x) moves on every parse and confuses the scheduler.
    assert isinstance(start, ast.Call) and getattr(start.func, "id", None) == "datetime", (
        f"{path.name}: start_date must be a literal datetime(...)"
    )
    literal_args = [*start.args, *(kw.value for kw in start.keywords if kw.arg != "tzinfo")]
    assert all(isinstance(a, ast.Constant) for a in literal_args), f"{path.name}: start_date is not static"


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_no_heavy_imports_at_parse_time(path: Path) -> None:
    heavy = {"torch", "ray", "pandas", "duckdb", "great_expectations", "feast", "dbt", "tritonclient"}
    tree = ast.parse(path.read_text())
    top_level = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = {
        (n.module or "") if isinstance(n, ast.ImportFrom) else a.name for n in top_level for a in n.names
    }
    assert not {name.split(".")[0] for name in names} & heavy, f"{path.name}: import heavy modules in tasks"


def test_plugin_folder_does_not_exec_the_package_as_loose_modules() -> None:
    # Airflow imports each .py under plugins/ by its bare stem; flywheel/local/processes.py would land
    # in sys.modules as `processes`, and heavy modules would load in every scheduler process.
    from airflow._shared.module_loading import find_path_from_directory

    plugins = DAGS_DIR.parent / "plugins"
    loose = [p for p in find_path_from_directory(str(plugins), ".airflowignore", "glob") if p.endswith(".py")]
    # The one loose module: the Flywheel page's plugin class (its import stays light: tests/unit/ui).
    assert loose == [str(plugins / "flywheel_ui_plugin.py")]


#: What a DAG file may import from flywheel: the assets, the settings, and its stage's tasks module (and
#: its operators module, for a task that defers: an operator class cannot be a function of tasks.py).
STAGES = ("ingest", "features", "training", "monitoring", "evaluation", "serving")
DAG_IMPORTS = re.compile(rf"^flywheel\.(assets|config|({'|'.join(STAGES)})\.(tasks|operators))$")


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.stem)
def test_a_dag_calls_its_stage_through_tasks_only(path: Path) -> None:
    # Nothing sits between a DAG and its stage but the stage's tasks.py (docs/architecture.md); the
    # import-linter contracts check the packages, this checks each import line of the DAG files.
    tree = ast.parse(path.read_text())
    modules = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    modules |= {a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names}
    stray = sorted(m for m in modules if m.split(".")[0] == "flywheel" and not DAG_IMPORTS.match(m))
    assert not stray, f"{path.name} imports {', '.join(stray)}: call a function of the stage's tasks.py"
    stages = {m.split(".")[1] for m in modules if m.endswith((".tasks", ".operators"))}
    assert len(stages) <= 1, f"{path.name} calls into several stages ({', '.join(sorted(stages))})"
