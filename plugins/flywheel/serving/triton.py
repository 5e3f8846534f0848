"""Triton Inference Server, by registry version: a thread-safe client (load, unload, infer) for the deploy DAG
and the gateway. The local server (``flywheel triton start|stop|status``) is in :mod:`.triton_server`; its
functions are importable from here too.
"""

from __future__ import annotations

import queue
import threading
import time
import weakref
from concurrent.futures import Future
from typing import Any

import gevent
import numpy as np
import tritonclient.http as httpclient
from geventhttpclient.response import HTTPParseError
from tritonclient.utils import InferenceServerException

from flywheel.serving.repository import MAX_BATCH_SIZE, MODEL_PREFIX, VERSION_PARAMETER, triton_model_name

#: What a dead, restarting or unreachable server raises inside tritonclient's HTTP stack.
_UNREACHABLE = (OSError, HTTPParseError, gevent.Timeout)
_FIX = "start it with `flywheel triton start`, or point FLYWHEEL_TRITON_URL at a running server"


def _model_missing(exc: InferenceServerException) -> bool:
    message = str(exc.message()).lower()
    return "unknown model" in message or "not at ready state" in message or "is not ready" in message


class TritonUnavailable(Exception):
    """Triton cannot be reached (not running, restarting, network): callers answer 503 and retry later."""


class TritonError(Exception):
    """Triton answered, but refused: a model not exported or not loaded, a load that failed, bad inputs."""


#: A call for a connection thread: what to run with a client, on the slow (load) client or not, its result.
_Job = tuple[Any, bool, Future[Any]]


class _Connections:
    """Threads of their own that hold the HTTP connections to Triton; callers hand them calls and wait.

    tritonclient's HTTP client is not thread-safe and its connection pool is gevent's, bound to the thread
    that made it; a gevent hub left behind by a finished thread leaks its file descriptors (4 per thread,
    measured). So no caller thread (the gateway's come and go) ever touches gevent: ``size`` long-lived
    threads here each own a client, and destroy it and their hub when :meth:`stop` ends them.
    """

    def __init__(self, url: str, timeout: float, load_timeout: float, size: int) -> None:
        self.url, self.timeout, self.load_timeout, self.size = url, timeout, load_timeout, size
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job | None] | None = None  # None: no threads running
        # Bumped when a call finds the server unreachable: every thread then drops its (likely stale)
        # keep-alive connection before its next call, so a restarted server is reached on the first retry.
        self._generation = 0

    def run(self, call: Any, slow: bool) -> Any:
        future: Future[Any] = Future()
        with self._lock:
            if self._jobs is None:  # started on first use, all at once: idle threads cost nothing
                self._jobs = queue.SimpleQueue()
                for _ in range(self.size):
                    threading.Thread(
                        target=self._work, args=(self._jobs,), name="flywheel-triton-client", daemon=True
                    ).start()
            self._jobs.put((call, slow, future))
        return future.result()

    def _work(self, jobs: queue.SimpleQueue[_Job | None]) -> None:
        clients: dict[bool, tuple[int, httpclient.InferenceServerClient]] = {}
        try:
            while (job := jobs.get()) is not None:
                self._serve(job, clients)
                # Hold nothing of the caller's while waiting: a call may reference its Triton, whose garbage
                # collection is what ends these threads.
                del job
        finally:
            for _, client in clients.values():
                _close(client)
            gevent.get_hub().destroy(destroy_loop=True)

    def _serve(self, job: _Job, clients: dict[bool, tuple[int, httpclient.InferenceServerClient]]) -> None:
        call, slow, future = job
        if not future.set_running_or_notify_cancel():
            return
        generation, client = clients.get(slow, (-1, None))
        if client is None or generation != self._generation:
            _close(client)
            timeout = self.load_timeout if slow else self.timeout
            generation = self._generation
            client = httpclient.InferenceServerClient(
                self.url, connection_timeout=min(timeout, 5.0), network_timeout=timeout
            )
            clients[slow] = generation, client
        try:
            future.set_result(call(client))
        except BaseException as exc:  # noqa: BLE001 - gevent.Timeout is one; the caller re-raises it
            if isinstance(exc, _UNREACHABLE):
                with self._lock:
                    self._generation += 1
            future.set_exception(exc)

    def stop(self) -> None:
        """End the threads once they finish what they hold (each closes its connections); a later call
        starts new ones."""
        with self._lock:
            jobs, self._jobs = self._jobs, None
        if jobs is not None:
            for _ in range(self.size):
                jobs.put(None)


