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


def _train_small_model(frame, folder: Path, *, shuffle: bool = False, epochs: int = 4) -> Path:
    """A small DCN fitted by a few epochs of Adam on ``frame`` (no Ray, no search), exported to ``folder``
    as training exports it (``model.pt`` and ``feature_spec.json``); ``shuffle`` permutes the labels."""
    import numpy as np
    import torch

    from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE
    from flywheel.artifacts.spec import encode, fit_spec
    from flywheel.training.model import build_model, export_torchscript

    torch.manual_seed(0)
    spec = fit_spec(frame, id_buckets={"user_id": 512, "item_id": 256})
    sparse, dense = (torch.from_numpy(a) for a in encode(frame, spec))
    labels = frame["label"].to_numpy(dtype=np.float32)
    if shuffle:
        labels = np.random.default_rng(0).permutation(labels)
    y = torch.from_numpy(labels)
    model = build_model(spec.cardinalities, len(spec.numeric), {"mlp_width": 32, "embedding_dim": 8})
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(0)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(512):
            optimiser.zero_grad()
            loss(model(sparse[batch], dense[batch]), y[batch]).backward()
            optimiser.step()
    folder.mkdir(parents=True)
    spec.save(folder / SPEC_FILE)
    export_torchscript(model.eval(), folder / MODEL_FILE)
    return folder


@pytest.fixture(scope="session")
def train_small_model():
    """:func:`_train_small_model`: a real exported model in seconds, for evaluation tests."""
    return _train_small_model
