"""The gateway running as ``flywheel serve`` in front of a real tritonserver and a materialised Feast online
store: its scores equal the TorchScript model's, bad input gets a 4xx naming the field, an unknown user is
scored, a canary Triton lacks falls back to the champion, re-materialised features are served at once,
Triton stopped mid-traffic gives 503s and the gateway recovers by itself, and every prediction lands as
Parquet that ``ingest_events`` loads into ``raw.predictions``."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.artifacts.folder import score_exported
from flywheel.artifacts.spec import FeatureSpec, encode
from flywheel.config import Settings, get_settings
from flywheel.events import hours_between, naive_utc
from flywheel.local.processes import free_port_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

TOLERANCE = 1e-5  # the acceptance: gateway scores equal the PyTorch model's to 1e-5
UNKNOWN_USER = 10**12


@dataclass
class World:
    settings: Settings
    url: str
    stack: Any  # flywheel.local.serving.ServingStack
    versions: dict[str, str]  # "champion" / "canary" -> registry version
    folders: dict[str, Path]  # registry version -> model folder
    users: list[int]
    items: list[int]
    client: httpx.Client
    served: list[tuple[dict, dict]] = field(default_factory=list)  # every 200: (request, answer)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def rank(self, body: dict | bytes, client: httpx.Client | None = None) -> httpx.Response:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        answer = (client or self.client).post(
            f"{self.url}/v1/rank", content=raw, headers={"content-type": "application/json"}
        )
        if answer.status_code == 200:
            with self.lock:
                self.served.append((json.loads(raw), answer.json()))
        return answer

    def expected(self, version: str, user: int, items: list[int]) -> np.ndarray:
        """The TorchScript model's scores on the features the online store holds now, encoded with the
        version's exported spec."""
        from flywheel.feature_store.store import online_features
        from flywheel.serving.repository import triton_model_name
        from flywheel.serving.tensors import serving_frame

        frame = serving_frame(online_features([user] * len(items), items, self.settings))
        folder = self.settings.serving.model_repository / triton_model_name(version)
        sparse, dense = encode(frame, FeatureSpec.load(folder / "feature_spec.json"), serving=True)
        return score_exported(self.folders[version], sparse, dense)

    def state(self, **fields: Any) -> None:
        from flywheel.serving.state import CanaryState, open_state

        open_state(self.settings).write(CanaryState(**fields))
        time.sleep(0.7)  # the gateway re-reads the state at least every half second