def _close(client: httpclient.InferenceServerClient | None) -> None:
    if client is not None:
        try:
            client.close()
        except Exception:  # noqa: BLE001 - closing a broken connection
            pass


class Triton:
    """flywheel's view of one Triton server, by registry version (``v0007`` is Triton model
    ``flywheel_v0007``, version 1).

    Safe to share between threads: calls run on ``concurrency`` connection threads of its own (see
    :class:`_Connections`), which end when :meth:`close` is called or the object is garbage-collected.
    """

    def __init__(
        self, url: str, *, timeout: float = 10.0, load_timeout: float = 120.0, concurrency: int = 8
    ) -> None:
        self.url = url.split("://", 1)[-1].rstrip("/")
        self._connections = _Connections(self.url, timeout, load_timeout, concurrency)
        weakref.finalize(self, self._connections.stop)
        self._versions: dict[str, str] = {}  # Triton model name -> registry version, read from its config

    def close(self) -> None:
        """Close the connections (idle keep-alive connections would hold up a server's shutdown)."""
        self._connections.stop()

    def _call(self, what: str, call: Any, *, slow: bool = False) -> Any:
        # One retry on a fresh connection: a keep-alive connection to a restarted server fails once. A
        # timeout is not retried: a hung server would double the caller's wait.
        for attempt in (1, 2):
            try:
                return self._connections.run(call, slow)
            except _UNREACHABLE as exc:
                if attempt == 2 or isinstance(exc, TimeoutError | gevent.Timeout):
                    raise TritonUnavailable(
                        f"Triton at {self.url} cannot be reached ({what}): {type(exc).__name__} {exc}; {_FIX}"
                    ) from exc
            except InferenceServerException as exc:
                # Triton answers 503 for a model that is not loaded too: that is the model, not the server.
                if exc.status() in ("502", "503", "504") and not _model_missing(exc):
                    raise TritonUnavailable(f"Triton at {self.url} is unavailable ({what}): {exc}") from exc
                raise TritonError(f"Triton at {self.url} refused {what}: {exc.message()}") from exc

    def live(self) -> bool:
        """Whether the server answers its liveness probe (never raises)."""
        try:
            return bool(self._call("the liveness probe", lambda c: c.is_server_live()))
        except (TritonUnavailable, TritonError):
            return False

    def server_ready(self) -> bool:
        """Whether the server is ready for requests (never raises): live and not starting or shutting down
        (Triton unloads every model first when it stops, while it still answers as live)."""
        try:
            return bool(self._call("the readiness probe", lambda c: c.is_server_ready()))
        except (TritonUnavailable, TritonError):
            return False

    def ready(self, version: str) -> bool:
        """Whether ``version`` is loaded and ready to infer; TritonUnavailable when the server is down."""
        name = triton_model_name(version)
        return bool(self._call(f"readiness of {version}", lambda c: c.is_model_ready(name)))

    def load(self, version: str) -> None:
        """Load ``version`` from the server's model repository; returns once it is ready (at once if so)."""
        name = triton_model_name(version)
        if self.ready(version):
            return
        try:
            self._call(f"loading {version}", lambda c: c.load_model(name), slow=True)
        except TritonError as exc:
            cause = exc.__cause__
            reason = str(cause.message()) if isinstance(cause, InferenceServerException) else str(exc)
            reason = reason.strip().rstrip(";").strip()  # the python backend ends its traceback with ";"
            if "poll" in reason or "not found" in reason:
                hint = (
                    "it is not in the model repository this server reads (FLYWHEEL_MODEL_REPOSITORY): "
                    "export it first (flywheel.serving.repository.export_version; deploy_model's "
                    "export_and_load does)"
                )
            else:
                hint = "the server's log says more (`flywheel triton status` names it)"
            raise TritonError(
                f"Triton at {self.url} could not load {version} (model {name}): {reason}; {hint}"
            ) from exc
        self._wait(version, ready=True, timeout=30.0)

    def unload(self, version: str, wait: bool = True, timeout: float = 30.0) -> None:
        """Unload ``version``; with ``wait``, until Triton no longer serves it (unloading is asynchronous)."""
        name = triton_model_name(version)
        if name not in self._index():
            return  # never exported to this server's repository: nothing is loaded
        self._call(f"unloading {version}", lambda c: c.unload_model(name), slow=True)
        if wait:
            self._wait(version, ready=False, timeout=timeout)

    def _wait(self, version: str, ready: bool, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        name = triton_model_name(version)
        while True:
            # Unloaded means neither ready nor still finishing its last requests ("UNLOADING").
            state = self._index().get(name)
            done = state == "READY" if ready else state != "READY" and state != "UNLOADING"
            if done and self.ready(version) == ready:
                return
            if time.monotonic() > deadline:
                raise TritonError(
                    f"{version} is still {state or 'absent'} in Triton at {self.url} after {timeout:g} s "
                    f"(waited for it to be {'ready' if ready else 'unloaded'}); see the server's log"
                )
            time.sleep(0.05)

    def _index(self) -> dict[str, str]:
        index = self._call("the repository index", lambda c: c.get_model_repository_index())
        return {m["name"]: m.get("state", "") for m in index}

    def loaded(self) -> list[str]:
        """The registry versions Triton has loaded and ready, sorted."""
        names = [n for n, state in self._index().items() if state == "READY" and n.startswith(MODEL_PREFIX)]
        return sorted(self._version_of(name) for name in names)

    def _version_of(self, name: str) -> str:
        if name not in self._versions:
            config = self._call(f"the config of {name}", lambda c: c.get_model_config(name))
            parameter = config.get("parameters", {}).get(VERSION_PARAMETER, {})
            self._versions[name] = parameter.get("string_value") or name.removeprefix(MODEL_PREFIX)
        return self._versions[name]

    def infer(self, version: str, sparse: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Click probabilities (float32 [N]) of ``version`` for rows ``sparse`` (int64 [N, S]) and ``dense``
        (float32 [N, D]); requests over Triton's batch limit are split. Safe to call from many threads."""
        name = triton_model_name(version)
        sparse = np.ascontiguousarray(sparse, dtype=np.int64)
        dense = np.ascontiguousarray(dense, dtype=np.float32)
        if sparse.ndim != 2 or dense.ndim != 2 or len(sparse) != len(dense):
            raise ValueError(
                f"infer({version!r}) needs sparse [N, S] and dense [N, D] with the same N rows; got sparse "
                f"{list(sparse.shape)} and dense {list(dense.shape)}"
            )
        parts = []
        for start in range(0, len(sparse), MAX_BATCH_SIZE):
            rows = slice(start, start + MAX_BATCH_SIZE)
            try:
                parts.append(
                    self._call(
                        f"inference with {version}",
                        lambda c, r=rows: _infer_once(c, name, sparse[r], dense[r]),
                    )
                )
            except TritonError as exc:
                if isinstance(exc.__cause__, InferenceServerException) and _model_missing(exc.__cause__):
                    raise TritonError(
                        f"{version} is not loaded in Triton at {self.url} (model {name}): load it first "
                        "(Triton.load, or the deploy_model DAG)"
                    ) from exc
                raise
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.float32)


def _infer_once(
    client: httpclient.InferenceServerClient, name: str, sparse: np.ndarray, dense: np.ndarray
) -> np.ndarray:
    inputs = [
        httpclient.InferInput("sparse", list(sparse.shape), "INT64"),
        httpclient.InferInput("dense", list(dense.shape), "FP32"),
    ]
    inputs[0].set_data_from_numpy(sparse, binary_data=True)
    inputs[1].set_data_from_numpy(dense, binary_data=True)
    output = httpclient.InferRequestedOutput("probability", binary_data=True)
    result = client.infer(name, inputs, model_version="1", outputs=[output])
    return result.as_numpy("probability").reshape(-1)


_SERVER = ("start_triton", "stop_triton", "triton_status", "triton_command")


def __getattr__(name: str) -> Any:
    # The local server's functions, where the CLI and the contract name them; loaded on first use.
    if name in _SERVER:
        from flywheel.serving import triton_server

        return getattr(triton_server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
