"""Simulated users against the gateway (``flywheel traffic``): the simulator's world asks for rankings, its
click model reacts to the ranking actually served, and the impressions, clicks and orders land as events.

Open loop: request ``i`` is due at ``i / rps`` seconds whatever the gateway's latency (at most
``concurrency`` in flight); the report says when the generator itself fell behind that schedule.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import signal
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.config import Settings
from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN, hour_dir, naive_utc
from flywheel.simulate.config import DRIFTS, SimulationConfig
from flywheel.simulate.events import CLICK_DELAY_S, HOUR_US, ORDER_DELAY_S, delay_us
from flywheel.simulate.marketplace import (
    build_world,
    candidate_weights,
    category_names,
    click_probability,
    market_state,
    order_probability,
    sample_slates,
)

log = logging.getLogger(__name__)

#: Random stream of request ``i``: ``SeedSequence(seed, spawn_key=(TRAFFIC_STREAM, i))``, beside the
#: simulator's world (0) and hour (1) streams, so a request's user, candidates and reactions depend on the
#: seed and its number alone, never on the order responses arrive in.
TRAFFIC_STREAM = 2
#: A request sent this much after its due time counts as late; over 1% late means the generator fell behind.
LATE_S, BEHIND_SHARE = 0.05, 0.01
_EPOCH = datetime(1970, 1, 1)


class TrafficRefusal(ValueError):
    """A setting ``run_traffic`` will not act on; the message names the flag and the fix."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")


@dataclass
class TrafficReport:
    """What one run sent and what the users did. Latencies are of the 2xx answers, from send to body."""

    url: str
    rps: float
    seconds: float
    requests: int = 0
    statuses: dict[str, int] = field(default_factory=dict)  # "200", "503", "timeout", "connect_error", ...
    elapsed_s: float = 0.0
    achieved_rps: float = 0.0
    p50_ms: float = math.nan
    p90_ms: float = math.nan
    p99_ms: float = math.nan
    max_ms: float = math.nan
    late_requests: int = 0
    max_lag_ms: float = 0.0
    waited_for_slot: int = 0  # requests that found ``concurrency`` requests in flight when due
    impressions: int = 0
    clicks: int = 0
    orders: int = 0
    gmv: float = 0.0
    versions: dict[str, int] = field(default_factory=dict)  # answered requests per model_version
    #: Per model_version: [requests, impressions, clicks, sum over requests of clicks squared], for the
    #: served CTR of each version with a standard error clustered by request (:meth:`served_ctr`).
    outcomes: dict[str, list[int]] = field(default_factory=dict)
    #: Per model_version: the score of each item shown and whether it was clicked (the online AUC's input).
    shown_scores: dict[str, list[tuple[float, bool]]] = field(default_factory=dict, repr=False)
    files: int = 0
    stopped: bool = False  # ended by ``stop`` before the last scheduled request

    @property
    def failures(self) -> int:
        return sum(n for status, n in self.failures_by_status.items())

    @property
    def failures_by_status(self) -> dict[str, int]:
        return {s: n for s, n in sorted(self.statuses.items()) if not (s.isdigit() and s.startswith("2"))}

    @property
    def ctr(self) -> float:
        return self.clicks / self.impressions if self.impressions else math.nan

    def served_ctr(self, version: str) -> tuple[float, float, int]:
        """``(ctr, standard_error, impressions)`` of what ``version`` served: clicks per shown item, the
        error from the spread of clicks per request (the items of one request are not independent)."""
        requests, impressions, clicks, squares = self.outcomes.get(version, [0, 0, 0, 0])
        if not impressions or requests < 2:
            return math.nan, math.nan, impressions
        per_request = impressions / requests
        mean = clicks / requests
        variance = max(squares / requests - mean * mean, 0.0) * requests / (requests - 1)
        return clicks / impressions, math.sqrt(variance / requests) / per_request, impressions

    @property
    def fell_behind(self) -> bool:
        return self.late_requests > BEHIND_SHARE * max(self.requests, 1)

    def summary(self) -> str:
        failed = ", ".join(f"{s}: {n}" for s, n in self.failures_by_status.items()) or "none"
        served = ", ".join(f"{v}: {n}" for v, n in sorted(self.versions.items())) or "none"
        pace = f"kept (max lag {self.max_lag_ms:.0f} ms)"
        if self.fell_behind:
            why = (
                f"{self.waited_for_slot} waited for one of the --concurrency slots: raise it or lower --rps"
                if self.waited_for_slot
                else "the generator ran short of CPU: lower --rps or run it on another machine"
            )
            pace = (
                f"FELL BEHIND: {self.late_requests} requests sent over {LATE_S * 1000:.0f} ms late "
                f"(max {self.max_lag_ms:.0f} ms); {why}"
            )
        return "\n".join(
            [
                f"traffic to {self.url}: {self.requests} requests in {self.elapsed_s:.1f} s, "
                f"{self.achieved_rps:.1f} rps achieved of {self.rps:g} scheduled"
                + (" (stopped early)" if self.stopped else ""),
                f"  failures: {self.failures} ({failed})",
                f"  latency ms: p50 {self.p50_ms:.1f}  p90 {self.p90_ms:.1f}  p99 {self.p99_ms:.1f}  "
                f"max {self.max_ms:.1f}",
                f"  impressions {self.impressions}, clicks {self.clicks}, orders {self.orders}, "
                f"CTR {self.ctr:.4f}",
                f"  served by: {served}",
                f"  schedule: {pace}",
            ]
        )


