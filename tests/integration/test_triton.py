"""A real tritonserver (the serving venv's) on free 127.0.0.1 ports serving real exported models: Triton's
scores equal the TorchScript model's, two versions serve side by side, unloading takes one away, eight
threads share one client, and a stopped server means TritonUnavailable and no process left behind."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from flywheel.artifacts.folder import score_exported
from flywheel.artifacts.spec import FeatureSpec, encode
from flywheel.config import Settings, get_settings
from flywheel.local.processes import free_port_run
from flywheel.serving.repository import MAX_BATCH_SIZE, export_version
from flywheel.serving.triton import (
    Triton,
    TritonError,
    TritonUnavailable,
    start_triton,
    stop_triton,
    triton_command,
)

pytestmark = pytest.mark.slow

TOLERANCE = 1e-5  # the acceptance: Triton's scores equal the PyTorch model's to 1e-5


@dataclass(frozen=True)
class Served:
    settings: Settings
    triton: Triton
    pid: int
    models: dict[str, Path]  # registry version -> its model folder
    sparse: np.ndarray
    dense: np.ndarray

    def expected(self, version: str, rows: np.ndarray | slice = slice(None)) -> np.ndarray:
        return score_exported(self.models[version], self.sparse[rows], self.dense[rows])


def _processes(pgid: int | None = None, mentioning: str | None = None) -> list[str]:
    """Command lines of the live processes in a process group, or whose command line mentions a text."""
    members = []
    for proc in Path("/proc").iterdir():
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
        if proc.name.isdigit() and fields[0] != "Z":
            if (pgid is not None and int(fields[2]) == pgid) or (mentioning and mentioning in cmdline):
                members.append(cmdline)
    return members


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, train_small_model) -> Iterator[Served]:
    from flywheel.simulate.training_set import simulated_training_set

    root = tmp_path_factory.mktemp("triton")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("FLYWHEEL_HOME", str(root / "home"))
        patch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{free_port_run(3)}")
        settings = get_settings()
        frame = simulated_training_set(hours=2, impressions_per_hour=500, seed=3)
        models = {
            "v0001": train_small_model(frame, root / "runs" / "v0001", epochs=2),
            "v0002": train_small_model(frame, root / "runs" / "v0002", shuffle=True, epochs=1, seed=1),
        }
        for version, folder in models.items():
            export_version(version, folder, settings.serving.model_repository)
        # Both models were fitted on the same frame: one spec encodes rows for either.
        sparse, dense = encode(frame, FeatureSpec.load(models["v0001"] / "feature_spec.json"), serving=True)
        pid = start_triton(settings)
        triton = Triton(settings.serving.triton_url)
        try:
            yield Served(settings, triton, pid, models, sparse, dense)
        finally:
            triton.close()  # else the server's shutdown waits out its exit timeout for these connections
            stop_triton(settings)
            assert _processes(mentioning=f"--model-repository={settings.serving.model_repository}") == []


def test_triton_scores_equal_the_torchscript_model(served: Served) -> None:
    started = time.monotonic()
    served.triton.load("v0001")
    load_seconds = time.monotonic() - started

    rows = np.arange(2 * MAX_BATCH_SIZE + 7) % len(served.sparse)  # three Triton requests, the last partial
    scores = served.triton.infer("v0001", served.sparse[rows], served.dense[rows])

    assert load_seconds < 10.0  # the seed article's hot reload; about 2 s here
    assert scores.shape == (len(rows),) and scores.dtype == np.float32
    np.testing.assert_allclose(scores, served.expected("v0001", rows), rtol=0, atol=TOLERANCE)
    assert served.triton.infer("v0001", served.sparse[:0], served.dense[:0]).shape == (0,)


def test_two_versions_serve_side_by_side_until_one_is_unloaded(served: Served) -> None:
    served.triton.load("v0001")
    served.triton.load("v0002")
    rows = slice(0, 300)

    assert served.triton.loaded() == ["v0001", "v0002"]
    for version in ("v0001", "v0002"):
        np.testing.assert_allclose(
            served.triton.infer(version, served.sparse[rows], served.dense[rows]),
            served.expected(version, rows),
            rtol=0,
            atol=TOLERANCE,
        )
    assert not np.allclose(served.expected("v0001", rows), served.expected("v0002", rows), atol=1e-3)

    served.triton.unload("v0002")
    served.triton.unload("v0002")  # unloaded already: nothing to do
    served.triton.unload("v0404")  # never exported: nothing to do

    assert served.triton.loaded() == ["v0001"] and not served.triton.ready("v0002")
    with pytest.raises(TritonError, match="v0002 is not loaded in Triton"):
        served.triton.infer("v0002", served.sparse[rows], served.dense[rows])
    assert served.triton.ready("v0001")


def test_eight_threads_share_one_client_and_each_gets_its_own_scores(served: Served) -> None:
    served.triton.load("v0001")
    served.triton.load("v0002")
    rng = np.random.default_rng(0)
    calls = [
        ("v0001" if i % 2 else "v0002", rng.integers(0, len(served.sparse), size=int(rng.integers(1, 400))))
        for i in range(160)
    ]

    def call(version: str, rows: np.ndarray) -> float:
        scores = served.triton.infer(version, served.sparse[rows], served.dense[rows])
        return float(np.max(np.abs(scores - served.expected(version, rows))))

    with ThreadPoolExecutor(max_workers=8) as pool:
        errors = list(pool.map(lambda args: call(*args), calls))

    assert max(errors) <= TOLERANCE


def test_caller_threads_that_come_and_go_leave_no_connection_behind(served: Served) -> None:
    # The gateway's worker threads end and new ones start; each call must not leave a connection (or gevent's
    # loop) behind in a thread that is gone.
    served.triton.load("v0001")

    def score_in_a_new_thread() -> None:
        thread = threading.Thread(
            target=served.triton.infer, args=("v0001", served.sparse[:8], served.dense[:8])
        )
        thread.start()
        thread.join()

    score_in_a_new_thread()
    open_files = len(os.listdir("/proc/self/fd"))
    for _ in range(60):
        score_in_a_new_thread()

    assert len(os.listdir("/proc/self/fd")) <= open_files + 2


def test_a_version_never_exported_is_refused_by_naming_the_export(served: Served) -> None:
    with pytest.raises(TritonError, match=r"could not load v0404 .*export it first"):
        served.triton.load("v0404")


def test_a_broken_model_file_fails_its_load_with_the_reason(served: Served, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "feature_spec.json").write_bytes((served.models["v0001"] / "feature_spec.json").read_bytes())
    (broken / "model.pt").write_bytes(b"not a TorchScript archive")
    export_version("v0500", broken, served.settings.serving.model_repository)

    with pytest.raises(TritonError, match=r"(?s)could not load v0500 .*zip archive.*server's log says more"):
        served.triton.load("v0500")

    assert "v0500" not in served.triton.loaded() and served.triton.ready("v0001")


def test_status_and_a_second_start_report_the_running_server(
    served: Served, capsys: pytest.CaptureFixture[str]
) -> None:
    served.triton.load("v0001")

    assert start_triton(served.settings) == served.pid  # already running: reused, not started twice
    assert triton_command("status", served.settings) == 0
    out = capsys.readouterr().out
    assert f"pid {served.pid}" in out and "loaded:     v0001" in out and "exported:   v0001, v0002" in out


def test_a_stopped_server_is_unavailable_leaves_no_process_and_is_found_again_on_restart(
    served: Served,
) -> None:
    served.triton.load("v0001")
    group = _processes(pgid=served.pid)
    assert any("tritonserver" in c for c in group) and any("triton_python_backend_stub" in c for c in group)

    assert stop_triton(served.settings) is True

    assert _processes(pgid=served.pid) == []
    assert not served.triton.live()
    with pytest.raises(TritonUnavailable, match="cannot be reached"):
        served.triton.infer("v0001", served.sparse[:5], served.dense[:5])
    assert stop_triton(served.settings) is False

    start_triton(served.settings)  # the same client (the gateway's) serves again once the model is back
    served.triton.load("v0001")
    np.testing.assert_allclose(
        served.triton.infer("v0001", served.sparse[:50], served.dense[:50]),
        served.expected("v0001", slice(0, 50)),
        rtol=0,
        atol=TOLERANCE,
    )