def _publish(settings: Settings, frame: pd.DataFrame, feature_ts: datetime) -> None:
    """Each entity's latest features in ``frame`` as one snapshot at ``feature_ts``, into the marts and
    the online store (as build_features publishes them)."""
    from flywheel.feature_store.store import apply_and_materialize
    from flywheel.warehouse import open_warehouse

    warehouse = open_warehouse(settings.warehouse_url)
    latest = frame.sort_values(["event_ts", "impression_id"])
    for entity, prefix in (("user", "user_"), ("item", "item_")):
        key = f"{entity}_id"
        columns = [c for c in frame.columns if c.startswith(prefix) and c != key]
        snapshot = latest.groupby(key, as_index=False).last()[[key, *columns]]
        snapshot.insert(1, "feature_ts", pd.Timestamp(feature_ts))
        table = pa.Table.from_pandas(snapshot, preserve_index=False)
        table = table.set_column(1, "feature_ts", table.column(1).cast(pa.timestamp("us")))
        hour = timedelta(hours=1)
        warehouse.replace_partition(
            f"marts.{entity}_features", table, "feature_ts", feature_ts, feature_ts + hour
        )
    apply_and_materialize(feature_ts, feature_ts + timedelta(hours=1), settings)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, train_small_model) -> Iterator[World]:
    from flywheel.local.serving import ServingStack
    from flywheel.registry import register_candidate
    from flywheel.serving.repository import export_version
    from flywheel.serving.state import CanaryState, open_state
    from flywheel.serving.triton import Triton
    from flywheel.simulate.training_set import simulated_training_set
    from flywheel.warehouse import open_warehouse

    root = tmp_path_factory.mktemp("gateway")
    port = free_port_run(4)
    with pytest.MonkeyPatch.context() as patch:
        # What the `home` fixture does, for a module: one home, one Triton and one gateway for all tests.
        patch.setenv("FLYWHEEL_HOME", str(root / "home"))
        for name in (
            "FLYWHEEL_WAREHOUSE_URL",
            "FLYWHEEL_ONLINE_STORE",
            "FLYWHEEL_FEAST_PROJECT",
            "FLYWHEEL_CANARY_STATE",
            "FLYWHEEL_MODEL_REPOSITORY",
            "FLYWHEEL_SERVE_MAX_ITEMS",
        ):
            patch.delenv(name, raising=False)
        patch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{port}")
        patch.setenv("FLYWHEEL_GATEWAY_URL", f"http://127.0.0.1:{port + 3}")
        patch.setenv("FLYWHEEL_PREDICTION_FLUSH_SECONDS", "0.5")
        settings = get_settings()
        settings.ensure_dirs()

        frame = simulated_training_set(hours=3, impressions_per_hour=1000, seed=3)
        now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
        _publish(settings, frame, now - timedelta(hours=3))
        warehouse = open_warehouse(settings.warehouse_url)
        folders, versions = {}, {}
        for name, shuffle in (("champion", False), ("canary", True)):
            folder = train_small_model(frame, root / "runs" / name, shuffle=shuffle, epochs=2)
            version = register_candidate(
                data_version=f"gateway-{name}",
                artifact_uri=str(folder),
                params={},
                metrics={},
                warehouse=warehouse,
            )
            export_version(version, folder, settings.serving.model_repository)
            folders[version], versions[name] = folder, version
        open_state(settings).write(CanaryState(champion=versions["champion"]))

        with ServingStack(settings) as stack, httpx.Client(timeout=30.0) as client:
            Triton(settings.serving.triton_url).load(versions["champion"])
            yield World(
                settings,
                settings.serving.gateway_url,
                stack,
                versions,
                folders,
                users=sorted(frame["user_id"].unique().tolist()),
                items=sorted(frame["item_id"].unique().tolist()),
                client=client,
            )


@pytest.fixture(autouse=True)
def champion_only(world: World) -> None:
    """Each test starts with the champion serving everyone: a test that fails mid-canary leaves no canary
    behind to fail the next ones too (one failure once showed as three)."""
    from flywheel.serving.state import open_state

    state = open_state(world.settings).read()
    if (state.champion, state.canary, state.weight) != (world.versions["champion"], None, 0.0):
        world.state(champion=world.versions["champion"])


def test_scores_equal_the_torchscript_model_on_the_same_features(world: World) -> None:
    champion = world.versions["champion"]
    user, items = world.users[0], [*world.items[:30], 10**9]  # the last item is unknown

    answer = world.rank({"user_id": user, "item_ids": items})

    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["model_version"], body["bucket"]) == (champion, "champion")
    assert len(body["scores"]) == len(items) and len(body["request_id"]) == 32
    served_at = datetime.fromisoformat(body["served_at"])
    assert served_at.tzinfo is None and abs(naive_utc(datetime.now(UTC)) - served_at) < timedelta(seconds=30)
    expected = world.expected(champion, user, items)
    np.testing.assert_allclose(body["scores"], expected, rtol=0, atol=TOLERANCE)
    assert np.ptp(expected) > 1e-3  # the features matter: not one score for every item


def test_an_unknown_user_is_scored_from_default_features(world: World) -> None:
    items = world.items[:10]
    answer = world.rank({"user_id": UNKNOWN_USER, "item_ids": items})
    assert answer.status_code == 200, answer.text
    np.testing.assert_allclose(
        answer.json()["scores"],
        world.expected(world.versions["champion"], UNKNOWN_USER, items),
        rtol=0,
        atol=TOLERANCE,
    )