class _Landing:
    """Rows waiting for the next flush; each flush writes new files (temp name, then rename) per hour."""

    def __init__(self, landing_dir: Path) -> None:
        self.landing_dir = landing_dir
        self.tag = f"{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
        self.rows = self._empty()
        self.flushes = 0
        self.files = 0

    @staticmethod
    def _empty() -> dict[str, dict[str, list]]:
        return {table: {name: [] for name in schema.names} for table, schema in EVENT_SCHEMAS.items()}

    def add(self, table: str, columns: list[Any]) -> None:
        """Append rows given as one sequence per column, in the table's schema order."""
        for name, values in zip(EVENT_SCHEMAS[table].names, columns, strict=True):
            self.rows[table][name].extend(values.tolist() if isinstance(values, np.ndarray) else values)

    def take(self) -> dict[str, dict[str, list]]:
        taken, self.rows = self.rows, self._empty()
        return taken

    def write(self, taken: dict[str, dict[str, list]]) -> None:
        self.flushes += 1
        for table, columns in taken.items():
            schema = EVENT_SCHEMAS[table]
            if not columns[PARTITION_COLUMN]:
                continue
            data = pa.table([pa.array(columns[f.name], type=f.type) for f in schema], schema=schema)
            hours = np.asarray(columns[PARTITION_COLUMN], dtype=np.int64) // HOUR_US
            for bucket in np.unique(hours):
                part = data.filter(pa.array(hours == bucket))
                part = part.sort_by([(PARTITION_COLUMN, "ascending"), (schema.names[0], "ascending")])
                folder = hour_dir(self.landing_dir, table, _EPOCH + timedelta(hours=int(bucket)))
                folder.mkdir(parents=True, exist_ok=True)
                name = f"part-traffic-{self.tag}-{self.flushes:05d}.parquet"
                # Ingest reads *.parquet: a hidden temp name, then a rename, so it never sees half a file.
                pq.write_table(part, folder / f".{name}.tmp", compression="zstd")
                os.replace(folder / f".{name}.tmp", folder / name)
                self.files += 1


