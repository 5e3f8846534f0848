"""Where the feature store lives and which online store it uses, read from ``FLYWHEEL_*`` variables."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from flywheel.config import Settings, get_settings

#: Online stores flywheel supports: the embedded default and the production backend.
ONLINE_STORES = ("sqlite", "redis")
DEFAULT_REDIS_URL = "127.0.0.1:6379"
DEFAULT_PROJECT = "flywheel"

# Feast's own rule for project names; hyphens are left out because Redis key patterns match on the name.
_PROJECT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


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
    settings = settings or get_settings()
    online_store = os.environ.get("FLYWHEEL_ONLINE_STORE", "sqlite").strip().lower() or "sqlite"
    if online_store not in ONLINE_STORES:
        raise FeatureStoreError(
            f"FLYWHEEL_ONLINE_STORE={online_store!r} is not supported: use one of {', '.join(ONLINE_STORES)}"
        )
    project = os.environ.get("FLYWHEEL_FEAST_PROJECT", DEFAULT_PROJECT)
    if not _PROJECT.match(project):
        raise FeatureStoreError(
            f"FLYWHEEL_FEAST_PROJECT={project!r} is not a valid Feast project name: "
            "use letters, digits and underscores, starting with a letter or digit"
        )
    return FeatureStoreSettings(
        repo_dir=settings.home / "feature_store",
        project=project,
        online_store=online_store,
        redis_url=os.environ.get("FLYWHEEL_REDIS_URL", DEFAULT_REDIS_URL),
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
