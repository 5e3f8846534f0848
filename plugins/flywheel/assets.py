"""Every asset of the loop, defined once: DAGs import them to declare what they produce and consume."""

from __future__ import annotations

from airflow.sdk import Asset

# The "x-" scheme marks project-private URIs, which Airflow leaves unnormalised.
RAW_EVENTS = Asset(name="raw_events", uri="x-flywheel://warehouse/raw/events", group="flywheel")
FEATURES = Asset(name="features", uri="x-flywheel://warehouse/marts/features", group="flywheel")
RETRAIN_REQUESTED = Asset(name="retrain_requested", uri="x-flywheel://monitoring/retrain", group="flywheel")
MODEL_CANDIDATE = Asset(name="model_candidate", uri="x-flywheel://registry/candidate", group="flywheel")
MODEL_BLESSED = Asset(name="model_blessed", uri="x-flywheel://registry/blessed", group="flywheel")
MODEL_DEPLOYED = Asset(name="model_deployed", uri="x-flywheel://serving/deployed", group="flywheel")
