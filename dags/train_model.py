"""
### train_model

Trains a click-through model on the point-in-time training set of a window and registers it as a
candidate in `registry.model_versions`:

1. `build_training_set` — Feast's training set (feature service `ctr_model_v1`) for the window, snapshotted
   to Parquet under a content-hash data version;
2. `train` or `train_on_kubernetes` — a Ray Tune search (ASHA + TPE) over a PyTorch DCN, as a local
   subprocess (default) or as a pod on a GPU node (`backend = kubernetes`); a retry resumes the search;
3. `register_candidate` — the best model's TorchScript, feature spec and metadata; updates `model_candidate`.

With `warm_start` (form; default `FLYWHEEL_TRAIN_WARM_START`, what drift-triggered runs use) the search
fine-tunes the model in service when its feature spec fits the new set, in a space narrowed around its
hyperparameters; otherwise, or with nothing in service, it searches cold and its log says why.

The window ends where the evaluation's held-out hours begin (the newest `FLYWHEEL_EVAL_HELD_OUT_HOURS`
published hours), so `evaluate_model` judges every candidate on hours it never saw.

Started by the `retrain_requested` asset (drift) or weekly, Monday 03:00 UTC (`FLYWHEEL_TRAIN_CRON`).
Trigger with a form to change the budget, epochs, window, warm start or backend.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, Param, dag, task

from flywheel.assets import MODEL_CANDIDATE, RETRAIN_REQUESTED
from flywheel.config import get_settings

#: FLYWHEEL_TRAIN_* (schedule and form defaults); a malformed value is an import error that names it.
TRAINING = get_settings().training
#: The periodic retrain besides drift; FLYWHEEL_TRAIN_CRON="" leaves drift (the asset) as the only trigger.
TRAIN_CRON = TRAINING.cron


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronTriggerTimetable(TRAIN_CRON, timezone="UTC"), assets=[RETRAIN_REQUESTED]
    )
    if TRAIN_CRON
    else [RETRAIN_REQUESTED],
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["flywheel", "training"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={
        # Scheduled runs use these defaults; a deployment sets its own through the environment.
        "budget": Param(
            TRAINING.budget,
            type="integer",
            minimum=1,
            maximum=200,
            description="trials in the search",
        ),
        "max_epochs": Param(
            TRAINING.max_epochs,
            type="integer",
            minimum=1,
            maximum=100,
            description="epochs per trial at most",
        ),
        "window_hours": Param(
            48, type="integer", minimum=1, description="hours of impressions to learn from"
        ),
        "window_end": Param(
            None,
            type=["null", "string"],
            description="ISO end of the window (default: data; never past the held-out hours)",
        ),
        "warm_start": Param(
            TRAINING.warm_start,
            type="boolean",
            description="fine-tune the model in service when its feature spec fits (else a cold search)",
        ),
        "backend": Param("local", enum=["local", "kubernetes"], description="where the search runs"),
        "seed": Param(0, type="integer"),
    },
    doc_md=__doc__,
)
def train_model():
    @task(pool="warehouse")
    def build_training_set(triggering_asset_events=None, params=None, run_id=None):
        from flywheel.training.tasks import build_training_set

        events = triggering_asset_events[RETRAIN_REQUESTED] if triggering_asset_events else []
        return build_training_set(events, params, run_id)

    @task.branch
    def choose_backend(params=None):
        from flywheel.training.tasks import choose_backend

        return choose_backend(params)

    @task
    def train(prepared, params=None):
        import logging

        from flywheel.training.tasks import train

        return train(prepared, params, logging.getLogger("airflow.task"))

    @task(pool="warehouse", outlets=[MODEL_CANDIDATE], trigger_rule="none_failed_min_one_success")
    def register_candidate(prepared, run_id=None, outlet_events=None):
        from flywheel.training.tasks import register_candidate

        registered = register_candidate(prepared, run_id)
        outlet_events[MODEL_CANDIDATE].extra = registered
        return registered

    @task
    def train_on_kubernetes(prepared, params=None, **context):
        # The pod operator is built and run inside the task: importing the Kubernetes provider at parse
        # time costs 1.4 s per parse of this file (benchmarks/dag_parse.py).
        from flywheel.training.tasks import train_on_kubernetes

        return train_on_kubernetes(prepared, params, context)

    prepared = build_training_set()
    local = train(prepared)
    kubernetes = train_on_kubernetes(prepared)
    choose_backend() >> [local, kubernetes]
    [local, kubernetes] >> register_candidate(prepared)


train_model()