class _Users:
    """The simulated world for one seed: who asks, which candidates they bring, how they react."""

    def __init__(self, cfg: SimulationConfig, candidates: int, shown: int, drift_after: float) -> None:
        self.cfg, self.candidates, self.shown, self.drift_after = cfg, candidates, shown, drift_after
        self.world = build_world(cfg)
        self.states = {drifted: market_state(self.world, cfg, drifted) for drifted in (False, True)}
        self.cdf = np.cumsum(self.world.activity)
        self.names = category_names(cfg.n_categories)

    def draw(self, index: int, elapsed: float) -> tuple[np.random.Generator, int, np.ndarray, Any]:
        rng = np.random.default_rng(np.random.SeedSequence(self.cfg.seed, spawn_key=(TRAFFIC_STREAM, index)))
        user = min(int(np.searchsorted(self.cdf, rng.random(), side="right")), self.cfg.n_users - 1)
        state = self.states[elapsed >= self.drift_after]  # the same state twice without a drift
        weights = candidate_weights(self.world, state, np.array([user]), self.cfg.personal_share)
        return rng, user, sample_slates(weights, self.candidates, rng)[0], state

    def react(self, rng, user, items, scores, state, request_id, served_us, landing: _Landing) -> tuple:
        """Show the top ``shown`` items by score; draw clicks and orders at their served positions."""
        world, model, n = self.world, self.cfg.click_model, self.shown
        index = np.argsort(-scores, kind="stable")[:n]  # ties keep the order the candidates were sent in
        k = index.size
        item, position = items[index], np.arange(1, k + 1, dtype=np.int32)
        category = world.item_category[item]
        price = state.price[item]
        log_ratio = np.log(price / world.reference_price[category])
        quality = world.quality[item]
        interest = state.interests[user, category]
        p_click = click_probability(model, position, interest, self.cfg.n_categories, quality, log_ratio)
        # Fixed-size draws: position j sees the same random numbers whatever ranking was served.
        clicked = rng.random(n)[:k] < p_click
        click_us = served_us + delay_us(rng, CLICK_DELAY_S, n)[:k]
        ordered = clicked & (rng.random(n)[:k] < order_probability(model, quality, log_ratio))
        order_us = click_us + delay_us(rng, ORDER_DELAY_S, n)[:k]
        quantity = 1 + rng.poisson(model.extra_quantity_mean, size=n)[:k]

        ids = np.array([f"{request_id}-{i}" for i in index.tolist()], dtype=object)
        c, o = np.flatnonzero(clicked), np.flatnonzero(ordered)
        gmv = quantity[o] * price[o]
        # Columns in the order of EVENT_SCHEMAS; click and order ids reuse the impression's, as simulated.
        landing.add(
            "impressions",
            [ids, [request_id] * k, [served_us] * k, [user] * k, item, position, self.names[category], price],
        )
        landing.add("clicks", ["clk-" + ids[c], ids[c], click_us[c], [user] * c.size, item[c]])
        landing.add(
            "orders", ["ord-" + ids[o], ids[o], order_us[o], [user] * o.size, item[o], quantity[o], gmv]
        )
        return (
            k,
            c.size,
            o.size,
            float(gmv.sum()),
            list(zip(scores[index].tolist(), clicked.tolist(), strict=True)),
        )


