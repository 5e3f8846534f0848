"""The inference gateway (``flywheel serve``): ``POST /v1/rank`` reads online features, picks the champion or
the canary by the user's stable hash, scores through Triton and logs every prediction into the landing zone.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from flywheel.artifacts.spec import FeatureSpec, FeatureSpecError
from flywheel.config import Settings
from flywheel.feature_store.settings import FeatureStoreError
from flywheel.serving.gateway_metrics import GatewayMetrics
from flywheel.serving.online import OnlineFeatures
from flywheel.serving.prediction_log import PredictionLog, PredictionLogError
from flywheel.serving.repository import triton_model_name
from flywheel.serving.requests import Rejected, body_limit, parse_rank_request, too_large
from flywheel.serving.routing import CANARY, CHAMPION, choose_bucket, user_hash
from flywheel.serving.state import CachedState, CanaryState, StateError, StateStore, open_state
from flywheel.serving.triton import Triton, TritonError, TritonUnavailable

log = logging.getLogger(__name__)

SPEC_FILE = "feature_spec.json"  # beside config.pbtxt in each exported model (serving/repository.py)
#: After Triton refused a canary for not having it loaded, its users go to the champion this long without
#: asking again (a rollback unloads the canary right after setting its weight to 0).
UNREADY_SECONDS = 1.0
#: How long to wait before asking Triton whether a failed call was a shutdown or a broken model.
STILL_SERVING_PAUSE_S = 0.2
#: Triton under explicit model control comes back from a restart with nothing loaded: the gateway loads the
#: versions the canary state names again, trying each at most once per this many seconds.
RELOAD_SECONDS = 3.0


class Gateway:
    """What ``/v1/rank`` needs, shared by the requests: Triton, the canary state, features, the log."""

    def __init__(
        self,
        settings: Settings,
        triton: Triton | None = None,
        state_store: StateStore | None = None,
        features: OnlineFeatures | None = None,
        prediction_log: PredictionLog | None = None,
    ) -> None:
        self.settings = settings
        self.max_items = settings.serving.max_items
        self.repository = Path(settings.serving.model_repository or settings.home / "triton" / "models")
        self.triton = triton or Triton(settings.serving.triton_url)
        self.store = state_store or open_state(settings)
        self.state = CachedState(self.store)
        self.features = features or OnlineFeatures(settings)
        self.log = prediction_log or PredictionLog(settings.landing_dir, settings.serving.flush_seconds)
        self.metrics = GatewayMetrics(pending=lambda: self.log.pending, weight=self._weight)
        self._specs: dict[str, FeatureSpec] = {}
        self._unready: dict[str, float] = {}
        self._reload_lock = threading.Lock()
        self._reload_after: dict[str, float] = {}

    def _weight(self) -> float:
        try:
            state = self.state.get()
        except StateError:
            return 0.0
        return state.weight if state.canary else 0.0

    def rank(self, user_id: int, item_ids: list[int]) -> dict[str, Any]:
        """Score ``item_ids`` for ``user_id``; raises :class:`Rejected` (503, 500) when it cannot."""
        started = time.perf_counter()
        version, bucket = "none", "none"
        try:
            state = self._current_state()
            bucket = choose_bucket(user_id, state)
            version = (state.canary if bucket == CANARY else state.champion) or "none"
            version, bucket, scores = self._score(state, bucket, user_id, item_ids)
        except Rejected as exc:
            self.metrics.observe(version, bucket, exc.status, time.perf_counter() - started)
            raise
        served_at = datetime.now(UTC).replace(tzinfo=None)
        request_id = uuid.uuid4().hex
        latency = time.perf_counter() - started
        self._log(request_id, served_at, user_id, item_ids, scores, version, bucket, latency)
        self.metrics.observe(version, bucket, 200, latency)
        return {
            "request_id": request_id,
            "model_version": version,
            "bucket": bucket,
            "scores": scores.astype(np.float64).tolist(),
            "served_at": served_at.isoformat(),
        }

    def _current_state(self) -> CanaryState:
        try:
            state = self.state.get()
        except StateError as exc:
            raise Rejected(503, f"the canary state cannot be read, so no model can be chosen: {exc}") from exc
        if not state.champion:
            raise Rejected(
                503,
                f"no model is in service: the canary state ({self.store.location}) names no champion. Deploy "
                "one: the deploy_model DAG puts the first blessed model in service after its smoke test",
            )
        return state

    def _encoded(self, user_id: int, item_ids: list[int], version: str, spec: FeatureSpec) -> tuple:
        """The model's tensors from online features; the time it takes is a metric (cache or Feast)."""
        started = time.perf_counter()
        try:
            sparse, dense, read = self.features.encoded(user_id, item_ids, version, spec)
        except FeatureStoreError as exc:
            raise Rejected(503, f"online features cannot be read: {exc}") from exc
        except FeatureSpecError as exc:
            raise Rejected(500, f"the online features do not fit {version}'s feature spec: {exc}") from exc
        self.metrics.features.labels(source="feast" if read else "cache").observe(
            time.perf_counter() - started
        )
        return sparse, dense

    def _score(
        self, state: CanaryState, bucket: str, user_id: int, item_ids: list[int], retry: bool = True
    ) -> tuple[str, str, np.ndarray]:
        """Scores from the bucket's version; a canary Triton has not loaded (or that is not exported yet)
        serves its users from the champion instead. A champion that is gone is looked up again once (a
        promotion unloads the old champion right after the state names the new one)."""
        choices = [(state.canary, CANARY)] if bucket == CANARY else []
        for version, served in [*choices, (state.champion, CHAMPION)]:
            assert version is not None
            if served == CANARY and self._unready.get(version, 0.0) > time.monotonic():
                continue
            spec = self._spec(version)
            try:
                if spec is None:
                    raise TritonError(f"{version} is not exported to {self.repository}")
                sparse, dense = self._encoded(user_id, item_ids, version, spec)
                return version, served, self.triton.infer(version, sparse, dense)
            except TritonUnavailable as exc:
                raise Rejected(
                    503, f"Triton at {self.triton.url} is not reachable, nothing was scored (retry): {exc}"
                ) from exc
            except TritonError as exc:
                fresh = self.state.get(force=True)
                if (fresh.canary if served == CANARY else fresh.champion) != version:
                    # The state moved on (a rollback or a promotion unloads right after writing it).
                    if served == CANARY:
                        continue
                    if retry and fresh.champion:
                        return self._score(fresh, CHAMPION, user_id, item_ids, retry=False)
                if spec is not None and self._loaded(version):
                    if retry:  # loaded in between (the gateway's own reload), or a passing failure: once more
                        return self._score(fresh, served, user_id, item_ids, retry=False)
                    if self._still_serving(version):
                        raise Rejected(500, f"Triton failed to score with {version}: {exc}") from exc
                    # Triton is stopping (it unloads its models first) or lost the model in between.
                    raise Rejected(
                        503,
                        f"Triton at {self.triton.url} is not reachable: it stopped serving {version} "
                        f"mid-request, nothing was scored (retry): {exc}",
                    ) from exc
                if not self.triton.server_ready():
                    # Stopping (it unloads every model first, still live) or starting: not a model problem.
                    raise Rejected(
                        503,
                        f"Triton at {self.triton.url} is not reachable: it is not ready (stopping or "
                        f"starting), nothing was scored (retry): {exc}",
                    ) from exc
                reloading = spec is not None and self._reload(version)
                if served == CANARY:
                    self._unready[version] = time.monotonic() + UNREADY_SECONDS
                    log.warning("canary %s is not available (%s): its users get the champion", version, exc)
                    continue
                if reloading:
                    raise Rejected(
                        503,
                        f"the champion {version} is not loaded in Triton at {self.triton.url} (a restarted "
                        "Triton comes back empty): the gateway is loading it again, retry in a few seconds",
                    ) from exc
                raise Rejected(
                    503,
                    f"the champion {version} cannot serve: {exc}. Load it into Triton at {self.triton.url} "
                    "(deploy_model's export_and_load does), or fix the canary state",
                ) from exc
        raise AssertionError("unreachable: the champion is always tried")

    def _still_serving(self, version: str) -> bool:
        """Whether Triton is live and has ``version`` loaded a moment after a failed call: an error while it
        shuts down is a 503 (retry elsewhere), only a failure of a model that stays up is a 500."""
        time.sleep(STILL_SERVING_PAUSE_S)
        return self.triton.live() and self._loaded(version)

    def _reload(self, version: str) -> bool:
        """Load ``version`` into a ready Triton that lost it, in the background (this request does not
        wait); False when Triton is not ready (down, stopping) or was asked within RELOAD_SECONDS."""
        with self._reload_lock:
            if self._reload_after.get(version, 0.0) > time.monotonic() or not self.triton.server_ready():
                return False
            self._reload_after[version] = time.monotonic() + RELOAD_SECONDS
        threading.Thread(
            target=self._load_named, args=(version,), name=f"reload {version}", daemon=True
        ).start()
        return True

    def _load_named(self, version: str) -> None:
        # Only what the state names now: a rollback or a promotion writes the state before it unloads.
        try:
            state = self.state.get(force=True)
            if version not in (state.champion, state.canary):
                return
            self.triton.load(version)
        except (StateError, TritonError, TritonUnavailable) as exc:
            log.warning("could not load %s into Triton again: %s", version, exc)
            return
        log.warning(
            "Triton at %s had lost %s (a restart?): the gateway loaded it again", self.triton.url, version
        )

    def _loaded(self, version: str) -> bool:
        try:
            return self.triton.ready(version)
        except (TritonError, TritonUnavailable):
            return False

    def _spec(self, version: str) -> FeatureSpec | None:
        spec = self._specs.get(version)
        if spec is None:
            path = self.repository / triton_model_name(version) / SPEC_FILE
            if not path.is_file():
                return None
            spec = self._specs[version] = FeatureSpec.load(path)
        return spec

    def _log(self, request_id, served_at, user_id, item_ids, scores, version, bucket, latency) -> None:
        n = len(item_ids)
        positions = np.empty(n, dtype=np.int64)
        positions[np.argsort(-scores, kind="stable")] = np.arange(1, n + 1)
        ids = [f"{request_id}-{i}" for i in range(n)]
        try:
            self.log.append(
                {
                    "prediction_id": ids,
                    "request_id": [request_id] * n,
                    "impression_id": ids,
                    "event_ts": [served_at] * n,
                    "user_id": [user_id] * n,
                    "item_id": item_ids,
                    "position": positions.tolist(),
                    "score": scores.astype(np.float64).tolist(),
                    "model_version": [version] * n,
                    "bucket": [bucket] * n,
                    "user_hash": [user_hash(user_id)] * n,
                    "latency_ms": [latency * 1000.0] * n,
                }
            )
        except PredictionLogError as exc:
            raise Rejected(503, f"the gateway is shutting down: {exc}") from exc

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether Triton is live and the champion loaded: ``/readyz``."""
        detail: dict[str, Any] = {"triton": self.triton.url, "state": self.store.location}
        if not self.triton.live():
            return False, detail | {"reason": f"Triton at {self.triton.url} is not live"}
        try:
            state = self.state.get()
        except StateError as exc:
            return False, detail | {"reason": str(exc)}
        detail["champion"] = state.champion
        if not state.champion:
            return False, detail | {"reason": f"no champion in the canary state ({self.store.location})"}
        if not self._loaded(state.champion):
            if self._spec(state.champion) is not None and self._reload(state.champion):
                return False, detail | {
                    "reason": f"the champion {state.champion} is being loaded into Triton"
                }
            return False, detail | {"reason": f"the champion {state.champion} is not loaded in Triton"}
        return True, detail

    def warm_up(self) -> None:
        """Open the feature store before the first request (Feast takes seconds to import and open)."""
        try:
            self.features.frame(0, [0])
        except Exception as exc:  # noqa: BLE001 - requests will answer 503 with the reason
            log.warning("online features are not readable yet: %s", exc)
        self.features.clear()


def create_app(
    settings: Settings,
    *,
    triton: Triton | None = None,
    state_store: StateStore | None = None,
    features: OnlineFeatures | None = None,
    prediction_log: PredictionLog | None = None,
) -> FastAPI:
    """The gateway's ASGI app. Its lifespan starts the prediction log's flusher and flushes it on shutdown."""
    gateway = Gateway(settings, triton, state_store, features, prediction_log)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        gateway.log.start()
        await run_in_threadpool(gateway.warm_up)
        try:
            yield
        finally:
            written = await run_in_threadpool(gateway.log.close)
            log.info("prediction log closed: %d file(s) written on shutdown", len(written))

    app = FastAPI(title="flywheel gateway", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.state.gateway = gateway

    @app.post("/v1/rank")
    async def rank(request: Request) -> Response:
        """Rank candidates for a user; see :func:`parse_rank_request` for what is refused.

        An unknown user (or item) is scored from default features, the values training sets give an
        entity without activity (0 counts, 'none' categories, 168 hours since the last click)."""
        try:
            user_id, item_ids = parse_rank_request(await _body(request, gateway.max_items), gateway.max_items)
        except Rejected as exc:
            gateway.metrics.observe("none", "none", exc.status, 0.0)
            return exc.response()
        try:
            return JSONResponse(await run_in_threadpool(gateway.rank, user_id, item_ids))
        except Rejected as exc:
            return exc.response()
        except Exception as exc:  # a bug must cost one request, never the process
            if not await run_in_threadpool(gateway.triton.live):
                # Whatever the client library raised while Triton went away, the answer is Triton's absence.
                gateway.metrics.observe("none", "none", 503, 0.0)
                message = (
                    f"Triton at {gateway.triton.url} is not reachable, nothing was scored (retry): {exc}"
                )
                return Rejected(503, message).response()
            log.exception("ranking for user %s failed", user_id)
            gateway.metrics.observe("none", "none", 500, 0.0)
            return Rejected(500, f"internal error: {type(exc).__name__}: {exc}").response()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    def readyz() -> Response:
        ok, detail = gateway.ready()
        return JSONResponse({"ready": ok, **detail}, status_code=200 if ok else 503)

    @app.get("/v1/stats")
    def stats() -> dict[str, Any]:  # sync: the state may be a Redis GET
        """Per version: requests and errors, and the last minute's (``deploy_model``'s guards poll it)."""
        try:
            state: dict[str, Any] | None = asdict(gateway.state.get())
        except StateError:
            state = None
        return gateway.metrics.stats() | {"state": state, "predictions_pending": gateway.log.pending}

    @app.get("/metrics")
    def metrics() -> Response:  # sync: the canary weight gauge reads the state
        body, content_type = gateway.metrics.exposition()
        return Response(body, media_type=content_type)

    return app


async def _body(request: Request, max_items: int) -> bytes:
    """The request body, refused (413) as soon as it outgrows any valid request: never read whole."""
    limit, size, chunks = body_limit(max_items), 0, []
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(size, max_items)
        chunks.append(chunk)
    return b"".join(chunks)


def run_gateway(settings: Settings, host: str = "127.0.0.1", port: int = 8100) -> int:
    """Serve until SIGINT/SIGTERM; the shutdown waits for requests in flight and writes the prediction log.
    Returns the exit code: 1 when the address cannot be bound (said on stderr, with the fix)."""
    import socket
    import sys

    import uvicorn

    try:
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind((host, port))
    except OSError as exc:
        print(
            f"flywheel serve: cannot listen on {host}:{port} ({exc.strerror}): stop what uses it, or pass "
            "--port (and set FLYWHEEL_GATEWAY_URL so deploy_model and flywheel traffic find the gateway)",
            file=sys.stderr,
        )
        return 1
    # Feast logs "Registry cache expired, so refreshing" at INFO on reads: one line per request is noise.
    logging.getLogger("feast").setLevel(logging.WARNING)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings),
            host=host,
            port=port,
            log_level="info",
            access_log=False,
            timeout_graceful_shutdown=10,
            # Idle keep-alive connections stay open longer than clients and load balancers keep theirs
            # (60 s is common): a server that closes first races a client sending on the same connection,
            # and that request fails without an answer (uvicorn's default is 5 s, httpx's too).
            timeout_keep_alive=75,
        )
    )
    try:
        asyncio.run(server.serve())
    except SystemExit as exc:  # uvicorn exits when it cannot bind after all (a race for the port)
        return int(exc.code or 1)
    return 0 if server.started else 1
