"""
### detect_drift

Compares the newest hour of features with the training window of the model in service, in the warehouse
(`sql/monitoring/*.sql`):

1. `profile_reference` — the model in service (`flywheel.registry`); the first run that sees a new one
   profiles its training window of `marts.training_examples` (into `monitoring.reference_profiles`);
2. `check_window` — PSI per feature into `monitoring.feature_drift`, online CTR/AUC into
   `monitoring.online_performance`, Prometheus metrics (`flywheel_feature_psi`, `flywheel_model_auc`, ...);
3. `should_retrain` — the rule, on the model in service's windows only: PSI >= {rule.psi_threshold:g} in
   the latest window, or >= {rule.sustained_threshold:g} in each of the last {rule.sustained_windows} hours
   (a missing hour breaks the run), debounced (no request while `train_model` is queued or running, nor
   within {rule.cooldown_hours:g} hours after the last request);
4. `request_retrain` — updates the `retrain_requested` asset with the drifting features, which starts
   `train_model`.

Runs hourly and whenever `build_features` publishes. Thresholds: `FLYWHEEL_DRIFT_*` (docs/monitoring.md);
the numbers above are this deployment's, filled in from them when the file is parsed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import AssetOrTimeSchedule, CronDataIntervalTimetable, Param, dag, task

from flywheel.assets import FEATURES, RETRAIN_REQUESTED
from flywheel.config import get_settings

#: FLYWHEEL_DRIFT_* as the tasks will read them, for the doc; a malformed value is an import error naming it.
DRIFT_RULE = get_settings().drift


@dag(
    schedule=AssetOrTimeSchedule(
        timetable=CronDataIntervalTimetable("0 * * * *", timezone="UTC"), assets=[FEATURES]
    ),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["flywheel", "monitoring"],
    default_args={"retries": 2, "retry_delay": timedelta(minutes=1)},
    params={"window_end": Param(None, type=["null", "string"], description="ISO end of the hour to check")},
    doc_md=__doc__.format(rule=DRIFT_RULE),
)
def detect_drift():
    @task(pool="warehouse")
    def profile_reference():
        from flywheel.monitoring.tasks import profile_reference

        return profile_reference()

    @task(pool="warehouse")
    def check_window(reference, triggering_asset_events=None, data_interval_end=None, params=None):
        from flywheel.monitoring.tasks import check_window

        events = triggering_asset_events[FEATURES] if triggering_asset_events else []
        return check_window(reference, events, data_interval_end, params)

    @task.short_circuit(pool="warehouse")
    def should_retrain(summary, ti=None):
        from flywheel.monitoring.tasks import should_retrain

        active = ti.get_dr_count(dag_id="train_model", states=["queued", "running"])
        return should_retrain(summary, active)

    @task(pool="warehouse", outlets=[RETRAIN_REQUESTED])
    def request_retrain(summary, run_id=None, outlet_events=None):
        from flywheel.monitoring.tasks import request_retrain

        requested = request_retrain(summary, run_id)
        outlet_events[RETRAIN_REQUESTED].extra = requested
        return requested

    summary = check_window(profile_reference())
    should_retrain(summary) >> request_retrain(summary)


detect_drift()
