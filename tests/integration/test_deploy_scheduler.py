"""Deployment through a real Airflow, a real Triton and the gateway under steady simulated traffic:
``deploy_model`` puts the first model in service after its smoke test, rolls back a canary of a model trained
on shuffled clicks (forced past the gate for the test) while the champion keeps all traffic, then promotes a
good model through every canary step; no request fails on the way."""

from __future__ import annotations

import shutil
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from flywheel.config import Settings, get_settings
from flywheel.local.processes import AirflowProcesses, admin_api, airflow_cli, free_port, free_port_run

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]

ROOT = Path(__file__).resolve().parents[2]
HOURS = 36  # enough history per user for a model to learn whose interests lie where (docs in serving_world)
RPS = 40


def _serving_env(monkeypatch: pytest.MonkeyPatch) -> None:
    triton = free_port_run(3)
    monkeypatch.setenv("FLYWHEEL_TRITON_URL", f"127.0.0.1:{triton}")
    monkeypatch.setenv("FLYWHEEL_GATEWAY_URL", f"http://127.0.0.1:{free_port()}")
    monkeypatch.setenv("FLYWHEEL_PREDICTION_FLUSH_SECONDS", "1")
    # Sized for 40 requests/s with Airflow, Triton, the gateway and the users on 2 cores: three steps (the
    # default five need minutes of traffic at 5 %, docs/serving.md), each judged after 100 canary requests
    # and 10 s. Users see 5 of 20 candidates, where ranking matters most: one request's CTR then has a
    # standard deviation near 0.2, so the margin is 0.05 (a 0.02 margin needs about 2,000 canary requests per
    # step); the shuffled model's loss here is about 0.085, the good model's about 0.
    monkeypatch.setenv("FLYWHEEL_CANARY_STEPS", "20,50,100")
    monkeypatch.setenv("FLYWHEEL_CANARY_MIN_REQUESTS", "100")
    monkeypatch.setenv("FLYWHEEL_CANARY_MIN_SECONDS", "10")
    monkeypatch.setenv("FLYWHEEL_CANARY_MAX_SECONDS", "150")
    monkeypatch.setenv("FLYWHEEL_CANARY_CTR_MARGIN", "0.05")
    # A guard for this busy machine, not for production (100 ms): the p99 guard has its own drill
    # (benchmarks/rollback_drill.py).
    monkeypatch.setenv("FLYWHEEL_CANARY_P99_MS", "300")


def test_rollback_of_a_worse_model_and_promotion_of_a_good_one(
    home: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from flywheel.local.serving import ServingStack, serving_world
    from flywheel.registry import deployments, get_version
    from flywheel.serving.repository import triton_model_name
    from flywheel.serving.state import open_state
    from flywheel.serving.triton import Triton
    from flywheel.simulate.traffic import run_traffic
    from flywheel.warehouse import open_warehouse

    _serving_env(monkeypatch)
    settings = get_settings()
    # The champion and the good model learned the same clicks; the shuffled one learned nothing, so it ranks
    # at random: about 0.05 less CTR than the champion in this world (docs/serving.md).
    versions = serving_world(
        settings,
        {"champion": {}, "shuffled": {"shuffle": True}, "good": {"seed": 1}},
        hours=HOURS,
        impressions_per_hour=3000,
        bless=True,
    )
    warehouse = open_warehouse(settings.warehouse_url)

    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(ROOT / "dags" / "deploy_model.py", dags)

    def setup(env):
        airflow_cli(["dags", "unpause", "deploy_model"], env)

    stop = threading.Event()
    reports = []
    with ServingStack(settings) as stack, AirflowProcesses(home, dags_folder=dags, setup=setup) as procs:
        api = admin_api(procs)

        def deploy(version: str) -> dict:
            run_id = api.trigger("deploy_model", conf={"version": version})

            def finished() -> dict | None:
                run = api.dag_run("deploy_model", run_id)
                return run if run["state"] in ("success", "failed") else None

            return procs.wait_for(finished, f"deploy_model of {version}", timeout=900, every=2.0)

        first = deploy(versions["champion"])
        assert first["state"] == "success", procs.log_dir
        assert get_version(versions["champion"], warehouse).status == "champion"
        # Steady users from now on; the minute before the next rollout is the DID's "before".
        traffic = threading.Thread(
            target=lambda: reports.append(
                run_traffic(
                    url=stack.gateway_url, rps=RPS, seconds=3600, shown=5, settings=settings, stop=stop
                )
            ),
            daemon=True,
        )
        served_from = datetime.now(UTC).replace(tzinfo=None)
        traffic.start()
        before = time.monotonic() + 60
        procs.wait_for(lambda: time.monotonic() > before, "a minute of champion-only traffic", timeout=90)

        worse = deploy(versions["shuffled"])
        assert worse["state"] == "failed"
        assert get_version(versions["shuffled"], warehouse).status == "rolled_back"
        assert get_version(versions["champion"], warehouse).status == "champion"
        state = open_state(settings).read()
        assert state.champion == versions["champion"] and state.canary is None and state.weight == 0
        assert not Triton(settings.serving.triton_url).ready(versions["shuffled"])
        rolled = deployments(versions["shuffled"], warehouse)
        assert rolled and rolled[-1].decision == "rollback", rolled
        assert "CTR_MARGIN" in (rolled[-1].reason or ""), rolled  # judged by the DID, not by a guard

        good = deploy(versions["good"])
        assert good["state"] == "success", procs.log_dir
        assert get_version(versions["good"], warehouse).status == "champion"
        assert get_version(versions["champion"], warehouse).status == "archived"
        steps = deployments(versions["good"], warehouse)
        shares = [round(s.traffic_share, 2) for s in steps if s.decision == "advance"]
        assert shares == [0.2, 0.5, 1.0], steps
        assert steps[-1].decision == "promote"
        assert not Triton(settings.serving.triton_url).ready(versions["champion"])
        assert (settings.serving.model_repository / triton_model_name(versions["good"])).is_dir()
        stop.set()
        traffic.join(timeout=60)
    report = reports[0]
    assert report.requests > 1000
    assert report.failures == 0, report
    assert set(report.versions) == {versions["champion"], versions["shuffled"], versions["good"]}

    # The feedback loop: what the gateway served and what users did land as events, and ingest_events' task
    # loads them; the monitoring query joins served predictions with the clicks they earned.
    from flywheel.ingest.tasks import load_events
    from flywheel.monitoring import online_performance

    hour = served_from.replace(minute=0, second=0, microsecond=0)
    end = datetime.now(UTC).replace(tzinfo=None) + timedelta(hours=1)
    loaded = load_events(hour, end.replace(minute=0, second=0, microsecond=0), "test-feedback")
    assert loaded["rows"]["predictions"] > 0, loaded
    served = online_performance(warehouse, hour, end)
    assert served.predictions > 1000 and served.impressions == served.predictions and served.clicks > 0
    assert served.auc is not None and served.auc > 0.5, served