BAD = [
    (b'{"user_id": 1, "item_ids": [1, 2]', 400, "body"),
    (b"[1, 2, 3]", 400, "body"),
    (b'{"item_ids": [1, 2]}', 422, "user_id"),
    (b'{"user_id": "1", "item_ids": [1, 2]}', 422, "user_id"),
    (b'{"user_id": true, "item_ids": [1, 2]}', 422, "user_id"),
    (b'{"user_id": 1.5, "item_ids": [1, 2]}', 422, "user_id"),
    (b'{"user_id": 1}', 422, "item_ids"),
    (b'{"user_id": 1, "item_ids": "1,2"}', 422, "item_ids"),
    (b'{"user_id": 1, "item_ids": []}', 422, "item_ids"),
    (json.dumps({"user_id": 1, "item_ids": list(range(1001))}).encode(), 422, "item_ids"),  # default max 1000
    (b'{"user_id": 1, "item_ids": [1, "2"]}', 422, "item_ids[1]"),
    (b'{"user_id": 1, "item_ids": [1, false]}', 422, "item_ids[1]"),
    (b'{"user_id": 1, "item_ids": [null]}', 422, "item_ids[0]"),
    (b"[" * 200_000, 400, "body"),  # nested too deep for the parser
    (b'{"user_id": 1, "item_ids": [' + b"1, " * 400_000 + b"1]}", 413, "body"),  # over 1 MiB
]


@pytest.mark.parametrize(
    ("body", "status", "field"), BAD, ids=[f"{f}-{s}-{i}" for i, (_, s, f) in enumerate(BAD)]
)
def test_bad_input_gets_its_status_and_names_the_field(
    world: World, body: bytes, status: int, field: str
) -> None:
    answer = world.rank(body)
    assert answer.status_code == status, answer.text
    reply = answer.json()
    assert reply["field"] == field and reply["error"]
    if field != "body":
        assert field.split("[")[0] in reply["error"]


def test_the_gateway_still_answers_after_bad_input(world: World) -> None:
    assert world.client.get(f"{world.url}/healthz").json() == {"status": "ok"}
    assert world.rank({"user_id": world.users[1], "item_ids": world.items[:5]}).status_code == 200
    ready = world.client.get(f"{world.url}/readyz")
    assert ready.status_code == 200 and ready.json()["champion"] == world.versions["champion"]


def test_a_canary_triton_lacks_serves_from_the_champion_until_the_gateway_loaded_it(world: World) -> None:
    from flywheel.serving.routing import choose_bucket
    from flywheel.serving.state import CanaryState
    from flywheel.serving.triton import Triton

    champion, canary = world.versions["champion"], world.versions["canary"]
    triton = Triton(world.settings.serving.triton_url)
    users = world.users[:60]
    assert not triton.ready(canary)
    world.state(champion=champion, canary=canary, weight=0.5, step=3)  # as after a restart of Triton
    answer = world.rank({"user_id": users[0], "item_ids": world.items[:8]})
    assert answer.status_code == 200 and answer.json()["model_version"] == champion
    deadline = time.monotonic() + 30.0
    while time.monotonic() < deadline:
        answers = [world.rank({"user_id": u, "item_ids": world.items[:8]}) for u in users]
        assert [a.status_code for a in answers] == [200] * len(users)  # nobody waits for the load
        if triton.ready(canary):
            break
        assert {(a.json()["model_version"], a.json()["bucket"]) for a in answers} == {(champion, "champion")}
    assert triton.ready(canary), "the gateway did not load the canary the state names"

    time.sleep(1.2)  # the gateway asks again once its second of "not loaded" has passed
    state = CanaryState(champion, canary, 0.5, 3)
    for user in users:
        body = world.rank({"user_id": user, "item_ids": world.items[:8]}).json()
        bucket = choose_bucket(user, state)
        assert (body["bucket"], body["model_version"]) == (bucket, canary if bucket == "canary" else champion)
        if bucket == "canary":
            np.testing.assert_allclose(
                body["scores"], world.expected(canary, user, world.items[:8]), rtol=0, atol=TOLERANCE
            )
    assert 10 < sum(choose_bucket(u, state) == "canary" for u in users) < 50

    # A rollback as deploy_model does it: weight 0 first, then the unload; no request fails meanwhile.
    from flywheel.serving.state import open_state

    open_state(world.settings).write(CanaryState(champion=champion))
    triton.unload(canary, wait=False)
    statuses = [world.rank({"user_id": u, "item_ids": world.items[:8]}).status_code for u in users * 2]
    assert statuses == [200] * len(statuses)


