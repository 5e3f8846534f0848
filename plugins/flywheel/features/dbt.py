"""Run the dbt project in ``dbt/`` against the warehouse of the current settings, DuckDB or PostgreSQL.

``python -m flywheel.features.dbt build`` is ``dbt build`` with the profile's environment filled in;
``build_model`` is what each of ``build_features``' dbt tasks runs for its run's interval.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flywheel.config import PROJECT_ROOT, Settings, get_settings

log = logging.getLogger(__name__)

#: The dbt project (``dbt_project.yml``, ``profiles.yml``, models, macros, tests).
DBT_PROJECT_DIR = PROJECT_ROOT / "dbt"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")

#: Statuses in ``run_results.json`` that make a dbt command fail (``warn`` does not).
_FAILED = {"error", "fail", "runtime error"}

#: The dbt variable that hands a run's interval start to ``window_start()`` (dbt/macros/replace_window.sql).
INTERVAL_VAR = "flywheel_interval_start"


def dbt_target(settings: Settings | None = None) -> str:
    """The profile target for the warehouse URL: ``duckdb`` or ``postgres``."""
    url = (settings or get_settings()).warehouse_url
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "duckdb":
        return "duckdb"
    if scheme in ("postgresql", "postgres"):
        return "postgres"
    raise ValueError(
        f"dbt has no target for warehouse URL {url!r}: use duckdb:///path/to/file.duckdb "
        "or postgresql://user@host:5432/database (FLYWHEEL_WAREHOUSE_URL)"
    )


def dbt_env(settings: Settings | None = None) -> dict[str, str]:
    """The ``FLYWHEEL_DBT_*`` variables ``dbt/profiles.yml`` reads, derived from the warehouse URL."""
    settings = settings or get_settings()
    target = dbt_target(settings)
    env = {"FLYWHEEL_DBT_TARGET": target}
    if target == "duckdb":
        path = settings.warehouse_url.split(":///", 1)[1] if ":///" in settings.warehouse_url else ""
        if not path:
            raise ValueError(
                f"DuckDB URL {settings.warehouse_url!r} names no file: use duckdb:///absolute/path.duckdb"
            )
        # dbt runs in the project folder: a relative path would name a different file there
        env["FLYWHEEL_DBT_DUCKDB_PATH"] = path if path == ":memory:" else os.path.abspath(path)
        return env
    parts = urlsplit(settings.warehouse_url)
    env |= {
        "FLYWHEEL_DBT_PG_HOST": parts.hostname or "127.0.0.1",
        "FLYWHEEL_DBT_PG_PORT": str(parts.port or 5432),
        # libpq's own default when the URL names no user
        "FLYWHEEL_DBT_PG_USER": unquote(parts.username) if parts.username else getpass.getuser(),
        # empty: libpq falls back to PGPASSWORD or ~/.pgpass, where production keeps it
        "FLYWHEEL_DBT_PG_PASSWORD": unquote(parts.password) if parts.password else "",
        "FLYWHEEL_DBT_PG_DBNAME": unquote(parts.path.lstrip("/")) or "postgres",
    }
    for option in parts.query.split("&"):
        key, _, value = option.partition("=")
        if key == "sslmode" and value:
            env["FLYWHEEL_DBT_PG_SSLMODE"] = value
    return env


def run_dbt(
    args: list[str],
    settings: Settings | None = None,
    *,
    target_path: Path | None = None,
    echo: bool = False,
) -> None:
    """Run ``dbt <args>`` on the warehouse of ``settings`` in a subprocess; raise if anything failed.

    A subprocess, not dbtRunner: dbt-duckdb would keep the warehouse file open in this process, and
    DuckDB admits one process at a time. ``target_path`` (default ``dbt/target``) receives the manifest,
    ``run_results.json`` and the log; give concurrent callers their own. ``echo`` shows dbt's output live.
    """
    settings = settings or get_settings()
    target = dbt_target(settings)
    # --target-path among the args wins, as it does in dbt: that is where run_results.json will be
    target_path = Path(_flag_value(args, "--target-path") or target_path or DBT_PROJECT_DIR / "target")
    log_path = DBT_PROJECT_DIR / "logs" if target_path == DBT_PROJECT_DIR / "target" else target_path / "logs"
    env = {
        **os.environ,
        **dbt_env(settings),
        "DBT_TARGET_PATH": str(target_path),
        "DBT_LOG_PATH": str(log_path),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
    }
    # dbt's console script, through this interpreter (python -m dbt.cli.main warns about double import)
    command = [sys.executable, "-c", "import sys; from dbt.cli.main import cli; sys.exit(cli())", *args]
    command += [
        "--project-dir",
        str(DBT_PROJECT_DIR),
        "--profiles-dir",
        str(DBT_PROJECT_DIR),
        "--target",
        target,
    ]
    results = target_path / "run_results.json"
    results.unlink(missing_ok=True)
    log.info("running dbt %s on the %s warehouse", " ".join(args), target)
    # cwd: the project, so that no dbt.py of a caller's folder shadows the dbt package
    completed = subprocess.run(
        command, env=env, cwd=DBT_PROJECT_DIR, capture_output=not echo, text=True, check=False
    )
    if completed.returncode == 0:
        return
    failures = _failures(results)
    detail = "; ".join(failures) if failures else _tail((completed.stdout or "") + (completed.stderr or ""))
    raise RuntimeError(
        f"dbt {' '.join(args)} failed on the {target} warehouse (exit {completed.returncode}): "
        f"{detail or 'see the output above'}. Full log: {log_path / 'dbt.log'}"
    )


def build_model(
    model: str,
    interval: Mapping[str, str] | None = None,
    settings: Settings | None = None,
    *,
    target_path: Path | None = None,
    echo: bool = False,
) -> str:
    """``dbt build`` of one model (unit tests, model, data tests) for the run that owns ``interval``.

    The incremental models rebuild from the earlier of their newest hour and the interval's start, less
    the lookback: a rerun of an old, repaired interval rebuilds it and everything after it, so the marts
    equal a full refresh. Without an interval only the lookback before the newest hour is rebuilt.
    """
    args = ["build", "--select", model]
    if interval is not None:
        args += ["--vars", json.dumps(interval_vars(interval))]
    run_dbt(args, settings, target_path=target_path, echo=echo)
    return model


def interval_vars(interval: Mapping[str, str]) -> dict[str, str]:
    """The ``--vars`` of a run's interval: its start as a naive UTC timestamp literal, parsed first, so
    nothing but a timestamp reaches the SQL."""
    # here, not at the top: the DAG imports this module at parse time, and flywheel.events loads pyarrow
    from flywheel.events import naive_utc

    start = naive_utc(interval["start"])
    return {INTERVAL_VAR: start.isoformat(sep=" ")}


def _failures(run_results: Path) -> list[str]:
    """``<node> (<status>): <message>`` for every failed model, test or unit test of the last run."""
    if not run_results.exists():
        return []
    failures = []
    for result in json.loads(run_results.read_text()).get("results", []):
        if result.get("status") in _FAILED:
            message = " ".join(_ANSI.sub("", result.get("message") or "").split())
            failures.append(f"{_node_name(result['unique_id'])} ({result['status']}): {message[:500]}")
    return failures


def _node_name(unique_id: str) -> str:
    """``model user_features``, ``test unique_...`` or ``unit_test user_features::name`` from a unique id."""
    kind, _package, *rest = unique_id.split(".")
    if kind == "unit_test":
        return f"unit_test {'::'.join(rest)}"
    return f"{kind} {rest[0]}" if rest else unique_id


def _flag_value(args: list[str], flag: str) -> str | None:
    for i, arg in enumerate(args):
        if arg == flag and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(flag + "="):
            return arg.split("=", 1)[1]
    return None


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def main(argv: list[str] | None = None) -> int:
    """``python -m flywheel.features.dbt <dbt arguments>``: run dbt with flywheel's environment."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        run_dbt(list(sys.argv[1:] if argv is None else argv), echo=True)
    except RuntimeError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
