"""The official client's answers as the REST API's JSON: what the demo and the tests read from them."""

from __future__ import annotations

import pytest
from airflow_client import client as af

from flywheel.local.api import AirflowAPI, _json


def test_an_unfinished_run_keeps_its_null_end_date_and_iso_timestamps() -> None:
    # The client's own to_dict() leaves an unset nullable field out: `run["end_date"]` would raise.
    run = af.DAGRunResponse.from_dict(
        {
            "dag_run_id": "manual__1",
            "dag_id": "train_model",
            "dag_display_name": "train_model",
            "run_after": "2026-01-01T00:00:00Z",
            "run_type": "manual",
            "state": "running",
            "start_date": "2026-01-01T00:00:05Z",
            "end_date": None,
            "logical_date": None,
            "triggered_by": "rest_api",
            "conf": {"window_hours": 24},
            "dag_versions": [],
            "bundle_version": None,
            "note": None,
            "queued_at": None,
            "data_interval_start": None,
            "data_interval_end": None,
            "last_scheduling_decision": None,
            "run_id": "manual__1",
        }
    )
    as_json = _json(run)
    assert as_json["end_date"] is None and as_json["state"] == "running"
    assert as_json["start_date"].startswith("2026-01-01T00:00:05")
    assert as_json["conf"] == {"window_hours": 24}


def test_an_airflow_that_does_not_answer_is_named() -> None:
    from flywheel.local.processes import free_port

    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(RuntimeError, match=f"cannot reach Airflow at {url} to log in"):
        AirflowAPI(url, password="admin").trigger("train_model")
