"""A small client for the Airflow REST API (v2) of a local Airflow: health, backfills, runs."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

log = logging.getLogger(__name__)

FINISHED = {"success", "failed"}


class AirflowAPI:
    """Talks to ``base_url`` as ``username``; the token is fetched on first use."""

    def __init__(self, base_url: str, username: str = "admin", password: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._client = httpx.Client(base_url=self.base_url, timeout=30)

    def wait_until_healthy(self, timeout: float = 240, check: Callable[[], None] | None = None) -> None:
        """Wait until the api-server answers and the scheduler reports a recent heartbeat."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if check:
                check()
            try:
                body = self._client.get("/api/v2/monitor/health").json()
                last = str(body)
                if body.get("scheduler", {}).get("status") == "healthy":
                    return
            except (httpx.HTTPError, ValueError) as exc:
                last = repr(exc)
            time.sleep(2)
        raise TimeoutError(f"Airflow at {self.base_url} not healthy after {timeout:.0f}s: {last}")

    def _authorize(self) -> None:
        if "Authorization" in self._client.headers:
            return
        response = self._client.post(
            "/auth/token", json={"username": self.username, "password": self.password}
        )
        response.raise_for_status()
        self._client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        self._authorize()
        response = self._client.request(method, f"/api/v2{path}", **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json()

    def trigger(self, dag_id: str, logical_date: datetime | None = None, conf: dict | None = None) -> str:
        body = {"logical_date": logical_date.isoformat() if logical_date else None, "conf": conf or {}}
        return self.request("POST", f"/dags/{dag_id}/dagRuns", json=body)["dag_run_id"]

    def dag_runs(self, dag_id: str, **filters: Any) -> list[dict[str, Any]]:
        params = {"limit": 100, "order_by": "logical_date", **filters}
        runs: list[dict[str, Any]] = []
        while True:
            page = self.request("GET", f"/dags/{dag_id}/dagRuns", params={**params, "offset": len(runs)})
            runs += page["dag_runs"]
            if not page["dag_runs"] or len(runs) >= page["total_entries"]:
                return runs

    def wait_for_runs(
        self,
        dag_id: str,
        expected: int,
        timeout: float = 1800,
        run_type: str | None = None,
        progress: Callable[[int, int, dict[str, int]], None] | None = None,
        check: Callable[[], None] | None = None,
    ) -> list[dict[str, Any]]:
        """Poll until ``expected`` runs of ``dag_id`` have finished; report progress as it goes."""
        deadline = time.monotonic() + timeout
        filters = {"run_type": run_type} if run_type else {}
        seen = -1
        while time.monotonic() < deadline:
            if check:
                check()
            runs = self.dag_runs(dag_id, **filters)
            states: dict[str, int] = {}
            for run in runs:
                states[run["state"]] = states.get(run["state"], 0) + 1
            done = sum(n for s, n in states.items() if s in FINISHED)
            if progress and done != seen:
                progress(done, expected, states)
                seen = done
            if done >= expected:
                return runs
            time.sleep(3)
        raise TimeoutError(f"{dag_id}: only {seen}/{expected} runs finished after {timeout:.0f}s")

    def emit_asset_event(self, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create an event of asset ``name`` (as an operator would from the UI), starting its consumers."""
        assets = self.request("GET", "/assets", params={"name_pattern": name})["assets"]
        matches = [a for a in assets if a["name"] == name]
        if not matches:
            raise RuntimeError(f"asset {name!r} is not registered: has a DAG that uses it been parsed?")
        return self.request(
            "POST", "/assets/events", json={"asset_id": matches[0]["id"], "extra": extra or {}}
        )

    def task_instances(self, dag_id: str, task_id: str, **filters: Any) -> list[dict[str, Any]]:
        """Instances of ``task_id`` across every run of ``dag_id`` (e.g. ``state="success"``)."""
        params = {"task_id": task_id, "limit": 100, **filters}
        found: list[dict[str, Any]] = []
        while True:
            page = self.request(
                "GET", f"/dags/{dag_id}/dagRuns/~/taskInstances", params={**params, "offset": len(found)}
            )
            found += page["task_instances"]
            if not page["task_instances"] or len(found) >= page["total_entries"]:
                return found

    def task_result(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """What a finished task (of a mapped task: its ``map_index``-th instance) returned, as JSON."""
        entry = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/xcomEntries/return_value",
            params={"map_index": map_index},
        )
        value = entry.get("value")
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def wait_for_task_result(
        self,
        dag_id: str,
        task_id: str,
        done: Callable[[Any], bool],
        *,
        timeout: float = 1800,
        check: Callable[[], None] | None = None,
    ) -> tuple[dict[str, Any], Any]:
        """Poll until a successful ``task_id`` of ``dag_id`` returned a value satisfying ``done``; that task
        instance and its value. Fails early when a run of ``dag_id`` fails.

        The loop is followed through task results, never by listing asset events: Airflow 3.3.2 answers
        500 on ``GET /assets/events`` while a run an event created is still queued (apache/airflow#71360).
        """
        deadline = time.monotonic() + timeout
        seen: set[tuple[str, int]] = set()
        while time.monotonic() < deadline:
            if check:
                check()
            for ti in self.task_instances(dag_id, task_id, state="success"):
                key = (ti["dag_run_id"], ti.get("map_index", -1))
                if key in seen:
                    continue
                seen.add(key)
                value = self.task_result(dag_id, ti["dag_run_id"], task_id, ti.get("map_index", -1))
                if done(value):
                    return ti, value
            failed = self.dag_runs(dag_id, state="failed")
            if failed:
                ids = ", ".join(r["dag_run_id"] for r in failed)
                raise RuntimeError(f"{dag_id} run(s) failed: {ids}; see their task logs in the UI")
            time.sleep(3)
        raise TimeoutError(f"no {dag_id}.{task_id} result matched after {timeout:.0f}s")

    def clear_run(self, dag_id: str, run_id: str) -> None:
        """Clear every task of a run (as the UI's Clear does), so the scheduler runs it again."""
        self.request(
            "POST",
            f"/dags/{dag_id}/clearTaskInstances",
            json={"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True},
        )

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text, one structured entry per line."""
        body = self.request(
            "GET",
            f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"full_content": True, "map_index": map_index},
        )
        lines = []
        for entry in body.get("content", []):
            if isinstance(entry, dict):
                lines.append(" ".join(str(entry.get(k, "")) for k in ("timestamp", "level", "event")))
            else:
                lines.append(str(entry))
        return "\n".join(lines)

    def close(self) -> None:
        self._client.close()
