"""Start and stop a real Airflow (scheduler, dag-processor, triggerer, api-server) for one flywheel home.

Every component runs in its own session so that stopping it stops the workers it forked, which
otherwise outlive their parent.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TypeVar

from flywheel.config import Settings

T = TypeVar("T")

log = logging.getLogger(__name__)

COMPONENTS = ("scheduler", "dag-processor", "triggerer", "api-server")
#: A component that dies is restarted this many times (a supervisor's job in production) before giving up.
MAX_RESTARTS = 3
#: Pools the DAGs name; created on every start, so a fresh home never has a task stuck on a missing pool.
POOLS = {"warehouse": (1, "DuckDB admits one writing process: every warehouse task takes this slot")}


#: Ports handed to local servers come from below Linux's ephemeral range (32768-60999): a port the kernel
#: picks (bind to 0) is also what outgoing connections get, and one took a gateway's port between choosing
#: it and binding it while another test run was busy on the machine.
SERVER_PORTS = range(20000, 32000)


def free_port() -> int:
    """A free port on 127.0.0.1 for a server this process starts."""
    return free_port_run(1)


def free_port_run(count: int) -> int:
    """The first of ``count`` consecutive free ports on 127.0.0.1 (Triton takes HTTP, gRPC and metrics
    ports in a row; tests put the gateway on the next one)."""
    for _ in range(200):
        port = random.randrange(SERVER_PORTS.start, SERVER_PORTS.stop - count)
        try:
            for p in range(port, port + count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", p))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no {count} consecutive free ports on 127.0.0.1 in {SERVER_PORTS}")


def _airflow_bin() -> str:
    return str(Path(sys.executable).with_name("airflow"))


def _persistent_secret(path: Path) -> str:
    # Scheduler and api-server must share the JWT secret; keep it with the home, not in the repo.
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(32))
        path.chmod(0o600)
    return path.read_text().strip()


def airflow_environ(
    settings: Settings, port: int, metadata_url: str | None = None, dags_folder: Path | None = None
) -> dict[str, str]:
    """The environment every Airflow component and task of this home runs with; ``dags_folder`` (default:
    the project's ``dags/``) lets a test run Airflow over DAGs of its own."""
    metadata_url = (
        metadata_url or settings.airflow_db_url or f"sqlite:///{settings.airflow_home / 'airflow.db'}"
    )
    env = dict(os.environ)
    env.update(
        {
            "FLYWHEEL_HOME": str(settings.home),
            "FLYWHEEL_WAREHOUSE_URL": settings.warehouse_url,
            "AIRFLOW_HOME": str(settings.airflow_home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder or settings.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(settings.plugins_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url,
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(port),
            "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": _persistent_secret(settings.airflow_home / ".jwt_secret"),
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        }
    )
    env.pop("AIRFLOW_CONFIG", None)
    return env


def airflow_cli(args: list[str], env: Mapping[str, str], timeout: float = 300) -> str:
    """Run one ``airflow`` CLI command for this home; raise with its output if it fails."""
    result = subprocess.run(
        [_airflow_bin(), *args], env=dict(env), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"`airflow {' '.join(args)}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
        )
    return result.stdout


def airflow_cli_batch(commands: Sequence[Sequence[str]], env: Mapping[str, str], timeout: float = 300) -> str:
    """Run ``airflow`` CLI commands in order in one process (``flywheel.local.airflow_batch``: Airflow's
    import costs about 3 s a process); raise with the output when one fails, naming it."""
    result = subprocess.run(
        [sys.executable, "-m", "flywheel.local.airflow_batch", json.dumps([list(c) for c in commands])],
        env=dict(env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        ran = [line for line in result.stdout.splitlines() if line.startswith("$ airflow ")]
        failed = ran[-1][2:] if ran else "airflow (before the first command)"
        raise RuntimeError(f"`{failed}` failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result.stdout


def prepare(env: Mapping[str, str]) -> None:
    """Migrate the metadata DB, create the pools, and serialize the DAGs; safe to repeat."""
    airflow_cli_batch(
        [
            ["db", "migrate"],
            *(["pools", "set", name, str(slots), text] for name, (slots, text) in POOLS.items()),
            ["dags", "reserialize"],
        ],
        env,
    )


def queue_backfill(
    env: Mapping[str, str], dag_id: str, start: datetime, end: datetime, unpause: Iterable[str] = ()
) -> None:
    """Unpause DAGs and create a backfill of ``dag_id`` for logical dates in ``[start, end]``.

    Meant as an ``AirflowProcesses`` setup hook: on SQLite, creating a backfill while the scheduler runs
    can make the scheduler die of a stale-row error.
    """
    backfill = ["backfill", "create", "--dag-id", dag_id, "--from-date", start.isoformat()]
    backfill += ["--to-date", end.isoformat(), "--max-active-runs", "4", "--reprocess-behavior", "completed"]
    airflow_cli_batch([*(["dags", "unpause", name] for name in unpause), backfill], env)


class AirflowProcesses:
    """Airflow's components for one home, each in its own process group; a context manager."""

    def __init__(
        self,
        settings: Settings,
        port: int | None = None,
        metadata_url: str | None = None,
        setup: Callable[[Mapping[str, str]], None] | None = None,
        dags_folder: Path | None = None,
    ):
        """``setup(env)`` runs after the database is prepared and before any component starts: on SQLite,
        writes such as creating a backfill are only safe while the scheduler is not running."""
        self.settings = settings
        self.port = port or free_port()
        self.env = airflow_environ(settings, self.port, metadata_url, dags_folder)
        self.log_dir = settings.airflow_home / "logs" / "components"
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.restarts: dict[str, int] = {}
        self.setup = setup

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, prepare_first: bool = True) -> None:
        self.settings.ensure_dirs()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if prepare_first:
            from flywheel.features.dbt import run_dbt

            # The DAGs read dbt's manifest to lay out one task per model: refresh it for edited models.
            run_dbt(["parse"], self.settings)
            prepare(self.env)
        if self.setup:
            self.setup(self.env)
        for component in COMPONENTS:
            self._launch(component)
        log.info("Airflow starting on %s (logs in %s)", self.base_url, self.log_dir)

    def _launch(self, component: str) -> None:
        out = open(self.log_dir / f"{component}.log", "ab")  # noqa: SIM115 - owned by the child
        self.processes[component] = subprocess.Popen(
            [_airflow_bin(), component],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()

    def check_alive(self) -> None:
        """Restart a component that has exited (SQLite's lock errors can kill the scheduler); raise with
        the tail of its log once it has died more than ``MAX_RESTARTS`` times."""
        for component, proc in list(self.processes.items()):
            if proc.poll() is None:
                continue
            tail = (self.log_dir / f"{component}.log").read_text(errors="replace")[-3000:]
            _signal_group(proc, signal.SIGKILL)  # workers it forked must not linger beside the new one
            self.restarts[component] = self.restarts.get(component, 0) + 1
            if self.restarts[component] > MAX_RESTARTS:
                raise RuntimeError(f"Airflow {component} exited with {proc.returncode}:\n{tail}")
            last_line = tail.strip().splitlines()[-1] if tail.strip() else ""
            log.warning(
                "Airflow %s exited with %s (%s); restarting it (%d/%d)",
                component,
                proc.returncode,
                last_line[-300:],
                self.restarts[component],
                MAX_RESTARTS,
            )
            self._launch(component)

    def wait_for(
        self, predicate: Callable[[], T | None], what: str, timeout: float = 300, every: float = 1.0
    ) -> T:
        """Poll ``predicate`` until it returns something truthy and return that, keeping the components alive
        meanwhile (``check_alive``); ``TimeoutError`` naming ``what`` after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            value = predicate()
            if value:
                return value
            time.sleep(every)
        raise TimeoutError(f"timed out after {timeout:g} s waiting for {what} (logs: {self.log_dir})")

    def stop(self, grace: float = 20.0) -> None:
        """Stop every component and everything it forked (the whole process group)."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGKILL)  # stragglers, and orphaned workers of exited parents
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("process group %d did not exit", proc.pid)
        self.processes.clear()

    def __enter__(self) -> AirflowProcesses:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass


def admin_api(procs: AirflowProcesses):  # -> AirflowAPI, imported lazily to keep this module light
    """An API client logged in as the generated admin user of this home."""
    import json

    from flywheel.local.api import AirflowAPI

    passwords = procs.settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    api = AirflowAPI(procs.base_url)
    api.wait_until_healthy(check=procs.check_alive)
    api.password = json.loads(passwords.read_text())["admin"]
    return api