class _Run:
    """One run's shared state; every coroutine runs on one event loop, so no locks are needed."""

    def __init__(self, url: str, users: _Users, landing: _Landing, report: TrafficReport) -> None:
        self.rank_url = url.rstrip("/") + "/v1/rank"
        self.users, self.landing, self.report = users, landing, report
        self.latencies: list[float] = []

    def count(self, status: str) -> None:
        self.report.statuses[status] = self.report.statuses.get(status, 0) + 1

    async def one(self, client: httpx.AsyncClient, index: int, elapsed: float) -> None:
        rng, user, items, state = self.users.draw(index, elapsed)
        began = time.perf_counter()
        try:
            response = await client.post(self.rank_url, json={"user_id": user, "item_ids": items.tolist()})
        except httpx.TimeoutException:
            return self.count("timeout")
        except httpx.ConnectError:
            return self.count("connect_error")
        except httpx.TransportError:  # the connection broke mid-answer
            return self.count("transport_error")
        latency_ms = (time.perf_counter() - began) * 1000.0
        if not response.is_success:
            return self.count(str(response.status_code))
        try:
            body = response.json()
            request_id, version = str(body["request_id"]), str(body["model_version"])
            scores = np.asarray(body["scores"], dtype=np.float64)
            served_us = (naive_utc(body["served_at"]) - _EPOCH) // timedelta(microseconds=1)
            if scores.shape != items.shape or not np.isfinite(scores).all() or not request_id:
                raise ValueError("scores do not match the candidates")
        except (ValueError, KeyError, TypeError, AttributeError):
            return self.count("bad_response")  # answered, but not the contract: nothing to show
        self.count(str(response.status_code))
        self.latencies.append(latency_ms)
        self.report.versions[version] = self.report.versions.get(version, 0) + 1
        shown, clicks, orders, gmv, pairs = self.users.react(
            rng, user, items, scores, state, request_id, served_us, self.landing
        )
        self.report.impressions += shown
        self.report.clicks += clicks
        outcome = self.report.outcomes.setdefault(version, [0, 0, 0, 0])
        for i, n in enumerate((1, shown, clicks, clicks * clicks)):
            outcome[i] += n
        self.report.shown_scores.setdefault(version, []).extend(pairs)
        self.report.orders += orders
        self.report.gmv += gmv

    async def flush_every(self, seconds: float, done: asyncio.Event) -> None:
        """Write what landed every ``seconds`` and at the end, in a thread: requests keep their schedule."""
        logged = time.monotonic()
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), seconds)
            except TimeoutError:
                pass
            await asyncio.to_thread(self.landing.write, self.landing.take())
            if time.monotonic() - logged >= 10.0:
                logged = time.monotonic()
                r = self.report
                log.info("traffic: %d sent, %d failed, %d clicks", r.requests, r.failures, r.clicks)

    async def drive(self, n: int, rps: float, concurrency: int, timeout: float, flush_s: float, stop) -> None:
        # Idle connections are dropped by the users well before the gateway would close them (75 s), so
        # no request is sent on a connection the server is closing.
        limits = httpx.Limits(
            max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=15.0
        )
        report, loop = self.report, asyncio.get_running_loop()
        async with httpx.AsyncClient(timeout=timeout, limits=limits, trust_env=False) as client:
            slots, pending, done = asyncio.Semaphore(concurrency), set(), asyncio.Event()
            flusher = asyncio.create_task(self.flush_every(flush_s, done))
            start = last = loop.time()
            try:
                for index in range(n):
                    due = start + index / rps
                    while (wait := due - loop.time()) > 0 and not stop.is_set():
                        await asyncio.sleep(min(wait, 0.1))  # short naps: a stop is noticed at once
                    if stop.is_set() or flusher.done():
                        report.stopped = True
                        break
                    report.waited_for_slot += slots.locked()
                    await slots.acquire()  # a full pipe delays the schedule: counted as lag below
                    last = loop.time()
                    lag = last - due
                    report.late_requests += lag > LATE_S
                    report.max_lag_ms = max(report.max_lag_ms, lag * 1000.0)
                    task = asyncio.create_task(self.one(client, index, last - start))
                    pending.add(task)
                    task.add_done_callback(lambda t: (pending.discard(t), slots.release()))
                    report.requests += 1
                    if wait <= 0:
                        await asyncio.sleep(0)  # behind schedule: still let answers be read
                if pending:
                    await asyncio.gather(*pending)
            finally:
                done.set()
                await flusher
        report.achieved_rps = report.requests / (last - start + 1.0 / rps) if report.requests else 0.0


