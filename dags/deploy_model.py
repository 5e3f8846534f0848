"""
### deploy_model

Rolls a blessed model out to the serving gateway through Triton, step by step, and rolls it back by itself:

1. `plan` — the version to deploy: the form's `version`, else the newest still `blessed` in the registry
   (older blessed ones are archived as superseded); skips the rest when there is none;
2. `export_and_load` — exports the version into Triton's model repository (`config.pbtxt`, the python backend
   running its TorchScript) and loads it beside the champion;
3. `smoke_test` — Triton's scores on fixed inputs must equal the PyTorch model's to 1e-5;
4. `canary` — routes `FLYWHEEL_CANARY_STEPS` (default 5, 10, 25, 50, 100 %) of users by a stable hash of the
   user id; each step waits in the triggerer (no worker slot) for `FLYWHEEL_CANARY_MIN_REQUESTS` requests
   and `FLYWHEEL_CANARY_MIN_SECONDS`, while the gateway's error rate and p99 latency are checked every 2 s:
   a breach rolls back at once. At the end of a step the DID estimate of the canary's CTR effect (served
   predictions joined with the clicks they earned, against the minutes before the rollout) must rule out a
   loss beyond `FLYWHEEL_CANARY_CTR_MARGIN`. Rollback: weight 0, version unloaded, registry `rolled_back`, a
   metric, and this task fails saying why. After 100 %: the version becomes champion, the old one is
   archived and unloaded, and `model_deployed` is emitted. The first model ever goes to 100 % after its
   smoke test.

Started by `model_blessed`; trigger with a form to deploy one version. Needs Triton (`flywheel triton start`)
and the gateway (`flywheel serve`) running: see docs/serving.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from flywheel.assets import MODEL_BLESSED, MODEL_DEPLOYED
from flywheel.serving.operators import CanaryRolloutOperator


@dag(
    schedule=[MODEL_BLESSED],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["flywheel", "serving"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=30)},
    params={
        "version": Param(
            None,
            type=["null", "string"],
            description="blessed version to deploy (default: newest blessed)",
        ),
    },
    doc_md=__doc__,
)
def deploy_model():
    @task(pool="warehouse")
    def plan(params=None, run_id=None):
        from flywheel.serving.tasks import pending_deployment

        return pending_deployment(params, run_id)

    @task
    def export_and_load(plan):
        from airflow.exceptions import AirflowSkipException

        from flywheel.serving.tasks import export_and_load

        if not plan:
            raise AirflowSkipException("nothing to deploy: no blessed version")
        return export_and_load(plan)

    @task
    def smoke_test(plan):
        from flywheel.serving.tasks import smoke_test

        return smoke_test(plan)

    canary = CanaryRolloutOperator(
        task_id="canary", plan_task_id="smoke_test", pool="warehouse", outlets=[MODEL_DEPLOYED]
    )
    smoke_test(export_and_load(plan())) >> canary


deploy_model()
