"""A failed gate takes its hours out of publication: training sets do not read them until a rerun passes
every gate and publishes them again (drift windows: test_drift_rule_on_simulated_worlds.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from airflow.sdk.exceptions import AirflowFailException
from gate_world import GATED, GATED_END, T0, RawWorld, set_values

from flywheel.features.tasks import gate_raw_hours
from flywheel.ingest.load import load_events
from flywheel.training.tasks import published_rows
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.published import publish_hours, published_hours

HOUR = {"start": GATED.isoformat(), "end": GATED_END.isoformat()}


def test_a_failed_gate_withdraws_its_hour_from_training_and_drift(raw_world: RawWorld) -> None:
    settings = raw_world.settings
    wh = open_warehouse(settings.warehouse_url)
    publish_hours(wh, T0, GATED_END, "earlier-run")  # the hour was published once, before a bad re-delivery
    impressions = raw_world.landed("impressions")
    raw_world.reland(set_values(impressions, "user_id", range(12), None))
    load_events(GATED, GATED_END, settings=settings, run_id="redelivery")

    with pytest.raises(AirflowFailException):
        gate_raw_hours(HOUR, "rerun-1", settings=settings)

    assert GATED not in published_hours(wh, T0, GATED_END)
    assert published_hours(wh, T0, GATED)  # the hours before it stay published
    frame = pd.DataFrame({"event_ts": [GATED, GATED - pd.Timedelta(hours=1)], "label": [1, 0]})
    assert list(published_rows(frame, T0, GATED_END, settings)["event_ts"]) == [GATED - pd.Timedelta(hours=1)]

    # Repaired and rerun: the gate passes, and publishing puts the hour back.
    raw_world.reland(impressions)
    load_events(GATED, GATED_END, settings=settings, run_id="repair")
    gate_raw_hours(HOUR, "rerun-2", settings=settings)
    assert GATED not in published_hours(wh, T0, GATED_END)  # not until publish_features has run
    publish_hours(wh, GATED, GATED_END, "rerun-2")  # what publish_features records after Feast
    assert GATED in published_hours(wh, T0, GATED_END)
