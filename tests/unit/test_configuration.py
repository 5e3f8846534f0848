"""Settings that exist are read: docs/configuration.md lists exactly the variables config.py reads, config.py
is the only reader, a bad value names itself and a good one, and FLYWHEEL_TRAIN_MAX_EPOCHS reaches a run."""

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


def test_config_reads_no_variable_outside_its_registry() -> None:
    # A name spelled in config.py but missing from VARIABLES would be read yet escape the docs check.
    assert set(NAME.findall(CONFIG_SOURCE.read_text())) <= set(VARIABLES)
    assert len(VARIABLES) == len(set(VARIABLES))


def _environment_reads(path: Path) -> list[str]:
    """``os.environ.get(...)``, ``os.getenv(...)`` and ``os.environ[...]`` reads of FLYWHEEL_* variables
    (or of a name not spelled out: a constant or an alias of ``os.environ.get``), as ``file:line``."""
    tree = ast.parse(path.read_text())
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    found = []

    def is_environ(node: ast.AST) -> bool:
        return (isinstance(node, ast.Attribute) and node.attr == "environ") or (
            isinstance(node, ast.Name) and node.id == "environ"
        )

    def flywheel_or_unknown(key: ast.AST | None) -> bool:
        return not (isinstance(key, ast.Constant) and isinstance(key.value, str)) or key.value.startswith(
            "FLYWHEEL_"
        )

    calls = {id(n.func): n for n in ast.walk(tree) if isinstance(n, ast.Call)}
    for node in ast.walk(tree):
        getter = isinstance(node, ast.Attribute) and (
            (node.attr == "get" and is_environ(node.value))
            or (node.attr == "getenv" and isinstance(node.value, ast.Name) and node.value.id == "os")
        )
        if getter:
            call = calls.get(id(node))
            if call is None or flywheel_or_unknown(call.args[0] if call.args else None):
                found.append(f"{where}:{node.lineno}")
        elif isinstance(node, ast.Subscript) and is_environ(node.value) and isinstance(node.ctx, ast.Load):
            if flywheel_or_unknown(node.slice):
                found.append(f"{where}:{node.lineno}")
    return found


def test_config_is_the_only_reader_of_flywheel_variables() -> None:
    sources = [*(ROOT / "plugins" / "flywheel").rglob("*.py"), *(ROOT / "dags").glob("*.py")]
    reads = [hit for path in sources if path != CONFIG_SOURCE for hit in _environment_reads(path)]
    assert reads == [], f"read FLYWHEEL_* through flywheel.config.get_settings(), not directly: {reads}"


def test_the_reader_check_finds_a_direct_read(tmp_path: Path) -> None:
    # The scan above must be able to fail: it flags each way a module could read a variable itself.
    module = tmp_path / "reads_itself.py"
    module.write_text(
        "import os\n"
        "a = os.environ.get('FLYWHEEL_X')\n"
        "b = os.getenv(NAME)\n"
        "c = os.environ['FLYWHEEL_Y']\n"
        "env = os.environ.get\n"
        "d = os.environ.get('RAY_TMPDIR')\n"
    )
    lines = sorted(int(hit.rsplit(":", 1)[1]) for hit in _environment_reads(module))
    assert lines == [2, 3, 4, 5]  # not line 6: Ray's own variable is Ray's business


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
