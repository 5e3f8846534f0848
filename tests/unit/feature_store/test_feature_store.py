"""The feature store end to end on hand-made marts: point-in-time training sets, apply, online reads."""

from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from feature_marts import DAY, ITEM_FEATURES, NEW_USER, USER_FEATURES, Marts, build_marts, snapshot

from flywheel.config import Settings
from flywheel.feature_store.defaults import fill_missing
from flywheel.feature_store.settings import FeatureStoreError
from flywheel.feature_store.store import (
    FEATURE_SERVICE,
    LABEL_COLUMNS,
    apply_and_materialize,
    apply_definitions,
    online_features,
    open_store,
    teardown_store,
    training_set,
)
from flywheel.warehouse import open_warehouse

FEATURES = [name for name, _ in USER_FEATURES + ITEM_FEATURES]
START, END = DAY + timedelta(hours=8), DAY + timedelta(hours=12)


def test_training_set_is_point_in_time_and_matches_the_mart(warehouse_home: Settings) -> None:
    marts = build_marts(warehouse_home)
    frame = training_set(DAY, DAY + timedelta(days=1))

    assert list(frame.columns) == LABEL_COLUMNS + FEATURES
    assert frame["impression_id"].tolist() == ["imp-c", "imp-a", "imp-b", "imp-d"]
    by_id = frame.set_index("impression_id")
    # 10:30 sees the 10:00 snapshot, never 11:00; 09:59:59 sees 09:00; exactly 11:00 sees 11:00.
    assert (
        by_id.loc["imp-a", "user_impressions_1h"]
        == snapshot(1, DAY.replace(hour=10), USER_FEATURES)["user_impressions_1h"]
    )
    assert (
        by_id.loc["imp-c", "item_ctr_7d"] == snapshot(20, DAY.replace(hour=9), ITEM_FEATURES)["item_ctr_7d"]
    )
    assert (
        by_id.loc["imp-b", "user_top_category"]
        == snapshot(2, DAY.replace(hour=11), USER_FEATURES)["user_top_category"]
    )
    # A user with no snapshot gets what the mart coalesces to, not nulls.
    new_user = by_id.loc["imp-d"]
    assert (new_user["user_impressions_7d"], new_user["user_top_category"]) == (0, "none")
    assert new_user["user_hours_since_last_click"] == 168.0

    mart = (
        open_warehouse(warehouse_home.warehouse_url)
        .read_arrow("select * from marts.training_examples order by event_ts, impression_id")
        .to_pandas()
    )
    assert len(mart) == len(marts.impressions)
    pd.testing.assert_frame_equal(
        frame[FEATURES].reset_index(drop=True), mart[FEATURES].reset_index(drop=True), check_dtype=False
    )
    assert frame["label"].tolist() == mart["label"].tolist()


def test_empty_range_is_a_clear_error(marts: Marts) -> None:
    with pytest.raises(ValueError, match=r"no impressions with event_ts in \[2026-01-04 00:00:00"):
        training_set(DAY - timedelta(days=1), DAY)
    with pytest.raises(ValueError, match="start must be before end"):
        training_set(DAY, DAY)


def test_missing_marts_name_the_step_to_run(home: Settings) -> None:
    with pytest.raises(FeatureStoreError, match=r"marts\.user_features, marts\.item_features not found.*dbt"):
        apply_and_materialize(START, END)


def test_apply_and_materialize_twice_changes_nothing(marts: Marts) -> None:
    first = apply_and_materialize(START, END)
    online_first = online_features([1, 2], [10, 20], as_of=END)
    second = apply_and_materialize(START, END)

    assert first == second
    assert first["rows"] == {"user_features": 8, "item_features": 8}  # 2 entities x 08:00..11:00
    assert first["entities"] == {"user_features": 2, "item_features": 2}
    assert online_features([1, 2], [10, 20], as_of=END) == online_first
    store = open_store()
    assert sorted(v.name for v in store.list_feature_views()) == ["item_features", "user_features"]
    assert sorted(e.name for e in store.list_entities()) == ["item", "user"]
    service = store.get_feature_service(FEATURE_SERVICE)
    assert sorted(f.name for p in service.feature_view_projections for f in p.features) == sorted(FEATURES)


def _offline_as_of(users: list[int], items: list[int], when: pd.Timestamp) -> dict[str, list[object]]:
    store = open_store()
    service = store.get_feature_service(FEATURE_SERVICE)
    entities = pd.DataFrame({"user_id": users, "item_id": items, "event_timestamp": [when] * len(users)})
    frame = store.get_historical_features(entity_df=entities, features=service).to_df()
    fields = [(f.name, str(f.dtype)) for p in service.feature_view_projections for f in p.features]
    frame = (
        fill_missing(frame, fields)
        .set_index(["user_id", "item_id"])
        .loc[list(zip(users, items, strict=True))]
    )
    return {name: frame[name].tolist() for name in FEATURES}


