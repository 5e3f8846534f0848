"""Serving's settings: defaults under FLYWHEEL_HOME, and each malformed value refused by name."""

from __future__ import annotations

import pytest

from flywheel.config import SettingsError, get_settings


def test_defaults_live_under_the_home(home) -> None:
    serving = get_settings().serving
    assert serving.model_repository == home.home / "triton" / "models"
    assert serving.canary_state == str(home.home / "serving" / "canary.json")
    assert serving.triton_url == "127.0.0.1:8000" and serving.gateway_url == "http://127.0.0.1:8100"
    assert serving.canary_steps == (5, 10, 25, 50, 100)


def test_redis_state_and_custom_steps(home, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_CANARY_STATE", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("FLYWHEEL_CANARY_STEPS", "10,50,100")
    monkeypatch.setenv("FLYWHEEL_GATEWAY_URL", "http://127.0.0.1:9000/")
    serving = get_settings().serving
    assert serving.canary_state == "redis://127.0.0.1:6379/0"
    assert serving.canary_steps == (10, 50, 100)
    assert serving.gateway_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("name", "value", "words"),
    [
        ("FLYWHEEL_CANARY_STEPS", "5,10,50", "ending at 100"),
        ("FLYWHEEL_CANARY_STEPS", "50,10,100", "increasing"),
        ("FLYWHEEL_CANARY_STEPS", "five,100", "increasing"),
        ("FLYWHEEL_TRITON_URL", "localhost", "host:port"),
        ("FLYWHEEL_TRITON_URL", "127.0.0.1:99999", "host:port"),
        ("FLYWHEEL_CANARY_STATE", "memcached://x:1", "redis"),
        ("FLYWHEEL_GATEWAY_URL", "127.0.0.1:8100", "http"),
        ("FLYWHEEL_SERVE_MAX_ITEMS", "0", "whole number"),
        ("FLYWHEEL_CANARY_P99_MS", "0", "above 0"),
        ("FLYWHEEL_CANARY_MAX_ERROR_RATE", "2", "at most 1"),
    ],
)
def test_bad_values_are_refused_by_name(home, monkeypatch, name: str, value: str, words: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=name) as caught:
        get_settings()
    assert words in str(caught.value)
