"""A local Airflow's REST API (v2) through Airflow's official Python client (``apache-airflow-client``,
versioned with Airflow): health, runs, task results, asset events. Answers come back as the API's JSON
(plain dicts, timestamps as ISO strings), so callers read them as the REST documentation shows them."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import httpx
from airflow_client import client as af
from airflow_client.client.exceptions import ApiException

log = logging.getLogger(__name__)

FINISHED = {"success", "failed"}
#: Rows per page of a listing (Airflow's own maximum is 100 by default).
PAGE = 100


def _json(model: Any) -> dict[str, Any]:
    # The client's to_dict() drops unset nullable fields (an unfinished run has no "end_date" key at all);
    # the API's JSON keeps them as null.
    return model.model_dump(mode="json", by_alias=True)


@contextmanager
def _answer(what: str) -> Iterator[None]:
    """An error answer of the API as a RuntimeError that says what was asked and what Airflow said."""
    try:
        yield
    except ApiException as exc:
        raise RuntimeError(f"{what} -> {exc.status}: {exc.body}") from exc


class AirflowAPI:
    """Talks to ``base_url`` as ``username``; the token is fetched on first use."""

    def __init__(self, base_url: str, username: str = "admin", password: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.username = username
        self.password = password
        self._api: af.ApiClient | None = None

    @property
    def api(self) -> af.ApiClient:
        """The official client, logged in (SimpleAuthManager's token endpoint is not part of it)."""
        if self._api is None:
            try:
                response = httpx.post(
                    f"{self.base_url}/auth/token",
                    json={"username": self.username, "password": self.password},
                    timeout=30,
                )
            except httpx.HTTPError as exc:
                raise RuntimeError(f"cannot reach Airflow at {self.base_url} to log in: {exc}") from exc
            if response.status_code >= 400:
                raise RuntimeError(f"logging in to {self.base_url} as {self.username}: {response.text}")
            config = af.Configuration(host=self.base_url, access_token=response.json()["access_token"])
            self._api = af.ApiClient(config)
        return self._api

    def wait_until_healthy(self, timeout: float = 240, check: Callable[[], None] | None = None) -> None:
        """Wait until the api-server answers and the scheduler reports a recent heartbeat (no login)."""
        monitor = af.MonitorApi(af.ApiClient(af.Configuration(host=self.base_url, retries=0)))
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if check:
                check()
            try:
                health = monitor.get_health(_request_timeout=10)
                last = str(health)
                if health.scheduler.status == "healthy":
                    return
            except Exception as exc:  # noqa: BLE001 - not answering yet (refused, reset, 5xx): keep polling
                last = repr(exc)
            time.sleep(2)
        raise TimeoutError(f"Airflow at {self.base_url} not healthy after {timeout:.0f}s: {last}")

    def trigger(self, dag_id: str, logical_date: datetime | None = None, conf: dict | None = None) -> str:
        body = af.TriggerDAGRunPostBody(logical_date=logical_date, conf=conf or {})
        with _answer(f"triggering {dag_id}"):
            return af.DagRunApi(self.api).trigger_dag_run(dag_id, body).dag_run_id

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        with _answer(f"run {run_id} of {dag_id}"):
            return _json(af.DagRunApi(self.api).get_dag_run(dag_id, run_id))

    def dag_runs(
        self,
        dag_id: str,
        run_type: str | None = None,
        state: str | None = None,
        order_by: str = "logical_date",
    ) -> list[dict[str, Any]]:
        """Every run of ``dag_id`` (by ``order_by``), optionally of one run type or state."""
        runs: list[dict[str, Any]] = []
        while True:
            with _answer(f"runs of {dag_id}"):
                page = af.DagRunApi(self.api).get_dag_runs(
                    dag_id,
                    limit=PAGE,
                    offset=len(runs),
                    order_by=[order_by],
                    run_type=[run_type] if run_type else None,
                    state=[state] if state else None,
                )
            runs += [_json(run) for run in page.dag_runs]
            if not page.dag_runs or len(runs) >= page.total_entries:
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
        seen = -1
        while time.monotonic() < deadline:
            if check:
                check()
            runs = self.dag_runs(dag_id, run_type=run_type)
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

    def dags(self) -> list[dict[str, Any]]:
        """The DAGs Airflow has parsed (none until the dag-processor has read the folder)."""
        with _answer("the DAGs"):
            return [_json(d) for d in af.DAGApi(self.api).get_dags(limit=PAGE).dags]

    def import_errors(self) -> list[dict[str, Any]]:
        """DAG files that failed to import: ``filename`` and the ``stack_trace`` Airflow recorded."""
        with _answer("the DAG import errors"):
            page = af.ImportErrorApi(self.api).get_import_errors(limit=PAGE)
        return [_json(e) for e in page.import_errors]

    def assets(self, name: str) -> list[dict[str, Any]]:
        """The registered assets whose name contains ``name`` (none until a DAG that uses one is parsed)."""
        with _answer(f"assets named like {name}"):
            return [_json(a) for a in af.AssetApi(self.api).get_assets(name_pattern=name, limit=PAGE).assets]

    def emit_asset_event(self, name: str, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """Create an event of asset ``name`` (as an operator would from the UI), starting its consumers."""
        matches = [a for a in self.assets(name) if a["name"] == name]
        if not matches:
            raise RuntimeError(f"asset {name!r} is not registered: has a DAG that uses it been parsed?")
        body = af.CreateAssetEventsBody(asset_id=matches[0]["id"], extra=extra or {})
        with _answer(f"an event of asset {name}"):
            return _json(af.AssetApi(self.api).create_asset_event(body))

    def task_instance(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> dict[str, Any]:
        """One task instance of a run (of a mapped task: its ``map_index``-th)."""
        instances = af.TaskInstanceApi(self.api)
        with _answer(f"{dag_id}.{task_id} in run {run_id}"):
            if map_index >= 0:
                return _json(instances.get_mapped_task_instance(dag_id, run_id, task_id, map_index))
            return _json(instances.get_task_instance(dag_id, run_id, task_id))

    def task_instances(
        self, dag_id: str, task_id: str | None = None, run_id: str = "~", state: str | None = None
    ) -> list[dict[str, Any]]:
        """Instances of ``task_id`` (every task when None) in run ``run_id`` (``~``: every run)."""
        found: list[dict[str, Any]] = []
        while True:
            with _answer(f"task instances of {dag_id}"):
                page = af.TaskInstanceApi(self.api).get_task_instances(
                    dag_id,
                    run_id,
                    task_id=task_id,
                    state=[state] if state else None,
                    limit=PAGE,
                    offset=len(found),
                )
            found += [_json(ti) for ti in page.task_instances]
            if not page.task_instances or len(found) >= page.total_entries:
                return found

    def task_result(self, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> Any:
        """What a finished task (of a mapped task: its ``map_index``-th instance) returned, as JSON."""
        with _answer(f"the result of {dag_id}.{task_id} in run {run_id}"):
            entry = af.XComApi(self.api).get_xcom_entry(
                dag_id, task_id, run_id, "return_value", map_index=map_index
            )
        value = getattr(entry.actual_instance, "value", None)
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
        body = af.ClearTaskInstancesBody(
            dry_run=False, dag_run_id=run_id, only_failed=False, reset_dag_runs=True
        )
        with _answer(f"clearing run {run_id} of {dag_id}"):
            af.TaskInstanceApi(self.api).post_clear_task_instances(dag_id, body)

    def task_log(
        self, dag_id: str, run_id: str, task_id: str, try_number: int = 1, map_index: int = -1
    ) -> str:
        """The task's log as text, one structured entry per line."""
        with _answer(f"the log of {dag_id}.{task_id} in run {run_id}"):
            body = af.TaskInstanceApi(self.api).get_log(
                dag_id, run_id, task_id, try_number, full_content=True, map_index=map_index
            )
        lines = []
        for entry in body.content.actual_instance or []:  # structured entries, or plain lines
            if isinstance(entry, str):
                lines.append(entry)
            else:
                fields = entry.to_dict()  # the level and the rest are additional properties
                lines.append(" ".join(str(fields.get(k) or "") for k in ("timestamp", "level", "event")))
        return "\n".join(lines)

    def close(self) -> None:
        if self._api is not None:
            self._api.rest_client.pool_manager.clear()  # the client has no close of its own
            self._api = None
