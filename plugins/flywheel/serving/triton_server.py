"""The local Triton server behind ``flywheel triton start|stop|status``: tritonserver and its python
backend from the serving venv, in a process group of its own; pidfile, log in ``<FLYWHEEL_HOME>/triton``.
"""

from __future__ import annotations

import filecmp
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flywheel.config import Settings
from flywheel.serving.repository import exported_versions
from flywheel.serving.triton import Triton, TritonError, TritonUnavailable

#: Servers this process started, so stopping one also reaps it (no zombie left in its process group).
log = logging.getLogger(__name__)
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
#: Starts tried before ``start_triton`` gives up on a server that exits at once.
START_ATTEMPTS = 3
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "0.0.0.0")
_VENV_FIX = (
    "run `make .serving-venv/.installed` (or set FLYWHEEL_SERVING_VENV to a venv with nvidia-pytriton)"
)


def _paths(settings: Settings) -> dict[str, Path]:
    state = settings.home / "triton"
    return {
        "state": state,
        "pidfile": state / "tritonserver.json",
        "log": state / "tritonserver.log",
        "backends": state / "backends",
    }


def _host_port(url: str) -> tuple[str, int]:
    host, _, port = url.split("://", 1)[-1].rstrip("/").rpartition(":")
    return host, int(port)


def _serving_python(venv: Path) -> dict[str, str]:
    """Ask the serving venv's python where its libpython and site-packages are."""
    python = venv / "bin" / "python"
    if not python.exists():
        raise TritonError(f"the serving venv {venv} does not exist (no bin/python): {_VENV_FIX}")
    code = (
        "import json, sys, sysconfig; print(json.dumps({'libdir': sysconfig.get_config_var('LIBDIR'), "
        "'site': sysconfig.get_paths()['purelib'], 'version': '%d.%d' % sys.version_info[:2]}))"
    )
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    if out.returncode != 0:
        raise TritonError(
            f"the serving venv's python {python} does not run ({out.stderr.strip()}): {_VENV_FIX}"
        )
    found = json.loads(out.stdout)
    if not (Path(found["site"]) / "pytriton" / "tritonserver" / "bin" / "tritonserver").exists():
        raise TritonError(f"the serving venv {venv} has no tritonserver (nvidia-pytriton): {_VENV_FIX}")
    return found


def _backend_dir(found: dict[str, str], backends: Path) -> Path:
    """Triton's python backend as tritonserver wants it: the library, its utils, and the stub built for
    the serving venv's python version (the wheel keeps them in three places)."""
    pytriton = Path(found["site"]) / "pytriton" / "tritonserver"
    sources = {
        "libtriton_python.so": pytriton / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": pytriton / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": (
            pytriton / "python_backend_stubs" / found["version"] / "triton_python_backend_stub"
        ),
    }
    target = backends / "python"
    target.mkdir(parents=True, exist_ok=True)
    for name, source in sources.items():
        if not source.exists():
            raise TritonError(f"nvidia-pytriton in {found['site']} lacks {source}: {_VENV_FIX}")
        dest = target / name
        if not dest.exists() or not filecmp.cmp(source, dest):  # size and mtime (copy2 keeps it)
            shutil.copy2(source, dest.with_name(name + ".partial"))
            os.replace(dest.with_name(name + ".partial"), dest)
    return backends


def _port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # TIME_WAIT of a stopped server is free
        try:
            sock.bind(("127.0.0.1" if host == "localhost" else host, port))
        except OSError:
            return True
    return False


