"""The feature store's public API: apply and materialize, point-in-time training sets, online reads.

Feast is imported inside the functions: DAG files may import this module at parse time for free.
"""

from __future__ import annotations

import importlib.util
import logging
import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from flywheel.config import Settings
from flywheel.feature_store.defaults import fill_missing
from flywheel.feature_store.export import export_views, read_training_entities
from flywheel.feature_store.render import (
    feature_views,
    load_definitions,
    render_config,
    render_repo,
    repo_contents,
)
from flywheel.feature_store.settings import FeatureStoreError, FeatureStoreSettings, feature_store_settings

log = logging.getLogger(__name__)

#: The versioned feature service training and serving read; a new model version gets a new service.
FEATURE_SERVICE = "ctr_model_v1"
#: The label columns of marts.training_examples that make up a training set's entity dataframe.
LABEL_COLUMNS = [
    "impression_id",
    "event_ts",
    "user_id",
    "item_id",
    "position",
    "price",
    "category",
    "label",
    "gmv",
]

# Feast's materialize includes its end; a window is [start, end), so it stops one tick before.
_TICK = timedelta(microseconds=1)
_stores: dict[tuple[str, str], Any] = {}
_stores_lock = threading.Lock()


def open_store(settings: Settings | None = None) -> Any:
    """The ``feast.FeatureStore`` of this home (rendered first), cached per home and configuration."""
    return _open(_settings(settings))


def apply_and_materialize(start: datetime, end: datetime, settings: Settings | None = None) -> dict[str, Any]:
    """Export the marts for ``[start, end)``, apply the definitions and load the window into the online store.

    Running it twice for the same window leaves the same registry, files and online values. Returns a
    small JSON-able summary: snapshot rows per view in the window and the entities written online.
    """
    start, end = _window(start, end)
    fs = _settings(settings)
    views = feature_views(fs)
    exported = export_views(views, fs.warehouse_url, start, end, fs.data_dir)
    store = _open(fs)
    _apply(fs, store)
    names = [view.name for view in views]
    store.materialize(start, end - _TICK, feature_views=names)
    rows, entities = {}, {}
    for view in views:
        window = _rows_in(exported[view.name], view.batch_source.timestamp_field, start, end)
        rows[view.name] = window.num_rows
        entities[view.name] = len(window.column(view.entity_columns[0].name).unique())
    log.info("materialized [%s, %s) into %s (%s): %s", start, end, fs.online_store, fs.project, entities)
    return {
        "project": fs.project,
        "online_store": fs.online_store,
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": rows,
        "entities": entities,
    }


def training_set(
    start: datetime,
    end: datetime,
    settings: Settings | None = None,
    *,
    feature_service: str = FEATURE_SERVICE,
) -> pd.DataFrame:
    """Impressions with ``event_ts`` in ``[start, end)``, labels plus point-in-time features.

    Each row gets the latest snapshot with ``feature_ts <= event_ts`` (within the views' ttl), so an
    impression at 10:30 sees the 10:00 snapshot and never a later one. Missing snapshots mean no
    activity and take the marts' defaults (0, 'none', 168 hours).
    """
    start, end = _window(start, end)
    fs = _settings(settings)
    entities = read_training_entities(fs.warehouse_url, start, end)
    if entities.num_rows == 0:
        raise ValueError(
            f"marts.training_examples has no impressions with event_ts in [{start}, {end}) in the "
            f"warehouse {fs.warehouse_url}: pick a range that build_features has covered"
        )
    views = feature_views(fs)
    ttl = max(view.ttl for view in views)
    export_views(views, fs.warehouse_url, start - ttl, end, fs.data_dir)
    store = _open(fs)
    _apply(fs, store)
    service = store.get_feature_service(feature_service)
    frame = store.get_historical_features(entity_df=entities.to_pandas(), features=service).to_df()
    fields = _service_fields(service)
    frame = fill_missing(frame, fields)
    frame["event_ts"] = _naive_utc(frame["event_ts"])
    frame = frame.sort_values(["event_ts", "impression_id"], kind="stable").reset_index(drop=True)
    return frame[LABEL_COLUMNS + [name for name, _ in fields]]


