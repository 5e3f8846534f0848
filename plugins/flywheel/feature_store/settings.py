"""Where the feature store lives and which online store it uses, read from ``FLYWHEEL_*`` variables."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flywheel.config import Settings, get_settings


class FeatureStoreError(RuntimeError):
    """The feature store is misconfigured or its inputs are missing; the message says what to do."""


@dataclass(frozen=True)
class FeatureStoreSettings:
    """The Feast repo of one flywheel home and the backends it is rendered for."""

    repo_dir: Path
    project: str
    online_store: str
    redis_url: str
    warehouse_url: str

    @property
    def data_dir(self) -> Path:
        """Parquet exports of the marts (the offline store's input)."""
        return self.repo_dir / "data"

    @property
    def redis_connection(self) -> str:
        """``FLYWHEEL_REDIS_URL`` in Feast's ``host:port,key=value`` form."""
        return redis_connection_string(self.redis_url)


def feature_store_settings(settings: Settings | None = None) -> FeatureStoreSettings:
    """Read the feature store's settings for ``settings.home`` (default: the environment's home)."""
    settings = settings or get_settings()  # FLYWHEEL_ONLINE_STORE etc. are validated there (SettingsError)
    backend = settings.feature_store
    return FeatureStoreSettings(
        repo_dir=settings.home / "feature_store",
        project=backend.project,
        online_store=backend.online_store,
        redis_url=backend.redis_url,
        warehouse_url=settings.warehouse_url,
    )


def redis_connection_string(url: str) -> str:
    """Turn ``redis://[:password@]host:port[/db]`` (or Feast's own ``host:port,...``) into Feast's form."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss") or not parts.hostname:
        raise FeatureStoreError(
            f"FLYWHEEL_REDIS_URL={url!r} is not a Redis URL: use host:port or redis://host:port/db"
        )
    options = [f"{parts.hostname}:{parts.port or 6379}"]
    db = parts.path.strip("/")
    if db:
        options.append(f"db={int(db)}")
    if parts.password:
        options.append(f"password={unquote(parts.password)}")
    if parts.scheme == "rediss":
        options.append("ssl=true")
    return ",".join(options)