def _assert_online_equals_offline() -> None:
    apply_and_materialize(START, END)
    users, items = [1, 2, NEW_USER, 1], [10, 20, 10, 20]
    online = online_features(users, items, as_of=END)

    assert (online["user_id"], online["item_id"]) == (users, items)
    # The latest snapshot inside [START, END) is 11:00; the 12:00 one lies outside the window.
    offline = _offline_as_of(users, items, pd.Timestamp(END - timedelta(microseconds=1)))
    assert {name: online[name] for name in FEATURES} == offline
    assert (
        online["user_impressions_1h"][0]
        == snapshot(1, DAY.replace(hour=11), USER_FEATURES)["user_impressions_1h"]
    )
    assert online["user_top_category"][2] == "none"


def test_sqlite_online_features_equal_offline_values(marts: Marts) -> None:
    _assert_online_equals_offline()
    assert (marts.settings.home / "feature_store" / "online_store.db").exists()


def test_redis_online_features_equal_offline_values(marts: Marts, redis_project: tuple[str, Any]) -> None:
    project, client = redis_project
    _assert_online_equals_offline()
    assert len(list(client.scan_iter(match=f"*{project}"))) == 4  # users 1, 2 and items 10, 20
    teardown_store()
    assert list(client.scan_iter(match=f"*{project}")) == []


def test_online_snapshots_older_than_the_ttl_are_served_as_training_would_see_them(marts: Marts) -> None:
    apply_and_materialize(START, END)
    # A week and two hours after the last materialized snapshot (11:00): expired online and offline alike.
    later = DAY + timedelta(days=7, hours=13)
    online = online_features([1, 2], [10, 20], as_of=later)
    assert {name: online[name] for name in FEATURES} == _offline_as_of([1, 2], [10, 20], pd.Timestamp(later))
    assert online["user_hours_since_last_click"] == [168.0, 168.0]
    assert online["item_category"] == ["none", "none"]


def test_apply_removes_objects_the_definitions_no_longer_name(marts: Marts) -> None:
    from feast import FeatureService

    apply_definitions()
    store = open_store()
    retired = FeatureService(name="ctr_model_v0", features=[store.get_feature_view("user_features")])
    store.apply([retired])
    assert sorted(s.name for s in store.list_feature_services()) == ["ctr_model_v0", FEATURE_SERVICE]
    apply_definitions()
    assert [s.name for s in store.list_feature_services()] == [FEATURE_SERVICE]


def test_online_features_before_apply_says_what_to_run(marts: Marts) -> None:
    with pytest.raises(FeatureStoreError, match="run apply_and_materialize"):
        online_features([1], [10])
    with pytest.raises(ValueError, match="one item per user"):
        online_features([1, 2], [10])


def test_importing_the_api_does_not_import_feast() -> None:
    # DAG files are parsed every few seconds; Feast takes seconds to import.
    code = "import sys, flywheel.feature_store.store; print('feast' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_a_reader_sees_the_whole_old_registry_while_apply_writes_the_new_one(
    marts: Marts, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway refreshes its registry from the file while build_features applies and materializes:
    # Feast's own file store truncates the file and then writes it, and one demo ranking failed on a
    # registry without item_features. Here the file must hold the whole old registry up to the moment the
    # new one, complete in a file beside it, replaces it in one rename.
    from flywheel.feature_store import registry_store

    apply_and_materialize(START, END)
    path = marts.settings.home / "feature_store" / "registry.db"
    old_version = _registry(path).version_id
    seen: list[tuple[str, list[str], list[str]]] = []
    real_replace = registry_store.os.replace

    def replace(source: str, target: object) -> None:  # os.replace, for every caller in this test
        if Path(str(target)) != path:
            return real_replace(source, target)
        before, new = _registry(path), _registry(Path(source))
        seen.append((before.version_id, _views(before), _views(new)))
        real_replace(source, target)

    monkeypatch.setattr(registry_store.os, "replace", replace)
    apply_and_materialize(START, END)  # rewrites the registry (materialization intervals)

    views = ["item_features", "user_features"]
    assert seen and seen[0][0] == old_version, seen
    assert all(before == new == views for _, before, new in seen), seen
    assert _views(_registry(path)) == views
    assert not list(path.parent.glob("*.partial"))


def _registry(path: Path) -> Any:
    from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

    proto = RegistryProto()
    proto.ParseFromString(path.read_bytes())
    return proto


def _views(proto: Any) -> list[str]:
    return sorted(view.spec.name for view in proto.feature_views)
