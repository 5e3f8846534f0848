"""Exports of the marts to Parquet: whole days, atomic rewrites, the same rows on every rerun."""

from __future__ import annotations

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
from feature_marts import DAY, HOURS, USERS, Marts

from flywheel.feature_store.export import export_views, view_schema
from flywheel.feature_store.render import feature_views
from flywheel.feature_store.settings import feature_store_settings


def test_export_writes_whole_days_and_reruns_identically(marts: Marts) -> None:
    fs = feature_store_settings(marts.settings)
    views = {view.name: view for view in feature_views(fs)}
    user_view = views["user_features"]
    folder = fs.data_dir / "user_features"

    # An hour-long window still rewrites the whole day, and the next (empty) day gets an empty file.
    exported = export_views(
        [user_view],
        fs.warehouse_url,
        DAY + timedelta(hours=10),
        DAY + timedelta(days=1, hours=1),
        fs.data_dir,
    )
    day_file = folder / f"{DAY:%Y-%m-%d}.parquet"
    next_day_file = folder / f"{DAY + timedelta(days=1):%Y-%m-%d}.parquet"
    first = pq.read_table(day_file)
    assert first.num_rows == len(USERS) * len(HOURS) == exported["user_features"].num_rows
    assert pq.read_table(next_day_file).num_rows == 0
    assert first.schema == view_schema(user_view)
    assert first.schema.field("feature_ts").type == pa.timestamp("us")

    export_views([user_view], fs.warehouse_url, DAY, DAY + timedelta(hours=1), fs.data_dir)
    assert pq.read_table(day_file).equals(first)
    assert sorted(p.name for p in folder.iterdir()) == sorted([day_file.name, next_day_file.name])
