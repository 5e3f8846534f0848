"""Typed settings read from ``FLYWHEEL_*`` environment variables, with defaults that run on one machine."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

#: The checkout holding ``dags/``, ``plugins/``, ``sql/`` and ``dbt/``.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _env_location(name: str, default: Path) -> Path | str:
    """A folder that may live in an object store: ``s3://...`` stays a URI string, a path is resolved."""
    value = os.environ.get(name)
    if value and "://" in value and not value.startswith("file://"):
        return value.rstrip("/")
    if value and value.startswith("file://"):
        value = value.removeprefix("file://")
    return Path(value).expanduser().resolve() if value else default


@dataclass(frozen=True)
class Settings:
    """Where flywheel keeps its state; every command and DAG reads it from the environment.

    ``home`` holds the warehouse file, artifacts, the landing zone and Airflow's home, so a test or a
    parallel run that sets ``FLYWHEEL_HOME`` gets a world of its own.
    """

    home: Path
    warehouse_url: str
    landing_dir: Path
    quarantine_dir: Path
    artifacts_dir: Path | str  # a local folder, or an object store URI string (s3://bucket/prefix)
    airflow_home: Path
    project_root: Path = field(default=PROJECT_ROOT)

    @property
    def dags_folder(self) -> Path:
        return self.project_root / "dags"

    @property
    def plugins_folder(self) -> Path:
        return self.project_root / "plugins"

    def ensure_dirs(self) -> None:
        """Create the folders this home needs; safe to call any number of times."""
        for path in (self.home, self.landing_dir, self.quarantine_dir, self.artifacts_dir, self.airflow_home):
            if isinstance(path, Path):  # an object store has no folders to create
                path.mkdir(parents=True, exist_ok=True)


def get_settings() -> Settings:
    """Read settings from the environment now (not cached: tests and CLI flags change it)."""
    home = _env_path("FLYWHEEL_HOME", PROJECT_ROOT / ".flywheel")
    warehouse_url = os.environ.get("FLYWHEEL_WAREHOUSE_URL") or f"duckdb:///{home / 'warehouse.duckdb'}"
    return Settings(
        home=home,
        warehouse_url=warehouse_url,
        landing_dir=_env_path("FLYWHEEL_LANDING_DIR", home / "landing"),
        quarantine_dir=_env_path("FLYWHEEL_QUARANTINE_DIR", home / "quarantine"),
        artifacts_dir=_env_location("FLYWHEEL_ARTIFACTS_DIR", home / "artifacts"),
        airflow_home=_env_path("FLYWHEEL_AIRFLOW_HOME", home / "airflow"),
    )
