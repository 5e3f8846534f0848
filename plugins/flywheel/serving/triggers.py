"""The canary step's wait, run by Airflow's triggerer: it holds no worker slot while traffic accumulates.

:class:`CanaryStepTrigger` polls the gateway's ``/v1/stats`` every few seconds and fires once:
``breach`` (a guard broke: the task rolls back at once, without waiting for the step to end), ``ready``
(the step has its minimum of canary requests and time: the task judges it), or ``timeout`` (the step's
time is up: judged one last time). It imports nothing heavy: the triggerer runs every deferred task's
trigger in one process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from flywheel.serving.canary import GuardLimits, guard_breach, requests_served


class CanaryStepTrigger(BaseTrigger):
    """Wait for a canary step of ``version`` to be judged; see the module docstring for the events."""

    def __init__(
        self,
        gateway_url: str,
        version: str,
        *,
        champion: str | None = None,
        baseline_requests: int,
        min_requests: int,
        ready_at: float,
        deadline: float,
        max_error_rate: float,
        p99_ms: float,
        poll_seconds: float = 2.0,
    ) -> None:
        super().__init__()
        self.gateway_url = gateway_url.rstrip("/")
        self.version = version
        self.champion = champion
        self.baseline_requests = baseline_requests
        self.min_requests = min_requests
        self.ready_at = ready_at
        self.deadline = deadline
        self.max_error_rate = max_error_rate
        self.p99_ms = p99_ms
        self.poll_seconds = poll_seconds

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "gateway_url": self.gateway_url,
                "version": self.version,
                "champion": self.champion,
                "baseline_requests": self.baseline_requests,
                "min_requests": self.min_requests,
                "ready_at": self.ready_at,
                "deadline": self.deadline,
                "max_error_rate": self.max_error_rate,
                "p99_ms": self.p99_ms,
                "poll_seconds": self.poll_seconds,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        import httpx

        limits = GuardLimits(max_error_rate=self.max_error_rate, p99_ms=self.p99_ms)
        last_error = None
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                now = time.time()
                stats = None
                try:
                    answer = await client.get(f"{self.gateway_url}/v1/stats")
                    answer.raise_for_status()
                    stats = answer.json()
                except (httpx.HTTPError, ValueError) as exc:
                    # The gateway down hurts champion and canary alike: no reason to roll back; the
                    # step's deadline still ends the wait.
                    last_error = f"{type(exc).__name__}: {exc}"
                    self.log.warning("gateway stats at %s not readable: %s", self.gateway_url, last_error)
                if stats is not None:
                    breach = guard_breach(stats, self.version, limits)
                    served = requests_served(stats, self.version) - self.baseline_requests
                    if breach:
                        yield TriggerEvent(
                            {"status": "breach", "reason": breach, "at": now, "canary_requests": served}
                        )
                        return
                    if served >= self.min_requests and now >= self.ready_at:
                        yield TriggerEvent({"status": "ready", "at": now, "canary_requests": served})
                        return
                if now >= self.deadline:
                    yield TriggerEvent(
                        {
                            "status": "timeout",
                            "at": now,
                            "canary_requests": None if stats is None else served,
                            "gateway_error": last_error if stats is None else None,
                        }
                    )
                    return
                await asyncio.sleep(self.poll_seconds)
