"""``load_events``: idempotent partition swaps, and bad files quarantined while good ones load."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.config import Settings
from flywheel.events import EVENT_SCHEMAS, hour_dir
from flywheel.ingest.load import load_events
from flywheel.warehouse import open_warehouse

H0 = datetime(2026, 1, 1, 5)
H1 = H0 + timedelta(hours=1)


def _impressions(n: int, hour: datetime, offset: int = 0) -> pa.Table:
    return pa.table(
        {
            "impression_id": [f"imp-{offset + i}" for i in range(n)],
            "request_id": [f"req-{(offset + i) // 10}" for i in range(n)],
            "event_ts": [hour + timedelta(seconds=i) for i in range(n)],
            "user_id": [i % 7 for i in range(n)],
            "item_id": [i % 13 for i in range(n)],
            "position": [i % 10 + 1 for i in range(n)],
            "category": [f"cat_{i % 3:02d}" for i in range(n)],
            "price": [9.5 + i for i in range(n)],
        },
        schema=EVENT_SCHEMAS["impressions"],
    )


def _clicks(n: int, hour: datetime) -> pa.Table:
    return pa.table(
        {
            "click_id": [f"clk-{i}" for i in range(n)],
            "impression_id": [f"imp-{i}" for i in range(n)],
            "event_ts": [hour + timedelta(seconds=30 + i) for i in range(n)],
            "user_id": [i % 7 for i in range(n)],
            "item_id": [i % 13 for i in range(n)],
        },
        schema=EVENT_SCHEMAS["clicks"],
    )


def _land(settings: Settings, table: str, data: pa.Table, name: str = "part-0.parquet", hour=H0) -> Path:
    folder = hour_dir(settings.landing_dir, table, hour)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(data, folder / name)
    return folder / name


def _snapshot(settings: Settings) -> dict[str, tuple[int, str]]:
    """Row count and a checksum of every raw table's rows, in a stable order."""
    wh = open_warehouse(settings.warehouse_url)
    result = {}
    for table, schema in EVENT_SCHEMAS.items():
        key = schema.names[0]
        rows = wh.read_arrow(f"select * from raw.{table} order by {key}").to_pylist()
        result[table] = (len(rows), hashlib.sha256(repr(rows).encode()).hexdigest())
    return result


def test_running_an_interval_twice_leaves_the_same_rows(warehouse_home: Settings) -> None:
    _land(warehouse_home, "impressions", _impressions(40, H0))
    _land(warehouse_home, "impressions", _impressions(25, H0, offset=1000), name="part-1.parquet")
    _land(warehouse_home, "clicks", _clicks(6, H0))
    _land(warehouse_home, "impressions", _impressions(9, H1, offset=5000), hour=H1)  # next interval

    first = load_events(H0, H1)
    once = _snapshot(warehouse_home)
    second = load_events(H0, H1)
    assert _snapshot(warehouse_home) == once
    assert first.rows == second.rows == {"impressions": 65, "clicks": 6, "orders": 0, "predictions": 0}
    assert once["impressions"][0] == 65  # the next hour's file was not touched

    load_events(H1, H1 + timedelta(hours=1))
    load_events(H0, H1)  # rerunning an earlier hour keeps the later one
    assert _snapshot(warehouse_home)["impressions"][0] == 74


def test_bad_files_are_quarantined_with_reasons_and_good_files_load(warehouse_home: Settings) -> None:
    good = _land(warehouse_home, "impressions", _impressions(30, H0))
    truncated = _land(
        warehouse_home, "impressions", _impressions(50, H0, offset=100), name="part-trunc.parquet"
    )
    payload = truncated.read_bytes()
    truncated.write_bytes(payload[: len(payload) // 2])
    missing = _land(
        warehouse_home, "clicks", _clicks(5, H0).drop_columns(["item_id"]), name="part-missing.parquet"
    )
    late = _land(warehouse_home, "clicks", _clicks(3, H1), name="part-late.parquet")  # filed under H0
    received = {p.name: p.read_bytes() for p in (good, truncated, missing, late)}

    report = load_events(H0, H1, run_id="test-run")

    assert report.rows == {"impressions": 30, "clicks": 0, "orders": 0, "predictions": 0}
    reasons = {Path(q["file_path"]).name: q["reason"] for q in report.quarantined}
    assert set(reasons) == {"part-trunc.parquet", "part-missing.parquet", "part-late.parquet"}
    assert "unreadable Parquet file" in reasons["part-trunc.parquet"]
    assert "missing column(s) item_id" in reasons["part-missing.parquet"]
    assert "outside the file's hour" in reasons["part-late.parquet"]

    # Nothing lost: every bad file sits byte-for-byte in quarantine, the good one is still landed.
    assert good.exists() and not truncated.exists() and not missing.exists()
    for q in report.quarantined:
        moved = Path(q["quarantine_path"])
        assert moved.is_relative_to(warehouse_home.quarantine_dir)
        assert moved.read_bytes() == received[moved.name]

    recorded = (
        open_warehouse(warehouse_home.warehouse_url)
        .read_arrow("select file_path, table_name, reason, run_id from quarantine.files order by file_path")
        .to_pylist()
    )
    assert [(Path(r["file_path"]).name, r["run_id"]) for r in recorded] == [
        ("part-late.parquet", "test-run"),
        ("part-missing.parquet", "test-run"),
        ("part-trunc.parquet", "test-run"),
    ]

    # A rerun changes nothing; re-landing a repaired file and rerunning loads it.
    load_events(H0, H1)
    assert _snapshot(warehouse_home)["impressions"][0] == 30
    _land(warehouse_home, "clicks", _clicks(5, H0), name="part-missing.parquet")
    assert load_events(H0, H1).rows["clicks"] == 5


@pytest.mark.parametrize(
    "column, values, reason",
    [
        ("position", ["top"] * 4, "column position has type string"),
        ("event_ts", [None] * 4, "have no event_ts"),
    ],
)
def test_unloadable_values_quarantine_the_file(home: Settings, column, values, reason) -> None:
    data = _impressions(4, H0)
    data = data.set_column(data.schema.get_field_index(column), column, pa.array(values))
    _land(home, "impressions", data)
    report = load_events(H0, H1)
    assert report.rows["impressions"] == 0
    assert reason in report.quarantined[0]["reason"]


def test_same_name_quarantined_twice_keeps_both_files(home: Settings) -> None:
    for attempt in range(2):
        path = _land(home, "clicks", _clicks(2 + attempt, H0).drop_columns(["user_id"]))
        load_events(H0, H1)
        assert not path.exists()
    kept = sorted(p.name for p in home.quarantine_dir.rglob("*.parquet"))
    assert kept == ["part-0.1.parquet", "part-0.parquet"]