def run_traffic(
    *,
    url: str,
    rps: float,
    seconds: float,
    seed: int = 7,
    settings: Settings | None = None,
    landing_dir: Path | None = None,
    drift: str = "none",
    strength: float = 1.0,
    drift_after: float = 0.0,
    personal_share: float | None = None,
    candidates: int = 20,
    shown: int | None = None,
    concurrency: int = 64,
    timeout: float = 5.0,
    flush_seconds: float | None = None,
    stop: threading.Event | None = None,
) -> TrafficReport:
    """Send ``round(rps * seconds)`` ranking requests on schedule and land what the users did; the report.

    Each request carries ``candidates`` items drawn as the simulator draws slates (default 20); the user
    sees the top ``shown`` (default: the simulator's slate, 10) by score. ``personal_share`` draws the
    candidates as a world simulated with that share does (default: the simulator's). ``stop`` (set from
    another thread) ends the run early: nothing more is sent, answers in flight are awaited and written.
    Raises :class:`TrafficRefusal` naming the flag at fault before sending anything.
    """
    from flywheel.config import get_settings

    settings = settings or get_settings()
    landing_dir = Path(landing_dir or settings.landing_dir)
    flush_seconds = settings.serving.flush_seconds if flush_seconds is None else flush_seconds
    cfg = _world(seed, drift, strength, personal_share)
    shown = cfg.slate_size if shown is None else shown
    _check(rps, seconds, candidates, shown, concurrency, timeout, flush_seconds, drift_after, cfg)
    _check_url(url, timeout)
    _check_landing(landing_dir)

    report = TrafficReport(url=url, rps=rps, seconds=seconds)
    run = _Run(url, _Users(cfg, candidates, shown, drift_after), _Landing(landing_dir), report)
    began = time.monotonic()
    n = max(1, round(rps * seconds))
    _run_coroutine(lambda: run.drive(n, rps, concurrency, timeout, flush_seconds, stop or threading.Event()))
    report.elapsed_s = time.monotonic() - began
    report.files = run.landing.files
    if run.latencies:
        ms = np.asarray(run.latencies)
        report.p50_ms, report.p90_ms, report.p99_ms = (float(v) for v in np.percentile(ms, [50, 90, 99]))
        report.max_ms = float(ms.max())
    return report


