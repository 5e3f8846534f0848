"""Settings that exist are read: docs/configuration.md lists exactly the variables config.py reads, config.py
is the only reader of the environment, a bad value names itself and a good one, and settings reach a run."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from flywheel import config
from flywheel.config import VARIABLES, SettingsError, get_settings

ROOT = Path(__file__).resolve().parents[2]
CONFIG_SOURCE = Path(config.__file__)
NAME = re.compile(r"\bFLYWHEEL_[A-Z0-9_]*[A-Z0-9]\b")


def test_the_docs_list_exactly_the_variables_the_code_reads() -> None:
    documented = set(NAME.findall((ROOT / "docs" / "configuration.md").read_text()))
    read = set(VARIABLES)
    assert not read - documented, (
        f"read by flywheel.config but not in docs/configuration.md: {read - documented}"
    )
    assert not documented - read, f"in docs/configuration.md but read by nothing: {documented - read}"
    text = (ROOT / "docs" / "configuration.md").read_text()
    missing = [name for name in config.TOOL_VARIABLES if f"`{name}`" not in text]
    assert not missing, (
        f"other tools' variables read by flywheel.config but not in docs/configuration.md: {missing}"
    )


def test_config_reads_no_variable_outside_its_registry() -> None:
    # A name spelled in config.py but missing from VARIABLES would be read yet escape the docs check.
    assert set(NAME.findall(CONFIG_SOURCE.read_text())) <= set(VARIABLES)
    assert len(VARIABLES) == len(set(VARIABLES))


#: Methods of os.environ that change it; called as a statement (result unused) they are writes, not reads.
_WRITERS = {"setdefault", "pop", "popitem", "update", "clear"}


def _environment_reads(path: Path) -> list[str]:
    """Every read of the environment in ``path``, as ``file:line``, whatever the variable's name.

    Counted as a read: ``os.getenv``/``os.getenvb`` (called or not), and any use of ``os.environ`` or
    ``os.environb`` (also imported ``from os``, under any alias) other than the exceptions below, so
    ``.get(...)``, ``[...]`` loads, ``name in os.environ``, ``.items()`` and iteration, an alias such as
    ``env = os.environ.get``, and ``os.environ`` handed to a function are all reads.
    Not counted: writes (``os.environ[k] = v``, ``del os.environ[k]``, and ``setdefault``/``pop``/``update``/
    ``clear`` whose result is unused) and handing a whole copy to a child process (``dict(os.environ)``,
    ``os.environ.copy()``, ``{**os.environ, ...}``, ``env=os.environ``): the child reads it, not us.
    """
    tree = ast.parse(path.read_text())
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    os_names = {"os"} | {
        a.asname or a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.Import)
        for a in n.names
        if a.name == "os"
    }
    imported = {  # from os import environ as env, getenv
        a.asname or a.name: a.name
        for n in ast.walk(tree)
        if isinstance(n, ast.ImportFrom) and n.module == "os"
        for a in n.names
    }
    parents = {id(child): node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}

    def os_member(node: ast.AST) -> str | None:
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in os_names:
            return node.attr
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
            return imported.get(node.id)
        return None

    def is_read(node: ast.AST) -> bool:
        parent = parents.get(id(node))
        if isinstance(parent, ast.Subscript) and parent.value is node:
            return isinstance(parent.ctx, ast.Load)
        if isinstance(parent, ast.Attribute):  # a method of os.environ
            call = parents.get(id(parent))
            if not (isinstance(call, ast.Call) and call.func is parent):
                return True  # an alias such as env = os.environ.get
            if parent.attr == "copy":
                return False
            return not (parent.attr in _WRITERS and isinstance(parents.get(id(call)), ast.Expr))
        if isinstance(parent, ast.Call) and isinstance(parent.func, ast.Name) and parent.func.id == "dict":
            return parent.args != [node] or bool(parent.keywords)
        if isinstance(parent, ast.Dict):
            return not any(v is node and k is None for k, v in zip(parent.keys, parent.values, strict=True))
        if isinstance(parent, ast.keyword):
            return parent.arg != "env"
        return True

    found = []
    for node in ast.walk(tree):
        member = os_member(node)
        if member in ("getenv", "getenvb") or (member in ("environ", "environb") and is_read(node)):
            found.append(f"{where}:{node.lineno}")
    return found


def test_config_is_the_only_reader_of_the_environment() -> None:
    sources = [*(ROOT / "plugins" / "flywheel").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
    reads = [hit for path in sources if path != CONFIG_SOURCE for hit in _environment_reads(path)]
    assert reads == [], (
        f"environment read outside flywheel.config: {reads}; add the variable to config.VARIABLES (or "
        "TOOL_VARIABLES), a field to a section of Settings and a row to docs/configuration.md, and read "
        "it through get_settings()"
    )


def test_config_reads_the_environment_in_one_place() -> None:
    # Every setting goes through _raw, which refuses a name missing from the registries.
    (hit,) = _environment_reads(CONFIG_SOURCE)
    line = int(hit.rsplit(":", 1)[1])
    raw = next(n for n in ast.walk(ast.parse(CONFIG_SOURCE.read_text())) if getattr(n, "name", "") == "_raw")
    assert raw.lineno <= line <= raw.end_lineno, f"{hit}: read the environment through _raw only"


def test_the_reader_check_finds_every_kind_of_read(tmp_path: Path) -> None:
    # The scan above must be able to fail: it flags each way a module could read a variable itself,
    # and lets writes and copies handed to a child process pass.
    module = tmp_path / "reads_itself.py"
    module.write_text(
        "import os\n"  # 1
        "import os as system\n"
        "from os import environ as env, getenv\n"
        "a = os.environ.get('FLYWHEEL_X')\n"  # 4: read
        "b = os.getenv(NAME)\n"  # read
        "c = os.environ['RAY_TMPDIR']\n"  # read, whatever the name
        "get = os.environ.get\n"  # read (an alias)
        "d = 'HOME' in system.environ\n"  # read
        "e = env.get('X')\n"  # 9: read
        "f = getenv('X')\n"  # read
        "g = [k for k in os.environ.items()]\n"  # read
        "h = os.environ.setdefault('X', '1')\n"  # read: the value is used
        "os.environ['X'] = '1'\n"  # 13: write
        "os.environ.setdefault('Y', '0')\n"  # write
        "os.environ.pop('Y', None)\n"  # write
        "del os.environ['X']\n"  # write
        "child = {**os.environ, 'X': '1'}\n"  # copy for a child
        "child = dict(os.environ)\n"  # copy
        "child = os.environ.copy()\n"  # copy
        "run(['x'], env=os.environ)\n"  # 20: copy
        "inspect(os.environ)\n"  # 21: read (the callee may read anything)
    )
    lines = sorted(int(hit.rsplit(":", 1)[1]) for hit in _environment_reads(module))
    assert lines == [4, 5, 6, 7, 8, 9, 10, 11, 12, 21]


@pytest.mark.parametrize(
    ("name", "bad"),
    [
        ("FLYWHEEL_WAREHOUSE_URL", "warehouse.duckdb"),
        ("FLYWHEEL_WAREHOUSE_URL", "mysql+foo://root@db/x"),
        ("FLYWHEEL_AIRFLOW_DB_URL", "airflow.db"),
        ("FLYWHEEL_ONLINE_STORE", "memcached"),
        ("FLYWHEEL_REDIS_URL", "http://cache:6379"),
        ("FLYWHEEL_FEAST_PROJECT", "my-project"),
        ("FLYWHEEL_TRAIN_CRON", "every monday"),
        ("FLYWHEEL_TRAIN_BUDGET", "0"),
        ("FLYWHEEL_TRAIN_BUDGET", "201"),
        ("FLYWHEEL_TRAIN_MAX_EPOCHS", "lots"),
        ("FLYWHEEL_TRAINER_NAMESPACE", "Flywheel_Prod"),
        ("FLYWHEEL_TRAINER_MOUNT", "data"),
        ("FLYWHEEL_DRIFT_PSI", "0"),
        ("FLYWHEEL_DRIFT_SUSTAINED_PSI", "nan"),
        ("FLYWHEEL_DRIFT_SUSTAINED_WINDOWS", "1.5"),
        ("FLYWHEEL_DRIFT_COOLDOWN_HOURS", "-1"),
        ("FLYWHEEL_PUSHGATEWAY_URL", "ftp://gateway:9091"),
    ],
)
def test_a_bad_value_names_the_variable_the_value_and_a_good_one(
    monkeypatch: pytest.MonkeyPatch, name: str, bad: str
) -> None:
    monkeypatch.setenv(name, bad)
    with pytest.raises(SettingsError) as error:
        get_settings()
    message = str(error.value)
    assert message.startswith(f"{name}={bad!r} ") and f"set e.g. {name}=" in message
    # The suggested value really is accepted.
    monkeypatch.setenv(name, error.value.example.strip('"'))
    get_settings()


def test_a_password_in_a_bad_url_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", "mysql://admin:hunter2@db/x")
    with pytest.raises(SettingsError, match=r"admin:\*\*\*@db") as error:
        get_settings()
    assert "hunter2" not in str(error.value)


def test_sections_carry_typed_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_DRIFT_SUSTAINED_WINDOWS", "3")
    monkeypatch.setenv("FLYWHEEL_DRIFT_PSI", "0.25")
    monkeypatch.setenv("FLYWHEEL_TRAIN_CRON", "")
    monkeypatch.setenv("FLYWHEEL_ONLINE_STORE", " Redis ")
    monkeypatch.setenv("FLYWHEEL_TRAINER_PVC", "")
    s = get_settings()
    assert (s.drift.sustained_windows, s.drift.psi_threshold) == (3, 0.25)
    assert s.training.cron == ""  # empty: drift is the only trigger, not the default schedule
    assert s.feature_store.online_store == "redis"
    assert s.trainer.pvc_claim_name is None


def _load_train_model_dag() -> Any:
    """Import dags/train_model.py afresh, as the dag-processor does on each parse."""
    name = f"train_model_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "dags" / "train_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return module.train_model()
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize("epochs", [3, 5])
def test_max_epochs_setting_reaches_the_search_of_a_scheduled_run(
    monkeypatch: pytest.MonkeyPatch, epochs: int
) -> None:
    from flywheel.training import backends
    from flywheel.training.run import parse_args
    from flywheel.training.tasks import train

    monkeypatch.setenv("FLYWHEEL_TRAIN_MAX_EPOCHS", str(epochs))
    monkeypatch.setenv("FLYWHEEL_TRAIN_BUDGET", "2")
    params = _load_train_model_dag().params.validate()  # what a scheduled (form-less) run gets

    commands = []

    def capture(dataset_uri, output_uri, budget, max_epochs, **kwargs):
        commands.append(backends.training_command(dataset_uri, output_uri, budget, max_epochs))
        return {"metrics": {"val_auc": 0.5}}

    monkeypatch.setattr(backends, "train", capture)
    prepared = {"dataset_uri": "/data/training_set.parquet", "output_uri": "/runs/scheduled"}
    train(prepared, params, logger=None)

    (command,) = commands
    args = parse_args(command[3:])  # python -m flywheel.training.run <args>: the run's search settings
    assert (args.max_epochs, args.budget) == (epochs, 2)
