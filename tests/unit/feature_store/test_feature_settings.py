"""Feature store settings and the rendered repo: env vars, Redis URLs, one Feast repo per home."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from flywheel.config import Settings, SettingsError, get_settings
from flywheel.feature_store.render import load_definitions, render_config, render_repo
from flywheel.feature_store.settings import FeatureStoreError, feature_store_settings, redis_connection_string


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("127.0.0.1:6379", "127.0.0.1:6379"),
        ("redis://cache:6380/2", "cache:6380,db=2"),
        ("redis://:s%40cret@cache/0", "cache:6379,db=0,password=s@cret"),
        ("rediss://cache.example:6390", "cache.example:6390,ssl=true"),
    ],
)
def test_redis_urls_become_feast_connection_strings(url: str, expected: str) -> None:
    assert redis_connection_string(url) == expected


def test_bad_settings_name_the_variable(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLYWHEEL_ONLINE_STORE", "memcached")
    # Read and checked with every other setting (flywheel.config), before any feature store work starts.
    with pytest.raises(SettingsError, match="FLYWHEEL_ONLINE_STORE='memcached'.*sqlite, redis"):
        feature_store_settings()
    monkeypatch.setenv("FLYWHEEL_ONLINE_STORE", "redis")
    monkeypatch.setenv("FLYWHEEL_REDIS_URL", "http://cache:6379")
    with pytest.raises(SettingsError, match="FLYWHEEL_REDIS_URL='http://cache:6379'"):
        feature_store_settings()
    monkeypatch.setenv("FLYWHEEL_REDIS_URL", "redis://cache:6379")
    monkeypatch.setenv("FLYWHEEL_FEAST_PROJECT", "-flywheel")
    with pytest.raises(SettingsError, match="FLYWHEEL_FEAST_PROJECT='-flywheel'"):
        feature_store_settings()
    # A Redis URL handed over directly (not through the environment) is still checked where it is used.
    with pytest.raises(FeatureStoreError, match="FLYWHEEL_REDIS_URL"):
        redis_connection_string("http://cache:6379")


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_rendered_config_is_a_valid_feast_config_inside_the_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, online_store: str
) -> None:
    from feast.repo_config import RepoConfig

    # Quotes, colons and hashes in the home path must survive YAML.
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "it's: a #home"))
    monkeypatch.setenv("FLYWHEEL_ONLINE_STORE", online_store)
    monkeypatch.setenv("FLYWHEEL_REDIS_URL", "redis://cache:6380/1")
    fs = feature_store_settings(get_settings())
    raw = yaml.safe_load(render_config(fs))
    config = RepoConfig(repo_path=fs.repo_dir, **raw)

    assert config.project == "flywheel"
    assert Path(config.registry.path) == fs.repo_dir / "registry.db"
    assert config.offline_store.type == "duckdb"
    if online_store == "redis":
        assert config.online_store.connection_string == "cache:6380,db=1"
    else:
        assert Path(config.online_store.path) == fs.repo_dir / "online_store.db"


def test_each_home_gets_definitions_reading_its_own_exports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sources = []
    for name in ("a", "b"):
        monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / name))
        fs = feature_store_settings(get_settings())
        module = load_definitions(render_repo(fs))
        assert (fs.repo_dir / "feature_store.yaml").exists()
        sources.append(module.user_features.batch_source.path)
    assert sources == [
        str(tmp_path / n / "feature_store" / "data" / "user_features" / "*.parquet") for n in "ab"
    ]
