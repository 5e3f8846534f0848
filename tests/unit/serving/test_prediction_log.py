"""The prediction log: rows from many threads land exactly once, in the hour of their timestamp, as files
ingest loads; files appear whole and on time; a failed write keeps its rows for the next flush."""

from __future__ import annotations

import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.config import Settings
from flywheel.events import EVENT_SCHEMAS, hour_dir
from flywheel.ingest.landing import LandedFile, read_landed
from flywheel.ingest.load import load_events
from flywheel.serving.prediction_log import PredictionLog, PredictionLogError
from flywheel.warehouse import open_warehouse

HOUR = datetime(2026, 2, 1, 9)


def _request(request: str, at: datetime, items: int = 3) -> dict[str, list]:
    ids = [f"{request}-{i}" for i in range(items)]
    return {
        "prediction_id": ids,
        "request_id": [request] * items,
        "impression_id": ids,
        "event_ts": [at] * items,
        "user_id": [7] * items,
        "item_id": list(range(items)),
        "position": list(range(items, 0, -1)),
        "score": [0.1 * (i + 1) for i in range(items)],
        "model_version": ["v1"] * items,
        "bucket": ["champion"] * items,
        "user_hash": [0.42] * items,
        "latency_ms": [3.5] * items,
    }


def _files(landing: Path) -> list[Path]:
    return sorted((landing / "predictions").rglob("*.parquet"))


def _rows(landing: Path) -> pa.Table:
    return pa.concat_tables([pq.read_table(p) for p in _files(landing)])


def test_rows_from_many_threads_land_once_each(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path, flush_seconds=0.05).start()

    def serve(thread: int) -> None:
        for r in range(200):
            plog.append(_request(f"t{thread}r{r}", HOUR + timedelta(seconds=r)))

    threads = [threading.Thread(target=serve, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    plog.close()
    rows = _rows(tmp_path)
    assert rows.num_rows == 8 * 200 * 3
    assert len(set(rows.column("prediction_id").to_pylist())) == rows.num_rows
    assert plog.pending == 0
    for path in _files(tmp_path):
        assert pq.read_schema(path).equals(EVENT_SCHEMAS["predictions"], check_metadata=False)
        assert path.parent == hour_dir(tmp_path, "predictions", HOUR)
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix != ".parquet"]  # no scratch left


def test_files_are_closed_within_flush_seconds_without_waiting_for_close(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path, flush_seconds=0.2).start()
    try:
        plog.append(_request("r1", HOUR))
        deadline = time.monotonic() + 2.0
        while not _files(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _rows(tmp_path).num_rows == 3
        assert plog.pending == 0
    finally:
        plog.close()
    plog.close()  # twice is harmless
    with pytest.raises(PredictionLogError, match="closed"):
        plog.append(_request("r2", HOUR))


def test_rows_go_to_the_hour_of_their_timestamp_and_ingest_accepts_them(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path, flush_seconds=60)
    late = HOUR + timedelta(minutes=59, seconds=59, microseconds=999_999)
    mixed = _request("a", late, items=2)
    mixed["event_ts"][1] = HOUR + timedelta(hours=1)  # one row just after the hour turns
    plog.append(mixed)
    plog.append(_request("b", HOUR + timedelta(minutes=1)))
    written = plog.close()
    assert sorted(p.parent for p in written) == [
        hour_dir(tmp_path, "predictions", HOUR),
        hour_dir(tmp_path, "predictions", HOUR + timedelta(hours=1)),
    ]
    counts = {}
    for path in written:  # ingest refuses a file with a row outside its hour
        table, dropped = read_landed(LandedFile("predictions", _hour_of(path), path))
        counts[_hour_of(path)] = table.num_rows
        assert not dropped
    assert counts == {HOUR: 4, HOUR + timedelta(hours=1): 1}


def _hour_of(path: Path) -> datetime:
    date = path.parent.parent.name.removeprefix("date=")
    return datetime.fromisoformat(date) + timedelta(hours=int(path.parent.name.removeprefix("hour=")))


def test_a_failed_write_keeps_its_rows_for_the_next_flush(tmp_path: Path) -> None:
    plog = PredictionLog(tmp_path, flush_seconds=60)
    plog.append(_request("r1", HOUR))
    blocker = hour_dir(tmp_path, "predictions", HOUR)
    blocker.parent.mkdir(parents=True)
    blocker.write_text("a file where the hour's folder should be")
    with pytest.raises(PredictionLogError, match="3 row.*stay in memory"):
        plog.flush()
    plog.append(_request("r2", HOUR))
    with pytest.raises(PredictionLogError, match="6 row"):
        plog.close()
    blocker.unlink()
    plog.flush()
    assert sorted(_rows(tmp_path).column("request_id").to_pylist()) == ["r1"] * 3 + ["r2"] * 3


def test_ingest_loads_the_log_into_raw_predictions(home: Settings) -> None:
    plog = PredictionLog(home.landing_dir, flush_seconds=60)
    for r in range(5):
        plog.append(_request(f"r{r}", HOUR + timedelta(minutes=r)))
    plog.close()
    report = load_events(HOUR, HOUR + timedelta(hours=1), settings=home)
    assert report.rows["predictions"] == 15 and not report.quarantined
    rows = (
        open_warehouse(home.warehouse_url)
        .read_arrow("select request_id, position, score from raw.predictions order by prediction_id")
        .to_pylist()
    )
    assert rows[0] == {"request_id": "r0", "position": 3, "score": pytest.approx(0.1)}


def test_the_raw_predictions_gate_passes_the_log_and_fails_a_broken_one(home: Settings) -> None:
    from flywheel.quality import GateFailed, run_gate

    plog = PredictionLog(home.landing_dir, flush_seconds=60)
    for r in range(5):
        plog.append(_request(f"r{r}", HOUR + timedelta(minutes=r)))
    plog.close()
    end = HOUR + timedelta(hours=1)
    load_events(HOUR, end, settings=home)
    assert run_gate("raw_predictions", start=HOUR, end=end, settings=home, run_id="ok").success

    broken = _request("bad", HOUR + timedelta(minutes=30))
    broken["score"][0] = 1.7
    broken["bucket"][1] = "shadow"
    plog = PredictionLog(home.landing_dir, flush_seconds=60)
    plog.append(broken)
    plog.close()
    load_events(HOUR, end, settings=home)
    with pytest.raises(GateFailed, match=r"(?s)score.*1\.7.*bucket"):
        run_gate("raw_predictions", start=HOUR, end=end, settings=home, run_id="broken")
