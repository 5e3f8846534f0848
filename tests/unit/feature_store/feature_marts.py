"""Hand-made feature marts in the dbt contract's shape, with values that name their entity and hour."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import pyarrow as pa

from flywheel.config import Settings
from flywheel.warehouse import open_warehouse

DAY = datetime(2026, 1, 5)
HOURS = [DAY + timedelta(hours=h) for h in range(8, 13)]  # snapshots at 08:00 .. 12:00
USERS, ITEMS = [1, 2], [10, 20]
NEW_USER = 3  # has impressions but no snapshot: features must take the marts' defaults

USER_FEATURES = [
    ("user_impressions_1h", pa.int64()),
    ("user_clicks_1h", pa.int64()),
    ("user_ctr_1h", pa.float64()),
    ("user_impressions_24h", pa.int64()),
    ("user_clicks_24h", pa.int64()),
    ("user_ctr_24h", pa.float64()),
    ("user_impressions_7d", pa.int64()),
    ("user_clicks_7d", pa.int64()),
    ("user_ctr_7d", pa.float64()),
    ("user_top_category", pa.string()),
    ("user_top_category_share", pa.float64()),
    ("user_hours_since_last_click", pa.float64()),
]
ITEM_FEATURES = [
    ("item_category", pa.string()),
    ("item_price", pa.float64()),
    ("item_impressions_24h", pa.int64()),
    ("item_clicks_24h", pa.int64()),
    ("item_ctr_24h", pa.float64()),
    ("item_popularity_24h", pa.float64()),
    ("item_impressions_7d", pa.int64()),
    ("item_clicks_7d", pa.int64()),
    ("item_ctr_7d", pa.float64()),
]
DEFAULTS = {"user_hours_since_last_click": 168.0}


def snapshot(entity: int, hour: datetime, features: list[tuple[str, pa.DataType]]) -> dict[str, object]:
    """Feature values that name their entity, hour and column, so a wrong snapshot cannot pass."""
    values: dict[str, object] = {}
    for k, (name, dtype) in enumerate(features):
        code = entity * 10_000 + hour.hour * 100 + k
        values[name] = f"cat_{code}" if dtype == pa.string() else code if dtype == pa.int64() else code / 8
    return values


def default(name: str, dtype: pa.DataType) -> object:
    return DEFAULTS.get(name, "none" if dtype == pa.string() else 0 if dtype == pa.int64() else 0.0)


@dataclass(frozen=True)
class Marts:
    """What the hand-made marts hold: snapshot hours and the impressions of the training mart."""

    settings: Settings
    impressions: list[tuple[str, datetime, int, int]]


def _feature_table(key: str, entities: list[int], features: list[tuple[str, pa.DataType]]) -> pa.Table:
    rows = [{key: e, "feature_ts": h, **snapshot(e, h, features)} for e in entities for h in HOURS]
    schema = pa.schema([(key, pa.int64()), ("feature_ts", pa.timestamp("us")), *features])
    return pa.Table.from_pylist(rows, schema=schema)


def _training_table(impressions: list[tuple[str, datetime, int, int]]) -> pa.Table:
    rows = []
    for n, (impression_id, ts, user, item) in enumerate(impressions):
        feature_ts = ts.replace(minute=0, second=0, microsecond=0)
        user_values = (
            snapshot(user, feature_ts, USER_FEATURES)
            if user in USERS and feature_ts in HOURS
            else {name: default(name, t) for name, t in USER_FEATURES}
        )
        rows.append(
            {
                "impression_id": impression_id,
                "request_id": f"req-{n}",
                "event_ts": ts,
                "user_id": user,
                "item_id": item,
                "position": n % 5 + 1,
                "category": f"cat_{item}",
                "price": 10.0 + n,
                "label": n % 2,
                "gmv": 5.0 * (n % 2),
                "feature_ts": feature_ts,
                **user_values,
                **snapshot(item, feature_ts, ITEM_FEATURES),
            }
        )
    schema = pa.schema(
        [
            ("impression_id", pa.string()),
            ("request_id", pa.string()),
            ("event_ts", pa.timestamp("us")),
            ("user_id", pa.int64()),
            ("item_id", pa.int64()),
            ("position", pa.int32()),
            ("category", pa.string()),
            ("price", pa.float64()),
            ("label", pa.int32()),
            ("gmv", pa.float64()),
            ("feature_ts", pa.timestamp("us")),
            *USER_FEATURES,
            *ITEM_FEATURES,
        ]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def build_marts(settings: Settings) -> Marts:
    """Write marts.user_features, marts.item_features and marts.training_examples for ``DAY``."""
    impressions = [
        ("imp-a", DAY + timedelta(hours=10, minutes=30), 1, 10),  # must see 10:00, never 11:00
        ("imp-b", DAY + timedelta(hours=11), 2, 20),  # a snapshot at exactly event_ts counts
        ("imp-c", DAY + timedelta(hours=9, minutes=59, seconds=59), 1, 20),
        ("imp-d", DAY + timedelta(hours=12, minutes=5), NEW_USER, 10),  # no user snapshot: defaults
    ]
    wh = open_warehouse(settings.warehouse_url)
    end = DAY + timedelta(days=1)
    wh.replace_partition(
        "marts.user_features", _feature_table("user_id", USERS, USER_FEATURES), "feature_ts", DAY, end
    )
    wh.replace_partition(
        "marts.item_features", _feature_table("item_id", ITEMS, ITEM_FEATURES), "feature_ts", DAY, end
    )
    wh.replace_partition("marts.training_examples", _training_table(impressions), "event_ts", DAY, end)
    return Marts(settings, impressions)
