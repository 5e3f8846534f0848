"""`make up` / `make down` for one home: `flywheel up` returns once the UI answers and prints its address
and login; a second `up` says it is already up; `flywheel down` stops every process `up` started (the
components' own sessions included), and a second `down` has nothing to stop."""

from __future__ import annotations

import os
import subprocess
import sys

import httpx
import pytest

from flywheel.config import Settings
from flywheel.local.processes import free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def _flywheel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flywheel.cli", *args], capture_output=True, text=True, timeout=400
    )


def _airflow_processes(home: Settings) -> list[str]:
    """Command lines of live processes whose environment names this home's Airflow."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            environ = open(f"/proc/{pid}/environ", "rb").read()
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if f"AIRFLOW_HOME={home.airflow_home}".encode() in environ:
            found.append(f"{pid}: {cmdline}")
    return found


def test_up_serves_the_ui_until_down_stops_everything(home: Settings) -> None:
    port = free_port()
    up = _flywheel("up", "--no-story", "--port", str(port))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"Airflow UI: http://127.0.0.1:{port}  user: admin  password: " in up.stdout
        assert httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5).status_code == 200
        assert _airflow_processes(home), "no Airflow process runs for this home"
        again = _flywheel("up", "--no-story", "--port", str(port))
        assert again.returncode == 0 and "already up" in again.stdout
    finally:
        down = _flywheel("down")
    assert down.returncode == 0 and f"stopped http://127.0.0.1:{port}" in down.stdout, down.stdout
    assert _airflow_processes(home) == []
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=2)
    assert "nothing to stop" in _flywheel("down").stdout