def _read_pidfile(settings: Settings) -> dict[str, Any] | None:
    pidfile = _paths(settings)["pidfile"]
    try:
        return json.loads(pidfile.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _is_tritonserver(pid: int) -> bool:
    """Whether ``pid`` is a live tritonserver (a recycled pid is not ours to signal). For a server this
    process started, its exit status decides: procfs was seen to deny a running child of ours (a full test
    run, twice), which made a healthy start look like an instant exit."""
    proc = _CHILDREN.get(pid)
    if proc is not None:
        if proc.poll() is None:
            return True
        del _CHILDREN[pid]
        return False
    if not Path("/proc").is_dir():  # no procfs (macOS): trust the pidfile
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    cmdline, state = _procfs(pid)
    return b"tritonserver" in cmdline and state not in ("Z", "")


def _procfs(pid: int) -> tuple[bytes, str]:
    """The command line and the state letter procfs shows for ``pid`` (empty when it shows none)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return b"", ""
    return cmdline, state


def _reap(pid: int) -> None:
    proc = _CHILDREN.get(pid)
    if proc is not None and proc.poll() is not None:
        del _CHILDREN[pid]


def _group_alive(pgid: int) -> bool:
    _reap(pgid)
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_triton(settings: Settings, timeout: float = 60.0) -> int:
    """Start tritonserver for ``settings`` (explicit model control over the model repository) in its own
    process group and wait until it is live; returns its pid. A server this home started already is reused."""
    url, repository = settings.serving.triton_url, settings.serving.model_repository
    assert repository is not None
    host, port = _host_port(url)
    paths = _paths(settings)
    running = _read_pidfile(settings)
    if running and _is_tritonserver(running["pid"]):
        if running["url"] != url:
            raise TritonError(
                f"a tritonserver from {settings.home} already runs at {running['url']} "
                f"(pid {running['pid']}), not at {url}: stop it first (`flywheel triton stop` with that "
                "FLYWHEEL_TRITON_URL)"
            )
        _wait_live(url, running["pid"], timeout, paths["log"])
        return int(running["pid"])
    if host not in _LOCAL_HOSTS:
        raise TritonError(
            f"FLYWHEEL_TRITON_URL is {url}, not this machine: `flywheel triton start` runs a local server "
            "only (use 127.0.0.1:<port>, or start the Triton image where that host is)"
        )
    busy = [p for p in (port, port + 1, port + 2) if _port_in_use(host, p)]
    if busy:
        raise TritonError(
            f"port(s) {', '.join(map(str, busy))} on {host} are in use by another process (Triton takes "
            f"HTTP {port}, gRPC {port + 1}, metrics {port + 2}): stop it, or set FLYWHEEL_TRITON_URL to a "
            "free port"
        )
    found = _serving_python(settings.serving.venv)
    paths["state"].mkdir(parents=True, exist_ok=True)
    backends = _backend_dir(found, paths["backends"])
    repository.mkdir(parents=True, exist_ok=True)
    binary = Path(found["site"]) / "pytriton" / "tritonserver" / "bin" / "tritonserver"
    command = [
        str(binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        "--model-control-mode=explicit",
        "--disable-auto-complete-config",
        "--exit-timeout-secs=3",  # SIGTERM waits this long for open connections (idle ones too), not 30 s
        *("--http-port", str(port), "--grpc-port", str(port + 1), "--metrics-port", str(port + 2)),
        *("--http-address", host, "--grpc-address", host, "--metrics-address", host),
    ]
    # The stub runs the first python3 on PATH: the serving venv's (torch, numpy<2), never the caller's.
    env = dict(os.environ)  # the child's environment (it reads it, not us), with two entries changed:
    env["LD_LIBRARY_PATH"] = f"{found['libdir']}:{Path(found['site']) / 'nvidia_pytriton.libs'}"
    env["PATH"] = f"{settings.serving.venv / 'bin'}:{env.get('PATH', '/usr/bin:/bin')}"
    env.pop("PYTHONPATH", None)  # the main venv's packages (numpy 2) must not leak into the stub
    for attempt in range(1, START_ATTEMPTS + 1):
        with paths["log"].open("ab") as log_file:
            log_file.write(f"\n== flywheel triton start {datetime.now(UTC).isoformat()}: {url}\n".encode())
            log_file.flush()
            proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # its own process group: stopping it stops the python stubs too
            )
        _CHILDREN[proc.pid] = proc
        pidfile = {"pid": proc.pid, "url": url, "repository": str(repository), "log": str(paths["log"])}
        paths["pidfile"].write_text(json.dumps(pidfile) + "\n")
        try:
            _wait_live(url, proc.pid, timeout, paths["log"])
        except TritonError as exc:
            _stop_group(proc.pid, grace=5.0)
            paths["pidfile"].unlink(missing_ok=True)
            # Once on this machine a tritonserver exited at once, without a line of output (exit status in
            # the message now): a second start is cheap and a supervisor would do the same.
            if attempt < START_ATTEMPTS and "exited while starting" in str(exc):
                log.warning("tritonserver exited while starting (attempt %d): starting it again", attempt)
                continue
            raise
        except BaseException:
            _stop_group(proc.pid, grace=5.0)
            paths["pidfile"].unlink(missing_ok=True)
            raise
        return proc.pid
    raise AssertionError("unreachable: the last attempt returns or raises")


def _wait_live(url: str, pid: int, timeout: float, log: Path) -> None:
    triton, deadline = Triton(url, timeout=2.0), time.monotonic() + timeout
    child = _CHILDREN.get(pid)  # before _is_tritonserver reaps it: its exit status goes in the message
    try:
        while not triton.live():
            if not _is_tritonserver(pid):
                tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
                status = f", exit status {child.poll()}" if child is not None else ""
                cmdline, state = _procfs(pid)
                seen = f"; procfs shows state {state or '-'}, command {cmdline[:120]!r}"
                raise TritonError(
                    f"tritonserver (pid {pid}{status}) exited while starting{seen}; the end of {log}:\n{tail}"
                )
            if time.monotonic() > deadline:
                raise TritonError(
                    f"tritonserver (pid {pid}) was not live at {url} within {timeout:g} s (log: {log})"
                )
            time.sleep(0.2)
    finally:
        triton.close()  # an idle keep-alive connection would hold up the server's shutdown


def _stop_group(pgid: int, grace: float) -> None:
    """SIGTERM the server's process group (its python stubs too), SIGKILL what is left after ``grace``."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while _group_alive(pgid):
            if time.monotonic() > deadline:
                break
            time.sleep(0.05)
        else:
            return


def stop_triton(settings: Settings, grace: float = 10.0) -> bool:
    """Stop the tritonserver this home started (its whole process group); False when none was running."""
    running = _read_pidfile(settings)
    pidfile = _paths(settings)["pidfile"]
    if not running:
        return False
    pid = int(running["pid"])
    alive = _is_tritonserver(pid)
    if alive:
        _stop_group(pid, grace)
    child = _CHILDREN.pop(pid, None)
    if child is not None:
        child.wait(timeout=5)  # reaped: no zombie of ours stays behind
    pidfile.unlink(missing_ok=True)
    return alive


def triton_status(settings: Settings) -> dict[str, Any]:
    """What runs where: the local process (if this home started one), liveness, loaded and exported
    versions."""
    url, repository = settings.serving.triton_url, settings.serving.model_repository
    running = _read_pidfile(settings)
    pid = int(running["pid"]) if running and _is_tritonserver(running["pid"]) else None
    triton = Triton(url, timeout=2.0)
    live = triton.live()
    try:
        loaded = triton.loaded() if live else []
    except (TritonUnavailable, TritonError):
        loaded = []
    finally:
        triton.close()
    return {
        "url": url,
        "pid": pid,
        "live": live,
        "loaded": loaded,
        "exported": exported_versions(repository) if repository else [],
        "repository": str(repository),
        "log": str(_paths(settings)["log"]),
    }


def triton_command(action: str, settings: Settings) -> int:
    """``flywheel triton start|stop|status``; returns the exit code (status: 0 when live, else 1)."""
    url, log = settings.serving.triton_url, _paths(settings)["log"]
    if action == "start":
        before = _read_pidfile(settings)
        try:
            pid = start_triton(settings)
        except (TritonError, TritonUnavailable) as exc:
            print(f"flywheel triton start: {exc}", file=sys.stderr)
            return 1
        repository = settings.serving.model_repository
        state = "was already running" if before and before["pid"] == pid else "is live"
        print(f"tritonserver {state} at http://{url} (pid {pid}); models from {repository}; log {log}")
        return 0
    if action == "stop":
        running = _read_pidfile(settings)
        if stop_triton(settings):
            print(f"stopped tritonserver (pid {running['pid']}) at {running['url']}")
        else:
            print(f"no tritonserver started from {settings.home} is running")
        return 0
    if action == "status":
        status = triton_status(settings)
        process = f"pid {status['pid']}" if status["pid"] else "not started from this home"
        print(f"url:        http://{status['url']} ({'live' if status['live'] else 'not answering'})")
        print(f"process:    {process}")
        print(f"loaded:     {', '.join(status['loaded']) or '-'}")
        print(f"exported:   {', '.join(status['exported']) or '-'} (in {status['repository']})")
        print(f"log:        {status['log']}")
        return 0 if status["live"] else 1
    raise ValueError(f"triton action {action!r} is not one of start, stop, status")
