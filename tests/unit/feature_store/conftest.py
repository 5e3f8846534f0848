"""Fixtures for the feature store tests: hand-made marts and an isolated Feast project per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from feature_marts import Marts, build_marts

from flywheel.config import Settings

#: The Redis server tests share with others (``host:port``); a test touches only its own project's keys.
TEST_REDIS = os.environ.get("FLYWHEEL_TEST_REDIS", "127.0.0.1:6379")


@pytest.fixture(autouse=True)
def _default_online_store(monkeypatch: pytest.MonkeyPatch) -> None:
    # A developer's FLYWHEEL_ONLINE_STORE=redis must not send tests to a real project's keys.
    for name in ("FLYWHEEL_ONLINE_STORE", "FLYWHEEL_REDIS_URL", "FLYWHEEL_FEAST_PROJECT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def marts(home: Settings) -> Marts:
    """Hand-made marts in a fresh DuckDB home (SQLite online store unless a test says otherwise)."""
    return build_marts(home)


@pytest.fixture
def redis_project(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Any]]:
    """Route the online store to the shared Redis under a project (key suffix) no other test uses.

    Yields the project name and a client for checking the server's keys.
    """
    redis = pytest.importorskip("redis")
    url = TEST_REDIS
    client = redis.Redis.from_url(f"redis://{url}")
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {url}: {exc}")
    project = f"flywheel_test_{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("FLYWHEEL_ONLINE_STORE", "redis")
    monkeypatch.setenv("FLYWHEEL_REDIS_URL", url)
    monkeypatch.setenv("FLYWHEEL_FEAST_PROJECT", project)
    yield project, client
    # Feast keys end with the project name; delete only those, whatever the test left behind.
    for key in client.scan_iter(match=f"*{project}", count=1000):
        client.delete(key)
    client.close()
