"""``make up`` / ``make down``: Airflow for one home in the background, for interactive use.

``flywheel up`` starts ``flywheel up --foreground`` in a session of its own (its components in theirs),
records it in ``<home>/airflow/up.json`` and returns once the UI answers, printing its address and login.
A home with no model yet first gets a short story (a small ``flywheel demo``), so the UI is not empty.
``flywheel down`` stops what that record names: the foreground process stops every component it started.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings

#: The short story ``flywheel up`` tells a new home: small enough for a few minutes, with every stage.
STORY = {"hours": 40, "drift_at": 20, "impressions_per_hour": 2000, "max_retrains": 1}


def record_path(settings: Settings) -> Path:
    return settings.airflow_home / "up.json"


def _running(settings: Settings) -> dict[str, Any] | None:
    """The record of a ``flywheel up`` still running for this home, else None (a stale record is removed)."""
    path = record_path(settings)
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    try:
        os.killpg(int(record["pid"]), 0)
    except ProcessLookupError:
        path.unlink()
        return None
    return record


def _has_story(settings: Settings) -> bool:
    from flywheel.registry import list_versions
    from flywheel.warehouse import open_warehouse

    warehouse = open_warehouse(settings.warehouse_url)
    return warehouse.table_exists("registry.model_versions") and bool(list_versions(warehouse))


def run_up(port: int = 8080, story: bool = True, timeout: float = 300) -> int:
    """Start Airflow for this home in the background (after a short story if the home has none); 0 once its
    UI answers, 1 when it did not come up (the log says why)."""
    settings = get_settings()
    settings.ensure_dirs()
    running = _running(settings)
    if running:
        print(f"already up: {running['url']} (pid {running['pid']}); `make down` stops it", flush=True)
        return 0
    with socket.socket() as sock:
        if sock.connect_ex(("127.0.0.1", port)) == 0:
            print(f"flywheel up: port {port} is taken; choose another: flywheel up --port N", file=sys.stderr)
            return 2
    if story and not _has_story(settings):
        from flywheel.local.demo import run_demo

        print(f"no model in {settings.home} yet: a short story first ({STORY})", flush=True)
        if run_demo(**STORY) != 0:
            print("flywheel up: the short story did not close; starting Airflow anyway", flush=True)
    log = settings.home / "logs" / "up.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flywheel.cli", "up", "--foreground", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    record_path(settings).write_text(json.dumps({"pid": proc.pid, "port": port, "url": url}))
    deadline = time.monotonic() + timeout
    passwords = settings.airflow_home / "simple_auth_manager_passwords.json.generated"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            record_path(settings).unlink(missing_ok=True)
            print(f"flywheel up: Airflow exited with {proc.returncode}; see {log}", file=sys.stderr)
            return 1
        if _answers(url) and passwords.exists():
            password = json.loads(passwords.read_text())["admin"]
            print(
                f"Airflow UI: {url}  user: admin  password: {password}\n"
                f"home {settings.home}; logs {log}. `make down` (flywheel down) stops it.",
                flush=True,
            )
            return 0
        time.sleep(1)
    print(f"flywheel up: no answer from {url} after {timeout:.0f} s; see {log}; stopping it", file=sys.stderr)
    run_down()
    return 1


def _answers(url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{url}/api/v2/monitor/health", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def run_down(grace: float = 40.0) -> int:
    """Stop the ``flywheel up`` of this home and everything it started; 0 (also when none was running)."""
    settings = get_settings()
    record = _running(settings)
    if record is None:
        print(f"nothing to stop: no `flywheel up` is running for {settings.home}", flush=True)
        return 0
    pid = int(record["pid"])
    os.killpg(pid, signal.SIGTERM)  # the foreground process stops its components' groups, then exits
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.5)
    else:
        os.killpg(pid, signal.SIGKILL)
    record_path(settings).unlink(missing_ok=True)
    print(f"stopped {record['url']} (pid {pid})", flush=True)
    return 0


def run_foreground(port: int = 8080) -> int:
    """Airflow for this home in the foreground; Ctrl-C or SIGTERM stops every component."""
    from flywheel.local.processes import AirflowProcesses, admin_api

    settings = get_settings()
    procs = AirflowProcesses(settings, port=port)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    try:
        procs.start()
        api = admin_api(procs)
        print(
            f"Airflow UI: {procs.base_url}  user: admin  password: {api.password}\n"
            f"DAGs from {settings.dags_folder}; home {settings.home}. Ctrl-C stops it.",
            flush=True,
        )
        while not stop["now"]:
            procs.check_alive()
            time.sleep(2)
    except KeyboardInterrupt:
        pass
    finally:
        procs.stop()
    return 0