def test_rematerialised_features_are_served_at_once(world: World) -> None:
    champion = world.versions["champion"]
    user, items = world.users[2], world.items[:12]
    before = world.rank({"user_id": user, "item_ids": items}).json()["scores"]

    # A new snapshot in which this user clicked a lot, as build_features would publish an hour later.
    now = datetime.now(UTC).replace(tzinfo=None, minute=0, second=0, microsecond=0)
    row = {"impression_id": "later", "event_ts": now, "user_id": user, "item_id": items[0]}
    changed = {
        "user_impressions_1h": 40, "user_clicks_1h": 30, "user_ctr_1h": 0.75, "user_impressions_24h": 400,
        "user_clicks_24h": 300, "user_ctr_24h": 0.75, "user_impressions_7d": 900, "user_clicks_7d": 700,
        "user_ctr_7d": 0.78, "user_top_category_share": 1.0, "user_hours_since_last_click": 0.0,
    }  # fmt: skip
    frame = pd.DataFrame([{**row, **changed, "user_top_category": "cat_01"}])
    _publish_user(world.settings, frame, now - timedelta(hours=1))
    time.sleep(1.0)  # the gateway checks Feast's registry file every half second

    after = world.rank({"user_id": user, "item_ids": items}).json()["scores"]
    expected = world.expected(champion, user, items)
    np.testing.assert_allclose(after, expected, rtol=0, atol=TOLERANCE)
    assert not np.allclose(before, after, atol=1e-4)


def _publish_user(settings: Settings, frame: pd.DataFrame, feature_ts: datetime) -> None:
    from flywheel.feature_store.store import apply_and_materialize
    from flywheel.warehouse import open_warehouse

    snapshot = frame.drop(columns=["impression_id", "event_ts", "item_id"]).copy()
    snapshot.insert(1, "feature_ts", pd.Timestamp(feature_ts))
    table = pa.Table.from_pandas(snapshot, preserve_index=False)
    table = table.set_column(1, "feature_ts", table.column(1).cast(pa.timestamp("us")))
    warehouse = open_warehouse(settings.warehouse_url)
    warehouse.replace_partition(
        "marts.user_features", table, "feature_ts", feature_ts, feature_ts + timedelta(hours=1)
    )
    apply_and_materialize(feature_ts, feature_ts + timedelta(hours=1), settings)


