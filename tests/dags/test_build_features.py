"""``build_features``: gates around one task per dbt model, in the dbt DAG's order."""

from __future__ import annotations

from datetime import datetime, timedelta
from types import SimpleNamespace

import pytest

from flywheel.features.dbt_group import load_models
from flywheel.features.tasks import resolve_interval


@pytest.fixture(scope="module")
def dag():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder="dags/build_features.py")
    assert bag.import_errors == {}
    return bag.dags["build_features"]


def test_every_dbt_model_is_a_task_in_dependency_order(dag) -> None:
    models = load_models()
    names = {m["name"] for m in models.values()}
    assert {"stg_events__impressions", "user_features", "item_features", "training_examples"} <= names
    for model in models.values():
        task = dag.get_task(f"dbt_models.{model['name']}")
        assert task.pool == "warehouse" and task.retries >= 2
        upstream = {t.split(".", 1)[1] for t in task.upstream_task_ids if t.startswith("dbt_models.")}
        assert upstream == {models[p]["name"] for p in model["parents"] if p in models}


def test_gates_bracket_the_models_and_publish_comes_last(dag) -> None:
    roots = [
        t
        for t in dag.tasks
        if t.task_id.startswith("dbt_models.") and not t.upstream_task_ids - {"gate_raw_events"}
    ]
    assert roots and all("gate_raw_events" in t.upstream_task_ids for t in roots)
    gate = dag.get_task("gate_feature_marts")
    assert "dbt_models.training_examples" in gate.upstream_task_ids
    publish = dag.get_task("publish_features")
    assert publish.upstream_task_ids == {"gate_feature_marts"}
    assert [o.name for o in publish.outlets] == ["features"]


def _event(start: str, end: str, timestamp: datetime | None = None) -> SimpleNamespace:
    return SimpleNamespace(extra={"interval_start": start, "interval_end": end}, timestamp=timestamp)


def _span(interval: dict | None) -> tuple[str, str] | None:
    return (interval["start"], interval["end"]) if interval else None


def test_interval_is_the_span_of_the_triggering_events() -> None:
    events = [
        _event("2026-01-01T03:00:00", "2026-01-01T04:00:00"),
        _event("2026-01-01T01:00:00", "2026-01-01T02:00:00"),
    ]
    assert _span(resolve_interval(events)) == ("2026-01-01T01:00:00", "2026-01-01T04:00:00")


def test_manual_params_win_and_are_normalised_to_utc() -> None:
    params = {"interval_start": "2026-01-01T06:00:00+01:00", "interval_end": "2026-01-01T07:00:00+01:00"}
    assert _span(resolve_interval([], params)) == ("2026-01-01T05:00:00", "2026-01-01T06:00:00")


@pytest.mark.parametrize(
    "events, params, message",
    [
        ([], {}, "needs an interval"),
        ([], {"interval_start": "2026-01-01T06:00", "interval_end": "2026-01-01T06:00"}, "empty interval"),
    ],
)
def test_missing_or_empty_interval_is_refused(events, params, message) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_interval(events, params)


def test_a_run_covers_every_hour_loaded_since_the_last_publication(home) -> None:
    # Airflow hands a deferred asset-triggered run only the first queued event: the loaded data and the
    # last publication, not the events alone, decide what the run owns.
    import pyarrow as pa

    from flywheel.features.tasks import record_publication
    from flywheel.warehouse import open_warehouse

    base = datetime(2026, 1, 1)
    ts = [base + timedelta(hours=h, minutes=30) for h in range(6)]
    data = pa.table({"impression_id": [str(i) for i in range(6)], "event_ts": ts})
    warehouse = open_warehouse(home.warehouse_url)
    warehouse.replace_partition("raw.impressions", data, "event_ts", base, base + timedelta(hours=6))
    published_at = datetime(2026, 11, 1, 12, 0)
    record_publication(
        {
            "start": base.isoformat(),
            "end": (base + timedelta(hours=2)).isoformat(),
            "resolved_at": published_at.isoformat(),
        },
        "run-1",
        home,
    )
    before, after = published_at - timedelta(minutes=5), published_at + timedelta(minutes=5)

    new_hour = _event("2026-01-01T02:00:00", "2026-01-01T03:00:00", after)
    assert _span(resolve_interval([new_hour], {}, home)) == ("2026-01-01T02:00:00", "2026-01-01T06:00:00")
    # An old hour's event the last publication already saw does not send the run back to hour 0 ...
    seen = _event("2026-01-01T00:00:00", "2026-01-01T01:00:00", before)
    assert _span(resolve_interval([seen, new_hour], {}, home)) == (
        "2026-01-01T02:00:00",
        "2026-01-01T06:00:00",
    )
    # ... but the same hour loaded again after the publication (a repaired file) does.
    rerun = _event("2026-01-01T00:00:00", "2026-01-01T01:00:00", after)
    assert _span(resolve_interval([rerun], {}, home)) == ("2026-01-01T00:00:00", "2026-01-01T06:00:00")

    record_publication(
        {
            "start": base.isoformat(),
            "end": (base + timedelta(hours=6)).isoformat(),
            "resolved_at": after.isoformat(),
        },
        "run-2",
        home,
    )
    assert resolve_interval([seen], {}, home) is None  # everything loaded is published: the run skips
    # A manual rerun of an old hour republishes every later snapshot, since dbt rebuilds them all.
    old_hour = {"interval_start": "2026-01-01T01:00:00", "interval_end": "2026-01-01T02:00:00"}
    assert _span(resolve_interval([], old_hour, home)) == ("2026-01-01T01:00:00", "2026-01-01T06:00:00")


def test_the_first_publication_starts_at_the_first_hour_loaded(home) -> None:
    # A backfill loads its hours in any order; the first build_features run may be handed hour 1's event
    # while hour 0 loaded too. Nothing is published yet, so the run owns every loaded hour, hour 0 included
    # (a demo once published 71 of 72 hours this way, hour 0 never again).
    import pyarrow as pa

    from flywheel.warehouse import open_warehouse

    base = datetime(2026, 1, 1)
    ts = [base + timedelta(hours=h, minutes=30) for h in range(3)]
    data = pa.table({"impression_id": [str(i) for i in range(3)], "event_ts": ts})
    open_warehouse(home.warehouse_url).replace_partition(
        "raw.impressions", data, "event_ts", base, base + timedelta(hours=3)
    )
    hour_1 = _event("2026-01-01T01:00:00", "2026-01-01T02:00:00", datetime(2026, 11, 1, 12, 0))
    assert _span(resolve_interval([hour_1], {}, home)) == ("2026-01-01T00:00:00", "2026-01-01T03:00:00")
