"""A real Pushgateway and Prometheus: exported PSI comes back through the query API and the alert fires."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from flywheel.config import Settings
from flywheel.local.processes import free_port
from flywheel.monitoring import Decision, FeatureDrift, OnlinePerformance, export_metrics
from flywheel.monitoring.metrics import PUSHGATEWAY_ENV

ROOT = Path(__file__).resolve().parents[3]
BINARIES = ("prometheus", "prometheus-pushgateway")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        any(shutil.which(b) is None for b in BINARIES),
        reason="prometheus / prometheus-pushgateway are not installed: run scripts/system-deps.sh",
    ),
]


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def wait_until(what: str, check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = check()
            if last:
                return last
        except OSError as exc:  # not listening yet
            last = exc
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last: {last!r}")


@pytest.fixture
def services(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Pushgateway and Prometheus on free local ports, each in its own process group, stopped afterwards."""
    gateway_port, prometheus_port = free_port(), free_port()
    config = yaml.safe_load((ROOT / "monitoring" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ROOT / "monitoring" / "prometheus" / "rules.yml")]
    config["scrape_configs"] = [
        {**job, "static_configs": [{"targets": [f"127.0.0.1:{gateway_port}"]}]}
        for job in config["scrape_configs"]
        if job["job_name"] == "pushgateway"
    ]
    config_path = tmp_path / "prometheus.yml"
    config_path.write_text(yaml.safe_dump(config))

    commands = {
        "pushgateway": [
            "prometheus-pushgateway",
            f"--web.listen-address=127.0.0.1:{gateway_port}",
        ],
        "prometheus": [
            "prometheus",
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp_path / 'tsdb'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
        ],
    }
    processes: list[subprocess.Popen] = []
    try:
        for name, command in commands.items():
            log = (tmp_path / f"{name}.log").open("w")
            processes.append(
                subprocess.Popen(
                    command, cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        urls = {
            "pushgateway": f"http://127.0.0.1:{gateway_port}",
            "prometheus": f"http://127.0.0.1:{prometheus_port}",
        }
        for name, url in urls.items():
            wait_until(
                f"{name} to be ready", lambda url=url: urllib.request.urlopen(f"{url}/-/ready", timeout=2)
            )
        yield urls
    finally:
        for process in processes:
            try:
                os.killpg(process.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
        for process in processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


def query(prometheus: str, promql: str) -> list[dict]:
    url = f"{prometheus}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    return get_json(url)["data"]["result"]


def test_pushed_psi_is_scraped_and_alerted_on(
    services: dict[str, str], home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_ENV, services["pushgateway"])
    now = datetime.now(UTC)
    drifts = [
        FeatureDrift("price", "numeric", 0.31, "ok", 100),
        FeatureDrift("category", "categorical", 0.04, "ok", 90),
    ]
    performance = OnlinePerformance(now, now, 100, 100, 9, 0.09, 0.1, 0.9, 0.72)

    export_metrics(drifts, performance, Decision(True, {"price": 0.31}, "test"), checked_at=now)

    result = wait_until(
        "Prometheus to scrape flywheel_feature_psi",
        lambda: len(found := query(services["prometheus"], "flywheel_feature_psi")) == 2 and found,
    )
    assert {r["metric"]["feature"]: float(r["value"][1]) for r in result} == {"price": 0.31, "category": 0.04}
    assert all(r["metric"]["job"] == "flywheel_drift" for r in result)  # honor_labels kept the pushed job
    assert float(query(services["prometheus"], "flywheel_model_auc")[0]["value"][1]) == 0.72

    # The shipped rules are loaded, and the drift alert fires for the feature over 0.2 only.
    firing = wait_until(
        "FlywheelFeatureDrift to fire",
        lambda: [
            a
            for a in get_json(f"{services['prometheus']}/api/v1/alerts")["data"]["alerts"]
            if a["labels"]["alertname"] == "FlywheelFeatureDrift" and a["state"] == "firing"
        ],
    )
    assert [a["labels"]["feature"] for a in firing] == ["price"]