def test_latency_of_sequential_requests(world: World) -> None:
    rng = np.random.default_rng(0)
    draws = [
        (int(rng.choice(world.users)), rng.choice(world.items, 20, replace=False).tolist())
        for _ in range(300)
    ]
    measured = {}
    for run in ("first", "again"):  # first: most users and items never seen; again: all from the cache
        latencies = []
        for user, items in draws:
            started = time.perf_counter()
            answer = world.rank({"user_id": user, "item_ids": items})
            latencies.append((time.perf_counter() - started) * 1000)
            assert answer.status_code == 200
        p50, p99 = measured[run] = np.percentile(latencies, [50, 99])
        print(f"\n{run}: 300 sequential requests of 20 items, p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    stats = world.client.get(f"{world.url}/v1/stats").json()["versions"][world.versions["champion"]]
    assert stats["window_requests"] >= 600 and stats["p99_ms"] is not None
    assert measured["again"][1] < 50.0  # the SLO (p99 under 50 ms); about 7 ms here
    assert measured["first"][0] < 100.0  # a Feast read per request: about 25 ms here


def test_triton_stopped_mid_traffic_gives_503s_then_the_gateway_recovers(world: World) -> None:
    from flywheel.serving.triton import Triton, start_triton, stop_triton

    settings = world.settings
    outcomes: list[tuple[float, int, str]] = []
    stop = threading.Event()

    def traffic() -> None:
        with httpx.Client(timeout=30.0) as client:
            k = 0
            while not stop.is_set():
                user = world.users[k % len(world.users)]
                answer = world.rank({"user_id": user, "item_ids": world.items[:10]}, client=client)
                error = "" if answer.status_code == 200 else answer.json()["error"]
                outcomes.append((time.monotonic(), answer.status_code, error))
                k += 1
                time.sleep(0.02)

    def errors() -> int:  # the champion's failed requests so far (none before its first request)
        versions = world.client.get(f"{world.url}/v1/stats").json()["versions"]
        return versions.get(world.versions["champion"], {}).get("errors", 0)

    before = errors()
    thread = threading.Thread(target=traffic)
    thread.start()
    try:
        time.sleep(1.0)
        assert stop_triton(settings)
        stopped = time.monotonic()
        time.sleep(2.0)
        assert world.client.get(f"{world.url}/healthz").status_code == 200
        assert world.client.get(f"{world.url}/readyz").status_code == 503
        start_triton(settings)  # empty: the gateway loads the champion the state names by itself
        triton = Triton(settings.serving.triton_url)
        deadline = time.monotonic() + 30.0
        while not triton.ready(world.versions["champion"]) and time.monotonic() < deadline:
            time.sleep(0.1)
        reloaded = time.monotonic()
        recovered = reloaded + 0.5  # requests in flight when the load finished may still see the 503
        time.sleep(2.0)
    finally:
        stop.set()
        thread.join(timeout=60)

    statuses = {status for _, status, _ in outcomes}
    assert statuses == {200, 503}, [(round(at - stopped, 2), s, e) for at, s, e in outcomes if s == 500][:3]
    down = [error for at, status, error in outcomes if status == 503 and at < stopped + 2.0]
    url = settings.serving.triton_url
    assert down and all(f"Triton at {url} is not reachable" in e for e in down), down[:3]
    assert [s for at, s, _ in outcomes if at > recovered] and all(
        s == 200 for at, s, _ in outcomes if at > recovered
    )
    loading = [e for at, s, e in outcomes if s == 503 and "is loading it again" in e]
    assert loading, "no request saw the champion being loaded again"
    failed = sum(1 for _, status, _ in outcomes if status == 503)
    assert errors() - before == failed
    metrics = world.client.get(f"{world.url}/metrics").text
    assert 'status="503"' in metrics and "flywheel_gateway_request_latency_seconds_bucket" in metrics


def test_every_prediction_lands_and_ingest_loads_it(world: World) -> None:
    from flywheel.ingest.load import load_events
    from flywheel.serving.routing import user_hash
    from flywheel.warehouse import open_warehouse

    world.stack.stop_gateway()  # SIGTERM: the gateway writes what it buffered before it exits
    settings = world.settings
    served_rows = sum(len(request["item_ids"]) for request, _ in world.served)
    files = sorted((settings.landing_dir / "predictions").rglob("*.parquet"))
    assert files and sum(pq.read_metadata(f).num_rows for f in files) == served_rows
    assert not [p for p in (settings.landing_dir / "predictions").rglob("*") if p.name.endswith(".tmp")]

    times = [datetime.fromisoformat(answer["served_at"]) for _, answer in world.served]
    hours = hours_between(min(times), max(times) + timedelta(microseconds=1))
    report = load_events(hours[0], hours[-1] + timedelta(hours=1), settings=settings)
    assert report.rows["predictions"] == served_rows and not report.quarantined

    request, answer = world.served[0]
    rows = (
        open_warehouse(settings.warehouse_url)
        .read_arrow(
            "select * from raw.predictions where request_id = :request_id order by impression_id",
            {"request_id": answer["request_id"]},
        )
        .to_pylist()
    )
    rows.sort(key=lambda r: int(r["impression_id"].rsplit("-", 1)[1]))
    assert [r["item_id"] for r in rows] == request["item_ids"]
    assert [r["impression_id"] for r in rows] == [f"{answer['request_id']}-{i}" for i in range(len(rows))]
    assert [r["prediction_id"] for r in rows] == [r["impression_id"] for r in rows]
    np.testing.assert_allclose([r["score"] for r in rows], answer["scores"], rtol=0, atol=0)
    ranking = np.argsort(-np.asarray(answer["scores"]), kind="stable")
    assert [rows[i]["position"] for i in ranking] == list(range(1, len(rows) + 1))
    assert {(r["model_version"], r["bucket"]) for r in rows} == {(answer["model_version"], answer["bucket"])}
    assert {r["user_hash"] for r in rows} == {user_hash(request["user_id"])}
    assert all(r["event_ts"] == datetime.fromisoformat(answer["served_at"]) for r in rows)
    assert all(r["latency_ms"] > 0 for r in rows)


def test_served_predictions_join_the_clicks_they_earned(world: World) -> None:
    """Users see the top 5 of three served rankings and click the first: online performance counts them."""
    from flywheel.events import EVENT_SCHEMAS, hour_dir
    from flywheel.ingest.load import load_events
    from flywheel.monitoring import online_performance
    from flywheel.warehouse import open_warehouse

    settings = world.settings
    shown: dict[str, list] = {name: [] for name in EVENT_SCHEMAS["impressions"].names}
    clicks: dict[str, list] = {name: [] for name in EVENT_SCHEMAS["clicks"].names}
    served = [(q, a) for q, a in world.served if a["served_at"][:13] == world.served[0][1]["served_at"][:13]]
    for request, answer in served[:3]:
        at = datetime.fromisoformat(answer["served_at"])
        for position, index in enumerate(np.argsort(-np.asarray(answer["scores"]), kind="stable")[:5], 1):
            impression = f"{answer['request_id']}-{index}"
            row = [
                impression,
                answer["request_id"],
                at,
                request["user_id"],
                request["item_ids"][index],
                position,
            ]
            for name, value in zip(shown, [*row, "cat_00", 9.99], strict=True):
                shown[name].append(value)
            if position == 1:
                values = [f"clk-{impression}", impression, at, request["user_id"], request["item_ids"][index]]
                for name, value in zip(clicks, values, strict=True):
                    clicks[name].append(value)
    hour = datetime.fromisoformat(served[0][1]["served_at"]).replace(minute=0, second=0, microsecond=0)
    for table, columns in (("impressions", shown), ("clicks", clicks)):
        folder = hour_dir(settings.landing_dir, table, hour)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pydict(columns, schema=EVENT_SCHEMAS[table]), folder / "part-users.parquet"
        )
    load_events(hour, hour + timedelta(hours=1), settings=settings)

    result = online_performance(open_warehouse(settings.warehouse_url), hour, hour + timedelta(hours=1))
    assert (result.predictions, result.impressions, result.clicks) == (15, 15, 3)
    expected = np.mean([s for _, a in served[:3] for s in sorted(a["scores"], reverse=True)[:5]])
    assert result.predicted_ctr == pytest.approx(expected)
