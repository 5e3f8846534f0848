"""Shared fixtures: an isolated flywheel home per test, and warehouses on DuckDB and real PostgreSQL."""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from flywheel.config import Settings, get_settings

# Airflow reads its home when first imported: never let a test touch ~/airflow or a developer's home.
os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="flywheel-test-airflow-")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
# Tests that do not ask for a `home` still never write into the checkout's .flywheel/.
os.environ["FLYWHEEL_HOME"] = tempfile.mkdtemp(prefix="flywheel-test-home-")
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(Path(__file__).resolve().parents[1] / "dags")

POSTGRES_ADMIN_DSN = os.environ.get("FLYWHEEL_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh FLYWHEEL_HOME (DuckDB warehouse inside it) for one test."""
    monkeypatch.setenv("FLYWHEEL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLYWHEEL_WAREHOUSE_URL", raising=False)
    settings = get_settings()
    settings.ensure_dirs()
    return settings


def _postgres_database() -> Iterator[str]:
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"flywheel_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg2.connect(POSTGRES_ADMIN_DSN)
    except psycopg2.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {POSTGRES_ADMIN_DSN}: {exc}")
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'create database "{name}"')
    try:
        yield POSTGRES_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(f'drop database if exists "{name}" with (force)')
        admin.close()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, empty PostgreSQL database on the local server, dropped afterwards."""
    yield from _postgres_database()


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse_home(
    request: pytest.FixtureRequest, home: Settings, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Settings]:
    """A fresh home whose warehouse is DuckDB or a new PostgreSQL database."""
    if request.param == "duckdb":
        yield home
        return
    for url in _postgres_database():
        monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", url)
        yield get_settings()


@pytest.fixture(scope="session")
def train_small_model():
    """:func:`flywheel.training.quick.train_quick_model`: a real exported model in seconds, for evaluation
    and serving tests."""
    from flywheel.training.quick import train_quick_model

    return train_quick_model
