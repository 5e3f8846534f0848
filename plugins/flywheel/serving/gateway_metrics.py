"""The gateway's own numbers: Prometheus metrics (``/metrics``) and the per-version counts and latencies of
the last minute (``/v1/stats``) that ``deploy_model``'s guards poll during a canary.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

#: The window ``/v1/stats`` reports on (the guards judge the last minute).
WINDOW_SECONDS = 60.0
#: Latency buckets (seconds) around the serving SLO (p99 under 50-100 ms).
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class _Version:
    """One registry version's cumulative counts and its last minute of (time, latency ms, error)."""

    def __init__(self) -> None:
        self.requests = 0
        self.errors = 0
        self.window: deque[tuple[float, float, bool]] = deque()

    def prune(self, now: float) -> None:
        while self.window and self.window[0][0] < now - WINDOW_SECONDS:
            self.window.popleft()


class GatewayMetrics:
    """Request counts and latencies by version, bucket and status, for Prometheus and for ``/v1/stats``.

    Each gateway (app) has a registry of its own, so several in one process (tests) do not collide.
    """

    def __init__(self, pending: Callable[[], float], weight: Callable[[], float]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "flywheel_gateway_requests_total",
            "Ranking requests answered, by model version, bucket and HTTP status",
            ["model_version", "bucket", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "flywheel_gateway_request_latency_seconds",
            "Time to answer a ranking request (features, routing, Triton, logging)",
            ["model_version", "bucket"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.features = Histogram(
            "flywheel_gateway_feature_read_seconds",
            "Time to get a request's online features, from the gateway's cache or from Feast",
            ["source"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        Gauge(
            "flywheel_gateway_predictions_pending",
            "Prediction rows buffered in memory, not yet written to the landing zone",
            registry=self.registry,
        ).set_function(pending)
        Gauge(
            "flywheel_gateway_canary_weight",
            "The share of users the gateway routes to the canary (0 without one)",
            registry=self.registry,
        ).set_function(weight)
        self._versions: dict[str, _Version] = {}
        self._lock = threading.Lock()
        self.started = time.time()

    def observe(self, version: str, bucket: str, status: int, seconds: float) -> None:
        """Count one answered request; requests a version served (or failed) count toward its stats."""
        self.requests.labels(model_version=version, bucket=bucket, status=str(status)).inc()
        if version == "none":
            return  # refused before any model was chosen
        self.latency.labels(model_version=version, bucket=bucket).observe(seconds)
        now = time.monotonic()
        error = status >= 500
        with self._lock:
            entry = self._versions.setdefault(version, _Version())
            entry.requests += 1
            entry.errors += error
            entry.window.append((now, seconds * 1000.0, error))
            entry.prune(now)

    def stats(self) -> dict[str, Any]:
        """``/v1/stats``: per version, cumulative requests and errors (5xx), and over the last minute
        requests, errors and the p50/p99 latency in milliseconds (null without requests)."""
        now = time.monotonic()
        versions = {}
        with self._lock:
            for version, entry in self._versions.items():
                entry.prune(now)
                latencies = np.fromiter(
                    (w[1] for w in entry.window), dtype=np.float64, count=len(entry.window)
                )
                p50, p99 = np.percentile(latencies, [50, 99]).tolist() if latencies.size else (None, None)
                versions[version] = {
                    "requests": entry.requests,
                    "errors": entry.errors,
                    "window_seconds": WINDOW_SECONDS,
                    "window_requests": len(entry.window),
                    "window_errors": sum(1 for w in entry.window if w[2]),
                    "p50_ms": p50,
                    "p99_ms": p99,
                }
        return {"window_seconds": WINDOW_SECONDS, "started_at": self.started, "versions": versions}

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST
