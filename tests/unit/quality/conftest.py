"""Fixtures for the gate tests: simulated landing files made once, and a home with them ingested."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from gate_world import HISTORY_HOURS, IMPRESSIONS_PER_HOUR, T0, RawWorld

from flywheel.config import Settings
from flywheel.simulate import SimulationConfig, simulate


@pytest.fixture(scope="session")
def simulated_landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Seven simulated hours of landing files, made once and copied into each test's home."""
    landing = tmp_path_factory.mktemp("simulated") / "landing"
    cfg = SimulationConfig(
        start=T0, hours=HISTORY_HOURS + 1, impressions_per_hour=IMPRESSIONS_PER_HOUR, seed=7
    )
    simulate(cfg, landing)
    return landing


@pytest.fixture
def raw_world(home: Settings, simulated_landing: Path) -> RawWorld:
    """The simulated hours landed and ingested into a fresh DuckDB home."""
    shutil.copytree(simulated_landing, home.landing_dir, dirs_exist_ok=True)
    world = RawWorld(home)
    world.ingest()
    return world


@pytest.fixture
def make_raw_world(simulated_landing: Path) -> Callable[[Settings], RawWorld]:
    """Build a ``RawWorld`` in any home (e.g. one whose warehouse is PostgreSQL)."""

    def make(settings: Settings) -> RawWorld:
        shutil.copytree(simulated_landing, settings.landing_dir, dirs_exist_ok=True)
        world = RawWorld(settings)
        world.ingest()
        return world

    return make
