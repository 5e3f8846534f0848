"""Asset-triggered runs survive Airflow 3.3.2's asset-event bug (apache/airflow#71360): with the real
scheduler, a run whose task fails once and retries while the next event waits completes, and a run that
failed for good completes after the operator clears it through the API, each still seeing the event that
started it."""

from __future__ import annotations

from pathlib import Path

import pytest

from flywheel.config import Settings
from flywheel.local.processes import AirflowProcesses, admin_api, airflow_cli

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

DAGS = Path(__file__).parent / "asset_dags"


def _run_states(api) -> list[tuple[str, str]]:
    return [(r["dag_run_id"], r["state"]) for r in api.dag_runs("consume_signal", order_by="run_after")]


def test_asset_triggered_runs_complete_after_a_retry_and_after_a_clear(home: Settings) -> None:
    blocker, proceed = home.home / "blocker", home.home / "proceed"
    blocker.write_text("the cause an operator must fix")
    with AirflowProcesses(
        home, dags_folder=DAGS, setup=lambda env: airflow_cli(["dags", "unpause", "consume_signal"], env)
    ) as procs:
        api = admin_api(procs)
        procs.wait_for(
            lambda: api.assets("flywheel_test_signal"),
            "the signal asset to be registered",
        )
        api.emit_asset_event("flywheel_test_signal", {"plan": "retry", "proceed": str(proceed)})
        # The first run's task has failed once; a second event arrives while it retries (Airflow holds it in
        # the asset queue until the run finishes, then creates a run that starts queued).
        procs.wait_for(
            lambda: [
                t for t in api.task_instances("consume_signal", "consume") if (t["try_number"] or 0) >= 2
            ],
            "the first run's retry",
        )
        api.emit_asset_event("flywheel_test_signal", {"plan": "fail", "blocker": str(blocker)})
        proceed.write_text("go")
        runs = procs.wait_for(
            lambda: (
                (states := _run_states(api)) and [s for _, s in states] == ["success", "failed"] and states
            ),
            "the retried run to succeed and the blocked run to fail",
        )
        first, second = runs[0][0], runs[1][0]
        retried = api.task_result("consume_signal", first, "consume")

        blocker.unlink()  # the operator repairs the cause, then clears the failed run in the UI
        api.clear_run("consume_signal", second)
        procs.wait_for(lambda: dict(_run_states(api)).get(second) == "success", "the cleared run to succeed")
        cleared = api.task_result("consume_signal", second, "consume")
        run_types = {r["dag_run_id"]: r["run_type"] for r in api.dag_runs("consume_signal")}
        api.close()

    assert run_types == {first: "asset_triggered", second: "asset_triggered"}
    # Each run saw exactly the event that started it (Airflow adds from_rest_api to operator events).
    assert [e["plan"] for e in retried["extras"]] == ["retry"] and retried["try_number"] == 2
    assert [(e["plan"], e["blocker"]) for e in cleared["extras"]] == [("fail", str(blocker))]
    assert cleared["try_number"] >= 2  # the cleared run ran again, and saw the event that started it
