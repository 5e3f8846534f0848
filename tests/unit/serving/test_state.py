"""The canary state: a file that many processes read while it is replaced, one Redis key, and the gateway's
cached view that keeps serving through a store outage."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import pytest

from flywheel.config import Settings, get_settings
from flywheel.serving.state import (
    CachedState,
    CanaryState,
    FileStateStore,
    RedisStateStore,
    StateError,
    open_state,
)

TEST_REDIS = os.environ.get("FLYWHEEL_TEST_REDIS", "127.0.0.1:6379")

READER = """
import sys, time
from flywheel.serving.state import FileStateStore
store, seen, deadline = FileStateStore(sys.argv[1]), set(), time.monotonic() + 20
while time.monotonic() < deadline:
    state = store.read()  # raises on a torn or half-written file
    seen.add(state.step)
    if state.step == int(sys.argv[2]):
        break
print(len(seen))
"""


def test_a_missing_file_means_nothing_deployed(tmp_path: Path) -> None:
    assert FileStateStore(tmp_path / "none.json").read() == CanaryState()
    assert CanaryState().champion is None and CanaryState().weight == 0.0


def test_write_read_round_trip_and_replace_keeps_the_rest(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "serving" / "canary.json")
    state = CanaryState("v1", "v2", 0.25, 2, "v2@run", "2026-01-01T00:00:00")
    store.write(state)
    assert store.read() == state
    store.write(replace(store.read(), weight=0.5, step=3))
    assert store.read() == replace(state, weight=0.5, step=3)
    assert [p.name for p in store.path.parent.iterdir()] == ["canary.json"]  # no scratch file left


def test_readers_in_other_processes_never_see_half_a_state(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path / "canary.json")
    store.write(CanaryState("v1", "v2", 0.0, 0))
    last = 400
    readers = [
        subprocess.Popen([sys.executable, "-c", READER, str(store.path), str(last)], stdout=subprocess.PIPE)
        for _ in range(2)
    ]
    time.sleep(0.5)  # let the readers start reading
    padding = "x" * 4000  # a bigger file makes a torn read likelier, were the write not atomic
    for step in range(1, last + 1):
        store.write(CanaryState("v1", "v2", step / last, step, deployment_id=f"{padding}{step}"))
    for reader in readers:
        out, _ = reader.communicate(timeout=30)
        assert reader.returncode == 0
        assert int(out) > 1  # it read while the writes happened


def test_a_bad_state_names_the_store(tmp_path: Path) -> None:
    path = tmp_path / "canary.json"
    path.write_text("{not json")
    with pytest.raises(StateError, match=rf"{path}.*not JSON"):
        FileStateStore(path).read()
    path.write_text('{"champion": "v1", "weight": 1.5}')
    with pytest.raises(StateError, match=r"outside \[0, 1\]"):
        FileStateStore(path).read()
    path.write_text('{"champion": "v1", "weight": 0.1, "written_by": "a newer version"}')
    assert FileStateStore(path).read() == CanaryState(champion="v1", weight=0.1)
    with pytest.raises(StateError, match="weight"):
        CanaryState(weight=True)


def test_open_state_follows_the_setting(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    store = open_state(home)
    assert isinstance(store, FileStateStore)
    assert store.path == home.home / "serving" / "canary.json"
    monkeypatch.setenv("FLYWHEEL_CANARY_STATE", f"redis://{TEST_REDIS}/0")
    redis_store = open_state(get_settings())
    assert isinstance(redis_store, RedisStateStore)
    redis_store.close()


def test_redis_store_round_trip_with_a_key_of_its_own() -> None:
    store = RedisStateStore(f"redis://{TEST_REDIS}/0", key=f"flywheel_test:{uuid.uuid4().hex}")
    try:
        assert store.read() == CanaryState()
        state = CanaryState("v3", "v4", 0.1, 1, "v4@run", "2026-01-01T00:00:00")
        store.write(state)
        assert store.read() == state
        other = RedisStateStore(f"redis://{TEST_REDIS}/0", key=store.key)  # another gateway
        assert other.read() == state
        other.close()
    finally:
        store.delete()
        assert store.read() == CanaryState()
        store.close()


def test_an_unreachable_redis_names_the_url() -> None:
    store = RedisStateStore("redis://127.0.0.1:1/0")
    with pytest.raises(StateError, match=r"127\.0\.0\.1:1.*FLYWHEEL_CANARY_STATE"):
        store.read()


class _FlakyStore:
    location = "flaky"

    def __init__(self) -> None:
        self.state, self.reads, self.broken = CanaryState("v1"), 0, False

    def read(self) -> CanaryState:
        self.reads += 1
        if self.broken:
            raise StateError("the store is down")
        return self.state

    def write(self, state: CanaryState) -> None:
        self.state = state


def test_cached_state_rereads_at_most_every_refresh_and_survives_an_outage() -> None:
    store = _FlakyStore()
    cached = CachedState(store, refresh=0.2)
    assert cached.get().champion == "v1"
    for _ in range(100):
        cached.get()
    assert store.reads == 1
    store.write(CanaryState("v1", "v2", 0.5))
    assert cached.get().canary is None  # still the copy from less than 0.2 s ago
    assert cached.get(force=True).canary == "v2"
    time.sleep(0.25)
    store.write(CanaryState("v1"))
    assert cached.get().canary is None
    store.broken = True
    time.sleep(0.25)
    assert cached.get() == CanaryState("v1")  # the last state keeps serving
    assert cached.error == "the store is down"
    with pytest.raises(StateError):
        CachedState(store).get()  # never read: nothing to serve
