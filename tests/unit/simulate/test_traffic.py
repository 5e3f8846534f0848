"""Simulated users against a real HTTP server that answers the gateway's contract: what they were served
lands as impressions with the server's ids and times, they click on the ranking served, a better ranking
earns more clicks, failures are counted, and requests keep their schedule when the server is slow."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from flywheel.events import EVENT_SCHEMAS
from flywheel.simulate import SimulationConfig
from flywheel.simulate.marketplace import affinity, build_world
from flywheel.simulate.traffic import TrafficRefusal, run_traffic

pytestmark = pytest.mark.slow

SEED = 11
CFG = SimulationConfig(start=datetime(2026, 1, 1), hours=1, seed=SEED)
WORLD = build_world(CFG)


def _attractiveness(user: int, items: np.ndarray) -> np.ndarray:
    """The click model's P(attractive | user, item): the best possible ranker's score."""
    m, cat = CFG.click_model, WORLD.item_category[items]
    logit = (
        m.b0
        + m.b_affinity * affinity(WORLD.interests[user, cat], CFG.n_categories)
        + m.b_quality * WORLD.quality[items]
        - m.b_price * np.log(WORLD.base_price[items] / WORLD.reference_price[cat])
    )
    return 1.0 / (1.0 + np.exp(-logit))


class Gateway:
    """A stand-in gateway on a free 127.0.0.1 port; the path's first part picks its behaviour:
    ``/best`` scores by true attractiveness, ``/worst`` reverses it, ``/slow`` answers ``/best`` after
    250 ms, ``/down`` answers 503. It remembers every request it answered."""

    def __init__(self) -> None:
        self.answered: dict[str, dict] = {}
        app = FastAPI()

        @app.get("/{mode}/healthz")
        async def healthz(mode: str) -> dict:
            return {"status": "ok"}

        @app.post("/{mode}/v1/rank")
        async def rank(mode: str, request: Request) -> JSONResponse:
            body = await request.json()
            if mode == "down":
                return JSONResponse({"detail": "Triton is not reachable"}, status_code=503)
            if mode == "slow":
                await asyncio.sleep(0.25)
            items = np.asarray(body["item_ids"])
            scores = _attractiveness(body["user_id"], items) * (-1.0 if mode == "worst" else 1.0)
            answer = {
                "request_id": uuid.uuid4().hex,
                "model_version": "v0001",
                "bucket": "champion",
                "scores": scores.tolist(),
                "served_at": datetime.now(UTC).isoformat(),
            }
            self.answered[answer["request_id"]] = {**body, **answer}
            return JSONResponse(answer)

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "the test gateway did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    server = Gateway()
    yield server
    server.stop()


def _read(landing: Path, table: str) -> pd.DataFrame:
    paths = sorted((landing / table).glob("date=*/hour=*/*.parquet"))
    for path in paths:
        assert pq.read_schema(path) == EVENT_SCHEMAS[table], path
    if not paths:
        return EVENT_SCHEMAS[table].empty_table().to_pandas()
    return pd.concat([pq.read_table(p).to_pandas() for p in paths], ignore_index=True)


def test_impressions_are_the_served_ranking_with_the_gateways_ids(
    gateway: Gateway, tmp_path: Path, home
) -> None:
    report = run_traffic(url=f"{gateway.url}/best", rps=40, seconds=1.5, seed=SEED, landing_dir=tmp_path)
    assert (report.requests, report.failures, report.statuses) == (60, 0, {"200": 60})
    assert report.versions == {"v0001": 60}
    impressions, clicks, orders = (_read(tmp_path, t) for t in ("impressions", "clicks", "orders"))
    assert not list(tmp_path.rglob("*.tmp")), "a temporary file was left behind"
    assert (len(impressions), len(clicks), len(orders)) == (report.impressions, report.clicks, report.orders)
    assert report.impressions == 60 * CFG.slate_size and report.clicks > 0

    for request_id, shown in impressions.groupby("request_id"):
        sent = gateway.answered[request_id]
        assert len(sent["item_ids"]) == 20
        index = [int(i.rsplit("-", 1)[1]) for i in shown.impression_id]
        assert list(shown.impression_id) == [f"{request_id}-{i}" for i in index]
        assert list(shown.item_id) == [sent["item_ids"][i] for i in index]
        assert (shown.user_id == sent["user_id"]).all()
        # Shown: the top 10 of the scores, position 1 the highest.
        by_score = np.argsort(-np.asarray(sent["scores"]), kind="stable")[: CFG.slate_size]
        assert list(shown.sort_values("position").item_id) == [sent["item_ids"][i] for i in by_score]
        assert sorted(shown.position) == list(range(1, CFG.slate_size + 1))
        served = datetime.fromisoformat(sent["served_at"]).replace(tzinfo=None)
        assert (shown.event_ts == served).all()
    items = impressions.item_id.to_numpy()
    assert (impressions.category == [f"cat_{c:02d}" for c in WORLD.item_category[items]]).all()
    assert np.allclose(impressions.price, WORLD.base_price[items])

    clicked = clicks.merge(impressions, on="impression_id", suffixes=("", "_imp"))
    assert len(clicked) == len(clicks) and (clicked.click_id == "clk-" + clicked.impression_id).all()
    assert (clicked.item_id == clicked.item_id_imp).all() and (clicked.user_id == clicked.user_id_imp).all()
    delay = clicked.event_ts - clicked.event_ts_imp
    assert delay.between(timedelta(seconds=2), timedelta(seconds=60)).all()
    ordered = orders.merge(clicks, on="impression_id", suffixes=("", "_click"))
    assert (
        len(ordered) == len(orders)
        and (ordered.event_ts - ordered.event_ts_click >= timedelta(seconds=60)).all()
    )


def test_served_ctr_per_version_is_what_the_users_of_that_version_did(
    gateway: Gateway, tmp_path: Path, home
) -> None:
    report = run_traffic(url=f"{gateway.url}/best", rps=100, seconds=2, seed=SEED, landing_dir=tmp_path)
    impressions, clicks = _read(tmp_path, "impressions"), _read(tmp_path, "clicks")
    ctr, error, shown = report.served_ctr("v0001")
    assert shown == len(impressions) == report.impressions and report.outcomes["v0001"][0] == 200
    assert ctr == pytest.approx(len(clicks) / len(impressions))
    # The error is the spread of clicks per request over the requests, per shown item.
    clicked = impressions.impression_id.isin(clicks.impression_id)
    per_request = clicked.groupby(impressions.request_id).sum()
    assert len(per_request) == 200
    expected = per_request.std(ddof=1) / np.sqrt(len(per_request)) / CFG.slate_size
    assert error == pytest.approx(expected, rel=1e-6)
    assert np.isnan(report.served_ctr("v9999")[0]), "a version that served nothing has no CTR"


def test_a_better_ranking_earns_more_clicks_from_the_same_users(
    gateway: Gateway, tmp_path: Path, home
) -> None:
    reports, seen = {}, {}
    for mode in ("best", "worst"):
        before = set(gateway.answered)
        reports[mode] = run_traffic(
            url=f"{gateway.url}/{mode}", rps=100, seconds=2, seed=SEED, landing_dir=tmp_path / mode
        )
        seen[mode] = sorted(
            (a["user_id"], tuple(a["item_ids"])) for r, a in gateway.answered.items() if r not in before
        )
    assert reports["best"].failures == reports["worst"].failures == 0
    assert seen["best"] == seen["worst"], "the same seed sends the same users with the same candidates"
    best, worst = reports["best"], reports["worst"]
    assert best.ctr > 2 * worst.ctr, (best.ctr, worst.ctr)

    # Position bias at the served positions: the top of the ranking earns more clicks per impression.
    impressions = _read(tmp_path / "best", "impressions")
    clicked = impressions.impression_id.isin(_read(tmp_path / "best", "clicks").impression_id)
    ctr = clicked.groupby(impressions.position).mean()
    assert ctr.loc[1:3].mean() > ctr.loc[8:10].mean()


def test_drift_flags_serve_the_drifted_market(gateway: Gateway, tmp_path: Path, home) -> None:
    mix = {}
    for drift in ("none", "interest_shift"):
        run_traffic(
            url=f"{gateway.url}/best",
            rps=100,
            seconds=0.5,
            seed=SEED,
            landing_dir=tmp_path / drift,
            drift=drift,
        )
        mix[drift] = _read(tmp_path / drift, "impressions").category.value_counts(normalize=True)
    # Tastes rotate by a third of the catalogue: the candidates' category mix moves far beyond noise.
    assert 0.5 * mix["none"].subtract(mix["interest_shift"], fill_value=0.0).abs().sum() > 0.25


def test_personal_share_draws_candidates_as_a_world_with_that_share(
    gateway: Gateway, tmp_path: Path, home
) -> None:
    from flywheel.simulate.marketplace import market_state

    interests = market_state(WORLD, CFG, drifted=False).interests
    favourite = {}
    for share in (0.0, 1.0):
        before = set(gateway.answered)
        run_traffic(
            url=f"{gateway.url}/best",
            rps=100,
            seconds=1,
            seed=SEED,
            landing_dir=tmp_path / str(share),
            personal_share=share,
        )
        answered = [a for r, a in gateway.answered.items() if r not in before]
        # The share of candidates from the user's two favourite categories: popularity alone (0) draws
        # them as often as the catalogue has them; interests alone (1) draw mostly them.
        hits = [
            WORLD.item_category[item] in np.argsort(-interests[a["user_id"]])[:2]
            for a in answered
            for item in a["item_ids"]
        ]
        favourite[share] = float(np.mean(hits))
    assert favourite[1.0] > favourite[0.0] + 0.3, favourite


def test_failures_are_counted_and_write_nothing(gateway: Gateway, tmp_path: Path, home) -> None:
    report = run_traffic(url=f"{gateway.url}/down", rps=50, seconds=1, seed=SEED, landing_dir=tmp_path)
    assert (report.requests, report.failures, report.failures_by_status) == (50, 50, {"503": 50})
    assert report.impressions == 0 and not list(tmp_path.rglob("*.parquet"))
    assert "failures: 50 (503: 50)" in report.summary()


def test_a_server_that_stops_mid_run_fails_requests_without_ending_the_run(tmp_path: Path, home) -> None:
    server = Gateway()
    results = []
    runner = threading.Thread(
        target=lambda: results.append(
            run_traffic(url=f"{server.url}/best", rps=20, seconds=2.5, seed=SEED, landing_dir=tmp_path)
        )
    )
    runner.start()
    time.sleep(1.0)
    server.stop()
    runner.join(timeout=20)
    (report,) = results
    ok = report.statuses.get("200", 0)
    assert report.requests == 50 and ok > 5 and report.failures > 10, report.statuses
    assert set(report.failures_by_status) <= {"connect_error", "transport_error"}, report.statuses
    assert report.impressions == len(_read(tmp_path, "impressions")) == ok * CFG.slate_size


def test_requests_keep_their_schedule_when_the_server_is_slow(gateway: Gateway, tmp_path: Path, home) -> None:
    # 250 ms per answer at 40 requests/s: about 10 in flight. A closed loop would manage 4 per second.
    began = time.monotonic()
    report = run_traffic(url=f"{gateway.url}/slow", rps=40, seconds=2, seed=SEED, landing_dir=tmp_path)
    assert report.requests == 80 and report.failures == 0
    assert 30 <= report.achieved_rps <= 44, report.summary()
    assert time.monotonic() - began < 5 and report.p50_ms >= 250

    # One request in flight at a time cannot keep 40/s against 250 ms answers: the report says so.
    report = run_traffic(
        url=f"{gateway.url}/slow", rps=40, seconds=0.25, seed=SEED, landing_dir=tmp_path, concurrency=1
    )
    assert report.fell_behind and report.achieved_rps < 10 and "FELL BEHIND" in report.summary()


def test_stop_ends_a_run_early_and_keeps_what_was_answered(gateway: Gateway, tmp_path: Path, home) -> None:
    stop, results = threading.Event(), []
    runner = threading.Thread(
        target=lambda: results.append(
            run_traffic(
                url=f"{gateway.url}/best", rps=20, seconds=600, seed=SEED, landing_dir=tmp_path, stop=stop
            )
        )
    )
    runner.start()
    time.sleep(1.0)
    stop.set()
    runner.join(timeout=10)
    (report,) = results
    assert report.stopped and 10 <= report.requests <= 40 and report.failures == 0
    assert len(_read(tmp_path, "impressions")) == report.impressions == report.requests * CFG.slate_size


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--rps", "0"], "--rps 0.0 is not a positive number; use e.g. --rps 50"),
        (["--seconds", "-1"], "--seconds -1.0 is not a positive number"),
        (["--drift", "sideways"], "--drift 'sideways' is not a drift scenario"),
        (["--candidates", "5000"], "--candidates 5000 is out of range"),
    ],
)
def test_bad_flags_are_refused_with_the_flag_and_the_fix(
    gateway: Gateway, home, capsys: pytest.CaptureFixture, flags: list[str], message: str
) -> None:
    from flywheel.cli import main

    argv = ["traffic", "--url", f"{gateway.url}/best", "--rps", "10", "--seconds", "1", *flags]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"flywheel traffic: {message}") and "\n" not in err


def test_an_unreachable_gateway_is_refused_before_anything_is_sent(
    home, capsys: pytest.CaptureFixture
) -> None:
    from flywheel.cli import main

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, not listening: connection refused
        assert main(["traffic", "--url", url, "--rps", "10", "--seconds", "1"]) == 2
    err = capsys.readouterr().err
    assert f"--url {url} does not answer" in err and "flywheel serve" in err
    with pytest.raises(TrafficRefusal, match="--url 'localhost:8100' is not an http"):
        run_traffic(url="localhost:8100", rps=1, seconds=1)


def test_the_command_prints_one_summary_and_fails_when_requests_failed(
    gateway: Gateway, home, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from flywheel.cli import main

    common = ["--rps", "20", "--seconds", "0.5", "--seed", str(SEED), "--landing-dir", str(tmp_path)]
    assert main(["traffic", "--url", f"{gateway.url}/best", *common]) == 0
    out = capsys.readouterr().out
    assert "10 requests" in out and "failures: 0 (none)" in out and "latency ms: p50" in out and "CTR" in out
    assert main(["traffic", "--url", f"{gateway.url}/down", *common]) == 1
    assert "failures: 10 (503: 10)" in capsys.readouterr().out


def test_it_runs_from_inside_a_running_event_loop(gateway: Gateway, tmp_path: Path, home) -> None:
    # A notebook or an async caller already runs a loop in this thread, where asyncio.run would refuse.
    import asyncio

    async def caller():
        return run_traffic(url=f"{gateway.url}/best", rps=20, seconds=0.5, seed=SEED, landing_dir=tmp_path)

    # In a thread of its own, so that whatever loop state this test process is in cannot matter.
    reports = []
    runner = threading.Thread(target=lambda: reports.append(asyncio.run(caller())))
    runner.start()
    runner.join(timeout=60)
    assert reports and reports[0].requests == 10 and reports[0].failures == 0