def online_features(
    user_ids: Iterable[int],
    item_ids: Iterable[int],
    settings: Settings | None = None,
    *,
    as_of: datetime | None = None,
    feature_service: str = FEATURE_SERVICE,
) -> dict[str, list[Any]]:
    """Features for each ``(user_ids[i], item_ids[i])`` pair from the online store, as columns.

    The online store keeps an entity's last snapshot forever, while a training set drops snapshots
    older than the view's ttl; so here too a snapshot older than ``as_of`` (default: now) minus the ttl
    counts as missing, and missing features take the same defaults as in training sets.
    """
    users, items = [int(u) for u in user_ids], [int(i) for i in item_ids]
    if len(users) != len(items):
        raise ValueError(
            f"online_features needs one item per user: got {len(users)} users, {len(items)} items"
        )
    fs = _settings(settings)
    from feast.errors import FeastObjectNotFoundException
    from feast.online_response import TIMESTAMP_POSTFIX

    store = _open(fs)
    try:
        service = store.get_feature_service(feature_service)
    except FeastObjectNotFoundException as exc:
        raise FeatureStoreError(
            f"feature service {feature_service!r} is not in the registry of {fs.repo_dir} "
            f"(project {fs.project}): run apply_and_materialize (the build_features DAG) first"
        ) from exc
    rows = [{"user_id": u, "item_id": i} for u, i in zip(users, items, strict=True)]
    response = store.get_online_features(features=service, entity_rows=rows)
    values = response.to_dict(include_event_timestamps=True)
    as_of_s = _to_naive_utc(as_of or datetime.now(UTC)).replace(tzinfo=UTC).timestamp()
    fields = _service_fields(service)
    for projection in service.feature_view_projections:
        oldest = as_of_s - store.get_feature_view(projection.name).ttl.total_seconds()
        for feature in projection.features:
            stamps = values.pop(feature.name + TIMESTAMP_POSTFIX)
            values[feature.name] = [
                v if ts >= oldest else None for v, ts in zip(values[feature.name], stamps, strict=True)
            ]
    frame = fill_missing(pd.DataFrame(values), fields)
    return {name: frame[name].tolist() for name in ["user_id", "item_id"] + [n for n, _ in fields]}


def apply_definitions(settings: Settings | None = None) -> None:
    """``feast apply`` for this home: register the definitions and drop objects they no longer name."""
    fs = _settings(settings)
    _apply(fs, _open(fs))


def _apply(fs: FeatureStoreSettings, store: Any) -> None:
    from feast.repo_operations import extract_objects_for_apply_delete

    repo = repo_contents(load_definitions(fs.repo_dir), fs.project)
    to_apply, to_delete, _, _ = extract_objects_for_apply_delete(fs.project, store.registry, repo)
    store.apply(to_apply, objects_to_delete=to_delete, partial=False)


def teardown_store(settings: Settings | None = None) -> None:
    """Delete this project's online data (SQLite tables or Redis keys) and its registry."""
    fs = _settings(settings)
    store = _open(fs)
    store.teardown()
    with _stores_lock:
        _stores.pop((str(fs.repo_dir), render_config(fs)), None)


def _settings(settings: Settings | None) -> FeatureStoreSettings:
    # Feast installs without ibis, which its DuckDB offline store needs; say so before a deep ImportError.
    missing = [name for name in ("feast", "ibis") if importlib.util.find_spec(name) is None]
    if missing:
        raise FeatureStoreError(
            f"{' and '.join(missing)} not installed: the feature store needs "
            "pip install 'feast[duckdb,redis]'"
        )
    return feature_store_settings(settings)


def _open(fs: FeatureStoreSettings) -> Any:
    from feast import FeatureStore

    render_repo(fs)
    key = (str(fs.repo_dir), render_config(fs))
    with _stores_lock:
        if key not in _stores:
            _stores[key] = FeatureStore(repo_path=str(fs.repo_dir))
        return _stores[key]


def _service_fields(service: Any) -> list[tuple[str, str]]:
    return [
        (f.name, str(f.dtype)) for projection in service.feature_view_projections for f in projection.features
    ]


def _window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    start, end = _to_naive_utc(start), _to_naive_utc(end)
    if start >= end:
        raise ValueError(f"empty window [{start}, {end}): start must be before end")
    return start, end


def _to_naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def _naive_utc(column: pd.Series) -> pd.Series:
    column = pd.to_datetime(column)
    return column.dt.tz_convert("UTC").dt.tz_localize(None) if column.dt.tz is not None else column


def _rows_in(table: Any, column: str, start: datetime, end: datetime) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    ts = table.column(column)
    return table.filter(
        pc.and_(pc.greater_equal(ts, pa.scalar(start, ts.type)), pc.less(ts, pa.scalar(end, ts.type)))
    )