def _run_coroutine(factory: Any) -> Any:
    """Run the coroutine ``factory()`` makes to the end: here, or in a thread of its own when this thread
    already runs an event loop (a notebook, an async caller), where ``asyncio.run`` would refuse."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(factory())
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = asyncio.run(factory())
        except BaseException as exc:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=target, name="flywheel-traffic")
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _world(seed: int, drift: str, strength: float, personal_share: float | None = None) -> SimulationConfig:
    if drift not in DRIFTS:
        raise TrafficRefusal(f"--drift {drift!r} is not a drift scenario", f"use one of {', '.join(DRIFTS)}")
    hour = datetime.now().replace(minute=0, second=0, microsecond=0)
    try:
        # One hour from now with the drift on from its start: --drift-after decides when it applies.
        world = {} if personal_share is None else {"personal_share": personal_share}
        return SimulationConfig(
            start=hour, hours=1, drift=drift, drift_at=0, strength=strength, seed=seed, **world
        )
    except ValueError as exc:
        raise TrafficRefusal(str(exc), "change that flag (flywheel traffic --help)") from None


def _check(rps, seconds, candidates, shown, concurrency, timeout, flush_seconds, drift_after, cfg) -> None:
    positive = {
        "--rps": (rps, "e.g. --rps 50"),
        "--seconds": (seconds, "e.g. --seconds 60"),
        "--timeout": (timeout, "e.g. --timeout 5"),
        "--flush-seconds": (flush_seconds, "e.g. --flush-seconds 5"),
    }
    for flag, (value, example) in positive.items():
        if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
            raise TrafficRefusal(f"{flag} {value} is not a positive number", f"use {example}")
    if not (math.isfinite(drift_after) and drift_after >= 0):
        raise TrafficRefusal(f"--drift-after {drift_after} is not >= 0", "use seconds into the run, e.g. 0")
    if not 1 <= candidates <= cfg.n_items:
        raise TrafficRefusal(f"--candidates {candidates} is out of range", f"use 1 to {cfg.n_items} items")
    if shown < 1:
        raise TrafficRefusal(f"--shown {shown} is below 1", "show at least one item, e.g. --shown 10")
    if concurrency < 1:
        raise TrafficRefusal(f"--concurrency {concurrency} is below 1", "use e.g. --concurrency 64")


def _check_url(url: str, timeout: float) -> None:
    fix = "start the gateway (flywheel serve) or pass the URL it listens on, e.g. --url http://127.0.0.1:8100"
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise TrafficRefusal(f"--url {url!r} is not a URL ({exc})", fix) from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise TrafficRefusal(f"--url {url!r} is not an http(s) URL with a host", fix)
    try:
        # Any answer will do. No proxies from the environment: the load goes straight to the gateway.
        httpx.get(url.rstrip("/") + "/healthz", timeout=min(timeout, 5.0), trust_env=False)
    except httpx.TransportError as exc:
        raise TrafficRefusal(f"--url {url} does not answer ({exc or type(exc).__name__})", fix) from None


def _check_landing(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise TrafficRefusal(
            f"cannot write to the landing folder {folder} ({exc.strerror or exc})",
            "choose a writable --landing-dir (or FLYWHEEL_LANDING_DIR)",
        ) from None


def add_traffic_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``flywheel traffic`` flags."""
    parser.add_argument("--url", default=None, help="the gateway (default: FLYWHEEL_GATEWAY_URL)")
    parser.add_argument("--rps", type=float, required=True, help="requests per second, sent on schedule")
    parser.add_argument("--seconds", type=float, required=True, help="how long to send")
    parser.add_argument("--seed", type=int, default=7, help="the world of `flywheel simulate --seed` (7)")
    parser.add_argument(
        "--drift", default="none", help="serve a drifted market: none | interest_shift | price_shift"
    )
    parser.add_argument("--strength", type=float, default=1.0, help="drift strength, 0..1")
    parser.add_argument(
        "--drift-after", type=float, default=0.0, help="seconds into the run the drift starts"
    )
    parser.add_argument("--candidates", type=int, default=20, help="items sent for scoring per request (20)")
    parser.add_argument("--shown", type=int, default=None, help="top items by score the user sees (10)")
    parser.add_argument("--concurrency", type=int, default=64, help="most requests in flight (64)")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds before a request fails (5)")
    parser.add_argument(
        "--flush-seconds", type=float, default=None, help="default: FLYWHEEL_PREDICTION_FLUSH_SECONDS"
    )
    parser.add_argument("--landing-dir", default=None, help="default: $FLYWHEEL_HOME/landing")


#: ``run_traffic`` arguments that are ``flywheel traffic`` flags of the same name.
_FLAGS = ("rps", "seconds", "seed", "drift", "strength", "drift_after", "candidates", "shown")
_FLAGS += ("concurrency", "timeout", "flush_seconds")


def traffic_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``flywheel traffic``: 0 when every request was answered, 1 when some failed, 2 when refused.

    Ctrl-C ends the run as ``stop`` does (answers in flight are awaited and written); a second one aborts.
    """
    stop = threading.Event()

    def interrupt(signum: int, frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, interrupt) if main else None
    try:
        report = run_traffic(
            url=args.url or settings.serving.gateway_url,
            settings=settings,
            landing_dir=Path(args.landing_dir) if args.landing_dir else None,
            stop=stop,
            **{name: getattr(args, name) for name in _FLAGS},
        )
    except TrafficRefusal as exc:
        print(f"flywheel traffic: {exc}", file=sys.stderr)
        return 2
    finally:
        if main:
            signal.signal(signal.SIGINT, previous)
    print(report.summary())
    return 1 if report.failures else 0
