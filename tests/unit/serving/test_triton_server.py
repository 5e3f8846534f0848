"""What `flywheel triton` and the client say when Triton cannot run or cannot be reached, without a server:
a missing serving venv, a port taken by another process, a remote URL, a closed port (TritonUnavailable, so
the gateway answers 503)."""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator

import numpy as np
import pytest

from flywheel.config import Settings, get_settings
from flywheel.local.processes import free_port_run
from flywheel.serving.triton import Triton, TritonError, TritonUnavailable, start_triton, triton_command


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def listener() -> Iterator[int]:
    """A port another process listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_a_missing_serving_venv_says_which_make_target_builds_it(
    home: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLYWHEEL_SERVING_VENV", str(home.home / "no-such-venv"))
    monkeypatch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{free_port_run(3)}")

    assert triton_command("start", get_settings()) == 1

    err = capsys.readouterr().err
    assert "no-such-venv does not exist" in err and "make .serving-venv/.installed" in err


def test_a_port_in_use_is_named_with_the_setting_that_moves_it(
    home: Settings, monkeypatch: pytest.MonkeyPatch, listener: int
) -> None:
    monkeypatch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{listener - 1}")  # its gRPC port is taken

    with pytest.raises(TritonError) as refused:
        start_triton(get_settings())

    message = str(refused.value)
    assert f"{listener}" in message.split(" on 127.0.0.1 are in use")[0] and "FLYWHEEL_TRITON_URL" in message


def test_a_remote_url_is_not_started_here(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_TRITON_URL", "triton.internal:8000")

    with pytest.raises(TritonError, match="triton.internal:8000, not this machine"):
        start_triton(get_settings())


def test_stop_and_status_without_a_server_say_so(
    home: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{_free_port()}")

    assert triton_command("stop", get_settings()) == 0
    assert triton_command("status", get_settings()) == 1

    out = capsys.readouterr().out
    assert "no tritonserver started from" in out and "not answering" in out and "loaded:     -" in out


def test_a_closed_port_is_unavailable_not_an_error() -> None:
    triton = Triton(f"127.0.0.1:{_free_port()}")
    rows = np.zeros((2, 3), dtype=np.int64), np.zeros((2, 4), dtype=np.float32)

    assert triton.live() is False
    for call in (lambda: triton.ready("v0001"), lambda: triton.infer("v0001", *rows), triton.loaded):
        with pytest.raises(TritonUnavailable, match=r"cannot be reached .*flywheel triton start"):
            call()


def test_rows_that_do_not_pair_up_are_refused_before_any_request() -> None:
    with pytest.raises(ValueError, match=r"same N rows; got sparse \[3, 6\] and dense \[2, 4\]"):
        Triton("127.0.0.1:1").infer("v0001", np.zeros((3, 6)), np.zeros((2, 4)))


def test_a_child_just_started_is_alive_before_procfs_shows_its_command() -> None:
    # Right after Popen returns, /proc/<pid>/cmdline of the new program is often still empty (measured: 27
    # of 30 starts here); a full test run twice took a healthy tritonserver for one that exited at once.
    from flywheel.serving import triton_server

    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    triton_server._CHILDREN[child.pid] = child
    try:
        assert triton_server._is_tritonserver(child.pid)  # its command is python, not tritonserver
    finally:
        child.kill()
        child.wait()
    assert not triton_server._is_tritonserver(child.pid)
    assert child.pid not in triton_server._CHILDREN
