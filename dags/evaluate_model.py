"""
### evaluate_model

Judges every new candidate against the model it would replace, on the newest published hours that no
candidate trained on (`FLYWHEEL_EVAL_HELD_OUT_HOURS`, default 6), and blesses or rejects it:

1. `pending_candidates` — the versions still in status `candidate` in `registry.model_versions`, oldest
   first (or the form's `candidate`);
2. `judge` — one mapped task per candidate: both models score the same held-out impressions; AUC, log
   loss and calibration error (overall and per slice: user tenure and activity, item category, price band)
   and the replayed CTR@k / GMV@k get paired bootstrap 95% intervals; the gate passes a check when the
   interval of (candidate - baseline) rules out a loss beyond its margin (`FLYWHEEL_EVAL_*_MARGIN`, Holm
   across slices). Rows go to `registry.evaluations`, the HTML report to
   `<artifacts>/evaluations/<evaluation id>.html` (the task log names it), the verdict to Prometheus
   (`flywheel_evaluation_passed`), and the version becomes `blessed` or `rejected` with every reason;
3. `announce_blessed` — updates the `model_blessed` asset when a candidate passed (skipped otherwise).

The baseline is the champion; before any promotion, the newest blessed version older than the candidate.
The first model is judged on absolute thresholds (`FLYWHEEL_EVAL_MIN_AUC`, `FLYWHEEL_EVAL_MAX_ECE`).
Started by `model_candidate`; trigger with a form to judge one version or pick the baseline.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import Param, dag, task

from flywheel.assets import MODEL_BLESSED, MODEL_CANDIDATE


@dag(
    schedule=[MODEL_CANDIDATE],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["flywheel", "evaluation"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        "candidate": Param(
            None, type=["null", "string"], description="version to judge (default: every unjudged candidate)"
        ),
        "champion": Param(
            None, type=["null", "string"], description="version to judge it against (default: the baseline)"
        ),
    },
    doc_md=__doc__,
)
def evaluate_model():
    @task(pool="warehouse")
    def pending_candidates(params=None):
        from flywheel.evaluation.tasks import pending_candidates

        return pending_candidates(params)

    # One at a time: each holds the warehouse slot, and a candidate blessed first is the next one's baseline.
    @task(pool="warehouse", max_active_tis_per_dagrun=1)
    def judge(version, params=None, run_id=None):
        from flywheel.evaluation.tasks import judge

        return judge(version, params, run_id)

    @task(outlets=[MODEL_BLESSED])
    def announce_blessed(results, outlet_events=None):
        from airflow.exceptions import AirflowSkipException

        from flywheel.evaluation.tasks import announce_blessed

        extra = announce_blessed(list(results))
        if extra is None:
            raise AirflowSkipException("no candidate passed the gate: model_blessed is not updated")
        outlet_events[MODEL_BLESSED].extra = extra
        return extra

    announce_blessed(judge.expand(version=pending_candidates()))


evaluate_model()
