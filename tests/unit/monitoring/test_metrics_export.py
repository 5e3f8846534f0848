"""export_metrics writes the node-exporter textfile and pushes the same metrics to a Pushgateway."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prometheus_client.parser import text_string_to_metric_families

from flywheel.config import Settings
from flywheel.monitoring import Decision, FeatureDrift, OnlinePerformance, export_metrics
from flywheel.monitoring.metrics import PUSHGATEWAY_ENV

CHECKED = datetime(2026, 1, 1, 12, tzinfo=UTC)
DRIFTS = [
    FeatureDrift("price", "numeric", 0.31, "ok", 100),
    FeatureDrift("category", "categorical", 0.04, "ok", 100),
    FeatureDrift("position", "numeric", None, "no_data", 0),
]
PERFORMANCE = OnlinePerformance(CHECKED, CHECKED, 10, 10, 1, 0.1, 0.125, 0.8, 0.71)


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_textfile_holds_every_metric(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PUSHGATEWAY_ENV, raising=False)
    path = export_metrics(DRIFTS, PERFORMANCE, Decision(True, {"price": 0.31}, "why"), checked_at=CHECKED)

    assert path == home.home / "metrics" / "flywheel.prom"
    assert samples(path.read_text()) == {
        ("flywheel_feature_psi", (("feature", "price"),)): 0.31,
        ("flywheel_feature_psi", (("feature", "category"),)): 0.04,  # position had no data: left out
        ("flywheel_model_auc", ()): 0.71,
        ("flywheel_ctr_ratio", ()): 0.8,
        ("flywheel_drift_check_timestamp_seconds", ()): CHECKED.timestamp(),
        ("flywheel_drift_decision", ()): 1.0,
    }
    assert not list(path.parent.glob("*.tmp*"))  # written aside and renamed


def test_unknown_values_are_left_out_not_zero(home: Settings) -> None:
    no_predictions = OnlinePerformance(CHECKED, CHECKED, 0, 0, 0, None, None, None, None)
    path = export_metrics([], no_predictions, Decision(False), checked_at=CHECKED)
    names = {name for name, _ in samples(path.read_text())}
    assert names == {"flywheel_drift_check_timestamp_seconds", "flywheel_drift_decision"}


class _Pushgateway(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_PUT(self) -> None:  # noqa: N802 - the http.server naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.received.append(("PUT", self.path, body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pushgateway() -> Iterator[str]:
    _Pushgateway.received = []
    server = HTTPServer(("127.0.0.1", 0), _Pushgateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_pushes_the_same_metrics_when_the_gateway_is_configured(
    home: Settings, pushgateway: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_ENV, pushgateway)
    path = export_metrics(DRIFTS, PERFORMANCE, Decision(False), checked_at=CHECKED)

    ((method, url, body),) = _Pushgateway.received
    assert (method, url) == ("PUT", "/metrics/job/flywheel_drift")  # PUT: the group is replaced whole
    assert samples(body.decode()) == samples(path.read_text())


def test_an_unreachable_gateway_fails_loudly_after_writing_the_textfile(
    home: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUSHGATEWAY_ENV, "http://127.0.0.1:9")
    with pytest.raises(RuntimeError, match="could not push metrics to the Pushgateway at http://127.0.0.1:9"):
        export_metrics(DRIFTS, checked_at=CHECKED)
    assert (home.home / "metrics" / "flywheel.prom").exists()
