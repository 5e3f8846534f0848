"""Feast objects for the CTR model: who and what features describe, the views over the marts, the service.

Feast imports every ``.py`` in a feature repo, so this folder holds definitions only.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.types import Float64, Int64, String

# The Parquet mirror of the marts lives beside the copy of this file in <FLYWHEEL_HOME>/feature_store/.
# The path is absolute because Feast's DuckDB offline store reads relative paths from the working directory.
DATA_DIR = Path(__file__).resolve().parent / "data"

# A snapshot is usable for a week: the marts emit one only while the entity was active in the last 7 days.
FEATURE_TTL = timedelta(days=7)

# A shopper who sees impressions; the key of raw.impressions.user_id.
user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A shopper who is shown ranked items.",
)

# A listed item; the key of raw.impressions.item_id.
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="An item that can be shown, clicked and ordered.",
)

# marts.user_features exported one Parquet file per day of feature_ts (see flywheel.feature_store.export).
user_features_source = FileSource(
    name="user_features_source",
    path=str(DATA_DIR / "user_features" / "*.parquet"),
    timestamp_field="feature_ts",
    description="Hourly user snapshots from marts.user_features.",
)

# marts.item_features, exported the same way.
item_features_source = FileSource(
    name="item_features_source",
    path=str(DATA_DIR / "item_features" / "*.parquet"),
    timestamp_field="feature_ts",
    description="Hourly item snapshots from marts.item_features.",
)

# What a user did before each whole hour; the warehouse_table tag says which mart the export reads.
user_features = FeatureView(
    name="user_features",
    entities=[user],
    ttl=FEATURE_TTL,
    schema=[
        Field(name="user_id", dtype=Int64),
        Field(name="user_impressions_1h", dtype=Int64),
        Field(name="user_clicks_1h", dtype=Int64),
        Field(name="user_ctr_1h", dtype=Float64),
        Field(name="user_impressions_24h", dtype=Int64),
        Field(name="user_clicks_24h", dtype=Int64),
        Field(name="user_ctr_24h", dtype=Float64),
        Field(name="user_impressions_7d", dtype=Int64),
        Field(name="user_clicks_7d", dtype=Int64),
        Field(name="user_ctr_7d", dtype=Float64),
        Field(name="user_top_category", dtype=String),
        Field(name="user_top_category_share", dtype=Float64),
        Field(name="user_hours_since_last_click", dtype=Float64),
    ],
    source=user_features_source,
    online=True,
    tags={"warehouse_table": "marts.user_features"},
)

# How an item was shown and clicked before each whole hour.
item_features = FeatureView(
    name="item_features",
    entities=[item],
    ttl=FEATURE_TTL,
    schema=[
        Field(name="item_id", dtype=Int64),
        Field(name="item_category", dtype=String),
        Field(name="item_price", dtype=Float64),
        Field(name="item_impressions_24h", dtype=Int64),
        Field(name="item_clicks_24h", dtype=Int64),
        Field(name="item_ctr_24h", dtype=Float64),
        Field(name="item_popularity_24h", dtype=Float64),
        Field(name="item_impressions_7d", dtype=Int64),
        Field(name="item_clicks_7d", dtype=Int64),
        Field(name="item_ctr_7d", dtype=Float64),
    ],
    source=item_features_source,
    online=True,
    tags={"warehouse_table": "marts.item_features"},
)

# Version 1 of the CTR model's inputs: training and serving both read exactly this list.
ctr_model_v1 = FeatureService(
    name="ctr_model_v1",
    features=[user_features, item_features],
    description="Every user_* and item_* feature, for the CTR ranking model v1.",
)
