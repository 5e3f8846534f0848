"""The gateway without a Triton server: what ``/v1/rank`` refuses and how it names the field, 503s that say
why (no champion, Triton unreachable), and the per-entity feature cache. The real server is in
tests/integration/test_gateway.py."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from typing import Any

import numpy as np
import pytest

from flywheel.artifacts.spec import COUNTS, RATES, encode, fit_spec
from flywheel.config import Settings
from flywheel.feature_store.defaults import missing_value
from flywheel.serving.batching import BatchedReader
from flywheel.serving.gateway import create_app
from flywheel.serving.online import OnlineFeatures
from flywheel.serving.repository import triton_model_name
from flywheel.serving.requests import Rejected, parse_rank_request
from flywheel.serving.state import CanaryState, FileStateStore
from flywheel.serving.tensors import serving_frame
from flywheel.serving.triton import Triton

BAD_REQUESTS = [
    (b"{not json", 400, "body"),
    (b"[1, 2]", 400, "body"),
    (b'"text"', 400, "body"),
    (b"\xff\xfe", 400, "body"),
    (b"[" * 100_000, 400, "body"),
    (b'{"item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": "7", "item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": true, "item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": 7.5, "item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": null, "item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": 99999999999999999999, "item_ids": [1]}', 422, "user_id"),
    (b'{"user_id": 7}', 422, "item_ids"),
    (b'{"user_id": 7, "item_ids": 3}', 422, "item_ids"),
    (b'{"user_id": 7, "item_ids": {"a": 1}}', 422, "item_ids"),
    (b'{"user_id": 7, "item_ids": []}', 422, "item_ids"),
    (json.dumps({"user_id": 7, "item_ids": list(range(1001))}).encode(), 422, "item_ids"),
    (b'{"user_id": 7, "item_ids": [1, 2, "3"]}', 422, "item_ids[2]"),
    (b'{"user_id": 7, "item_ids": [1, false]}', 422, "item_ids[1]"),
    (b'{"user_id": 7, "item_ids": [1.0]}', 422, "item_ids[0]"),
    (b'{"user_id": 7, "item_ids": [[1]]}', 422, "item_ids[0]"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
def test_bad_requests_name_their_field(body: bytes, status: int, field: str) -> None:
    with pytest.raises(Rejected) as refused:
        parse_rank_request(body, max_items=1000)
    assert (refused.value.status, refused.value.field) == (status, field)
    assert field.split("[")[0] in refused.value.error or field == "body"


def test_a_good_request_parses() -> None:
    assert parse_rank_request(b'{"user_id": -3, "item_ids": [5, 5, 2], "extra": 1}', 1000) == (-3, [5, 5, 2])
    with pytest.raises(Rejected, match="more than the 2 allowed"):
        parse_rank_request(b'{"user_id": 1, "item_ids": [1, 2, 3]}', max_items=2)
    with pytest.raises(Rejected) as huge:
        parse_rank_request(b" " * (2 << 20), max_items=10)
    assert huge.value.status == 413


#: The online features a model reads (the feature service's columns), from the spec's own lists.
FEATURES = [
    *(c for c in (*COUNTS, *RATES) if c.startswith(("user_", "item_"))),
    "user_top_category",
    "user_hours_since_last_click",
    "item_category",
    "item_price",
]


class _Store:
    """A feature store of known entities: users 1..3, items 10..12; others get the defaults."""

    def __init__(self) -> None:
        self.reads: list[tuple[list[int], list[int]]] = []
        self.version = 1

    def __call__(self, users: list[int], items: list[int]) -> dict[str, list[Any]]:
        self.reads.append((users, items))
        out: dict[str, list[Any]] = {"user_id": users, "item_id": items}
        for name in FEATURES:
            entities = users if name.startswith("user_") else items
            known = (1, 2, 3) if name.startswith("user_") else (10, 11, 12)
            dtype = "String" if name.endswith("category") else "Int64" if name in COUNTS else "Float64"
            out[name] = [
                (f"cat_{e}" if dtype == "String" else e * 10 + self.version)
                if e in known
                else missing_value(name, dtype)
                for e in entities
            ]
        return out


def test_features_are_cached_per_entity_and_forgotten_on_rematerialisation(home: Settings) -> None:
    store = _Store()
    online = OnlineFeatures(home, reader=store)
    frame, read = online.frame(1, [10, 11])
    assert read and store.reads == [([1, 1], [10, 11])]
    assert frame["user_clicks_7d"].tolist() == [11, 11] and frame["price"].tolist() == [101.0, 111.0]
    assert frame["category"].tolist() == frame["item_category"].tolist() == ["cat_10", "cat_11"]

    frame, read = online.frame(2, [11, 10])  # a new user, known items: one read, for the user only
    assert read and store.reads[-1] == ([2], [11])
    assert frame["item_price"].tolist() == [111.0, 101.0] and frame["user_clicks_7d"].tolist() == [21, 21]
    frame, read = online.frame(1, [11, 10, 11])
    assert not read and len(store.reads) == 2
    assert frame["item_id"].tolist() == [11, 10, 11]

    unknown, _ = online.frame(404, [999])  # unknown user and item: the defaults, and a missing price
    assert unknown["user_clicks_7d"].tolist() == [missing_value("user_clicks_7d", "Int64")]
    assert unknown["user_top_category"].tolist() == ["none"] and unknown["price"].isna().all()
    assert unknown["user_hours_since_last_click"].tolist() == [168.0]

    # Feast rewrites its registry file when it materialises: the cache empties and new values are read.
    store.version = 2
    registry = home.home / "feature_store" / "registry.db"
    registry.parent.mkdir(parents=True, exist_ok=True)
    registry.write_bytes(b"materialised again")
    time.sleep(0.6)
    frame, read = online.frame(1, [10])
    assert read and frame["user_clicks_7d"].tolist() == [12]


def _spec(seed: int) -> Any:
    frame = serving_frame(_Store()([1, 2, 3, 9] * 5, [10, 11, 12, 99, 10] * 4))
    frame["position"] = 1
    frame["label"] = np.random.default_rng(seed).integers(0, 2, len(frame))
    frame.loc[frame.index[: seed + 2], "item_price"] *= seed + 1  # another spec: other means and stds
    return fit_spec(frame)


def test_tensors_assembled_from_cached_entities_equal_a_fresh_encode(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    import flywheel.serving.online as online_module

    encodes = []
    monkeypatch.setattr(online_module, "encode", lambda *a, **k: encodes.append(1) or encode(*a, **k))
    store = _Store()
    online = OnlineFeatures(home, reader=store)
    specs = {"v1": _spec(0), "v2": _spec(1)}
    requests = [(1, [10, 11, 99]), (2, [11, 10, 10, 12]), (1, [12, 99, 10]), (404, [10, 12]), (2, [12, 11])]
    for round in range(3):  # cold, then from the cache
        encodes.clear()
        for user, items in requests:
            for version, spec in specs.items():
                sparse, dense, _ = online.encoded(user, items, version, spec)
                want = encode(online.frame(user, items)[0], spec, serving=True)
                np.testing.assert_array_equal(sparse, want[0])
                np.testing.assert_array_equal(dense, want[1])
        # Requests 3 and 5 only name entities seen before: no encode (pandas) for them, even when cold.
        assert len(encodes) == (0 if round else 6)
    assert len(store.reads) == 3  # users 1, 2 and 404: items came with the first reads


def test_concurrent_misses_share_one_feature_store_read() -> None:
    calls: list[int] = []

    def slow(users: list[int], items: list[int]) -> dict[str, list[Any]]:
        calls.append(len(users))
        time.sleep(0.05)  # about what a Feast read costs
        if -1 in users:
            raise RuntimeError("the online store is down")
        return {"user_id": users, "item_id": items, "user_x": [u * 2 for u in users]}

    read = BatchedReader(slow)
    results: dict[int, Any] = {}

    def ask(user: int) -> None:
        try:
            results[user] = read([user, user], [user + 100, user + 200])
        except RuntimeError as exc:
            results[user] = exc

    threads = [threading.Thread(target=ask, args=(u,)) for u in range(1, 21)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(calls) == 2 * 20 and len(calls) < 8  # 20 callers, a few batches
    for user in range(1, 21):
        assert results[user] == {
            "user_id": [user] * 2,
            "item_id": [user + 100, user + 200],
            "user_x": [user * 2] * 2,
        }
    ask(-1)  # a failed read fails its callers ...
    assert isinstance(results[-1], RuntimeError)
    assert read([5], [6]) == {"user_id": [5], "item_id": [6], "user_x": [10]}  # ... and the next one runs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _export_spec(home: Settings, version: str) -> None:
    """The feature spec of an exported model (all the gateway reads from the repository itself)."""
    frame = serving_frame(_Store()([1, 2, 3, 9] * 5, [10, 11, 12, 99, 10] * 4))
    frame["position"], frame["label"] = 1, [0, 1] * 10
    folder = home.serving.model_repository / triton_model_name(version)
    folder.mkdir(parents=True)
    fit_spec(frame).save(folder / "feature_spec.json")


def test_the_app_answers_503s_that_say_why_and_stays_up(home: Settings) -> None:
    with warnings.catch_warnings():  # starlette asks for httpx2, which is not installed
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    _export_spec(home, "v0001")
    state = FileStateStore(home.home / "serving" / "canary.json")
    triton = Triton(f"127.0.0.1:{_free_port()}", timeout=1.0)  # nothing listens there
    app = create_app(home, triton=triton, state_store=state, features=OnlineFeatures(home, reader=_Store()))
    with TestClient(app) as client:
        good = {"user_id": 1, "item_ids": [10, 11]}
        answer = client.post("/v1/rank", json=good)
        assert answer.status_code == 503 and "no model is in service" in answer.json()["error"]

        state.write(CanaryState(champion="v0001"))
        time.sleep(0.6)  # the gateway re-reads the state at least every half second
        answer = client.post("/v1/rank", json=good)
        assert answer.status_code == 503
        assert f"Triton at {triton.url} is not reachable" in answer.json()["error"]

        answer = client.post("/v1/rank", content=b"{oops")
        assert answer.status_code == 400 and answer.json()["field"] == "body"
        assert client.get("/healthz").json() == {"status": "ok"}
        ready = client.get("/readyz")
        assert ready.status_code == 503 and "not live" in ready.json()["reason"]
        stats = client.get("/v1/stats").json()
        assert stats["versions"]["v0001"]["errors"] == 1 and stats["state"]["champion"] == "v0001"
        metrics = client.get("/metrics").text
        assert (
            'flywheel_gateway_requests_total{bucket="champion",model_version="v0001",status="503"} 1.0'
            in metrics
        )
        assert (
            'flywheel_gateway_requests_total{bucket="none",model_version="none",status="400"} 1.0' in metrics
        )
