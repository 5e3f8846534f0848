"""Bad batches through the code the DAGs run: ``load_events``, then build_features' raw gate step.

Each batch replaces one hour's landed file. Whatever happens to it (refused at ingest, loaded and then
quarantined by a gate, or loaded with a warning), no row is lost, a failed hour stops the task with
Airflow's fail-now exception, and running the step again cannot pass the hour.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from airflow.sdk.exceptions import AirflowFailException
from gate_world import GATED, GATED_END, RawWorld, set_values

from flywheel.features.tasks import gate_raw_hours
from flywheel.ingest.load import IngestReport, load_events
from flywheel.quality import GatesFailed
from flywheel.warehouse import duckdb as duckdb_warehouse
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.base import WarehouseError

HOUR = {"start": GATED.isoformat(), "end": GATED_END.isoformat()}


def _gate_hour(world: RawWorld, run_id: str, hour: dict[str, str] = HOUR) -> dict:
    return gate_raw_hours(hour, run_id, settings=world.settings)


def _ingest_hour(world: RawWorld) -> IngestReport:
    return load_events(GATED, GATED_END, settings=world.settings, run_id="ingest-bad")


def _write(world: RawWorld, table: str, data: pa.Table) -> int:
    return world.reland(data, table)


def _zero_bytes(world: RawWorld, table: str, data: pa.Table) -> int:
    world.landed_path(table).write_bytes(b"")  # a producer that crashed after creating the file
    return 0


def _price_as_text(data: pa.Table) -> pa.Table:
    text = [f"{p:.2f}" for p in data.column("price").to_pylist()]
    text[7] = "n/a"
    return data.set_column(data.schema.get_field_index("price"), "price", pa.array(text))


def _shifted_an_hour(data: pa.Table) -> pa.Table:
    index = data.schema.get_field_index("event_ts")
    shifted = [t + timedelta(hours=1) for t in data.column("event_ts").to_pylist()]
    return data.set_column(index, data.schema.field(index), pa.array(shifted, data.schema.field(index).type))


@dataclass(frozen=True)
class Batch:
    """One bad batch: which table's file it replaces, how, and what must happen to it."""

    table: str
    corrupt: Callable[[pa.Table], pa.Table]
    outcome: str  # "refused" (file quarantined by ingest), "quarantined" (rows, by the gate), "warned"
    says: str  # in the failed gate's message, or in ingest's warning
    land: Callable[[RawWorld, str, pa.Table], int] = _write


BATCHES = {
    "null user_id": Batch(
        "impressions",
        lambda d: set_values(d, "user_id", range(0, 120, 10), None),
        "quarantined",
        "expect_column_values_to_not_be_null(user_id): 12 of {n} rows null",
    ),
    "duplicate impression_id": Batch(
        "impressions",
        lambda d: set_values(d, "impression_id", range(1, 4), d.column("impression_id")[0].as_py()),
        "quarantined",
        "expect_column_values_to_be_unique(impression_id): 4 of {n} rows duplicated",
    ),
    "negative price": Batch(
        "impressions",
        lambda d: set_values(d, "price", range(5), -4.5),
        "quarantined",
        "expect_column_values_to_be_between(price): 5 of {n} rows not > 0, e.g. -4.5",
    ),
    "dropped column": Batch(
        "orders",  # a few orders an hour: the volume bounds start at 0, the refusal alone fails the hour
        lambda d: d.drop_columns(["user_id"]),
        "refused",
        "refused_by_ingest: 1 file(s) of this hour refused by ingest: "
        "orders/date=2026-01-01/hour=06/part-sim.parquet (missing column(s) user_id",
    ),
    "90% smaller batch": Batch(
        "impressions",
        lambda d: d.slice(0, d.num_rows // 10),
        "quarantined",
        "expect_table_row_count_to_be_between: observed {n}, expected ",
    ),
    "timestamps outside the hour": Batch(
        "impressions",
        _shifted_an_hour,
        "refused",
        "event_ts spans 2026-01-01 07:",
    ),
    "empty file": Batch(
        "orders", lambda d: d, "refused", "(unreadable Parquet file: ArrowInvalid", land=_zero_bytes
    ),
    "string where a number belongs": Batch(
        "impressions", _price_as_text, "refused", "column price has type string, which does not cast"
    ),
    "unknown extra column": Batch(
        "impressions",
        lambda d: d.append_column("campaign_id", pa.array(["spring"] * d.num_rows)),
        "warned",
        "impressions/date=2026-01-01/hour=06/part-sim.parquet: dropped column(s) campaign_id",
    ),
}


def _rows_accounted(world: RawWorld, table: str) -> int:
    """Rows of the gated hour in raw, in the gate's quarantine, and in files ingest refused."""
    return (
        world.count(f"raw.{table}")
        + world.count(f"quarantine.raw_{table}")
        + world.rows_in_files_quarantined_by_ingest(table)
    )


def _loads(world: RawWorld, table: str) -> dict:
    wh = open_warehouse(world.settings.warehouse_url)
    (row,) = wh.read_arrow(
        "select * from raw.loads where table_name = :table and hour_start = :hour",
        {"table": table, "hour": GATED},
    ).to_pylist()
    return row


@pytest.mark.parametrize("case", list(BATCHES))
def test_a_bad_batch_stops_its_hour_loses_nothing_and_a_retry_cannot_pass_it(
    raw_world: RawWorld, case: str, caplog: pytest.LogCaptureFixture
) -> None:
    batch = BATCHES[case]
    good = raw_world.landed(batch.table)
    assert good.num_rows > 0
    received = batch.land(raw_world, batch.table, batch.corrupt(good))

    report = _ingest_hour(raw_world)
    loaded = raw_world.count(f"raw.{batch.table}")
    loads = _loads(raw_world, batch.table)
    assert loads["files_loaded"] + loads["files_refused"] == 1  # files received for the hour
    if batch.outcome == "refused":
        assert (loads["files_refused"], loaded) == (1, 0)
        (refusal,) = report.quarantined
        assert refusal["interval_start"] == GATED and refusal["interval_end"] == GATED_END
    else:
        assert (loads["files_refused"], loads["rows_loaded"], loaded) == (0, received, received)

    if batch.outcome == "warned":
        assert len(report.warnings) == 1
        assert batch.says in report.warnings[0]
        assert batch.says in caplog.text
        passed = _gate_hour(raw_world, "gate-1")
        assert passed["gates_passed"] == 3
        assert _rows_accounted(raw_world, batch.table) == loaded == received
        return

    with pytest.raises(AirflowFailException) as failed:
        _gate_hour(raw_world, "gate-1")
    cause = failed.value.__cause__
    assert isinstance(cause, GatesFailed)
    (result,) = cause.results  # only the bad table's gate failed; the hour's other tables passed
    assert result.suite == f"raw_{batch.table}"
    assert batch.says.format(n=loaded) in str(failed.value)
    assert "To recover: re-land corrected files for the interval, re-run ingest_events" in str(failed.value)
    # Moved out of raw, nothing lost: every received row is in the gate's quarantine or a refused file.
    assert raw_world.count(f"raw.{batch.table}") == 0
    assert raw_world.count(f"quarantine.raw_{batch.table}") == (
        loaded if batch.outcome == "quarantined" else 0
    )
    assert _rows_accounted(raw_world, batch.table) == received

    # A retry (or the next build_features run) finds the hour emptied: it fails again, it does not pass.
    with pytest.raises(AirflowFailException, match=f"raw_{batch.table} "):
        _gate_hour(raw_world, "gate-1")
    assert _rows_accounted(raw_world, batch.table) == received


def test_a_refused_file_fails_only_its_own_hour_until_a_repaired_file_loads(raw_world: RawWorld) -> None:
    previous = {"start": (GATED - timedelta(hours=1)).isoformat(), "end": GATED.isoformat()}
    good = raw_world.landed("orders")
    raw_world.reland(good.drop_columns(["quantity"]), "orders")
    load_events(GATED - timedelta(hours=1), GATED_END, settings=raw_world.settings, run_id="two-hours")

    # The other hour of the same ingest run is not blamed for the file.
    assert _gate_hour(raw_world, "gate-1", previous)["gates_passed"] == 3
    with pytest.raises(AirflowFailException, match="missing column.s. quantity"):
        _gate_hour(raw_world, "gate-1")

    # Re-running ingest without a new file (the bad one left the landing zone) does not clear the hour.
    _ingest_hour(raw_world)
    with pytest.raises(AirflowFailException, match="refused_by_ingest"):
        _gate_hour(raw_world, "gate-2")

    raw_world.reland(good, "orders")  # the repaired file, under the name that was refused
    _ingest_hour(raw_world)
    assert _gate_hour(raw_world, "gate-3")["gates_passed"] == 3
    assert raw_world.count("raw.orders") == good.num_rows
    wh = open_warehouse(raw_world.settings.warehouse_url)
    (record,) = wh.read_arrow("select * from quarantine.files").to_pylist()
    assert (record["interval_start"], record["interval_end"]) == (GATED, GATED_END)  # its hour, not the run's
    assert record["resolved_by_run_id"] == "ingest-bad" and record["resolved_at"] is not None
    assert pq.read_table(record["quarantine_path"]).num_rows == good.num_rows  # the evidence stays


def test_a_retry_cannot_pass_a_low_volume_hour_the_gate_emptied(raw_world: RawWorld) -> None:
    # A few orders an hour: 0 rows is within the volume bounds, so an emptied partition alone would pass.
    good = raw_world.landed("orders")
    received = raw_world.reland(set_values(good, "user_id", range(1), None), "orders")
    _ingest_hour(raw_world)
    with pytest.raises(AirflowFailException, match=r"not_be_null\(user_id\)"):
        _gate_hour(raw_world, "gate-1")
    assert raw_world.count("raw.orders") == 0 and raw_world.count("quarantine.raw_orders") == received

    with pytest.raises(AirflowFailException, match="ingest_events has not loaded it since"):
        _gate_hour(raw_world, "gate-1")  # the Airflow retry, or the next build_features run
    assert raw_world.count("quarantine.raw_orders") == received

    raw_world.reland(good, "orders")
    _ingest_hour(raw_world)
    assert _gate_hour(raw_world, "gate-2")["gates_passed"] == 3


def test_an_infrastructure_error_is_not_a_fail_now(
    raw_world: RawWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process holds the DuckDB file: the warehouse is unreachable, which a retry may cure.
    monkeypatch.setattr(duckdb_warehouse, "LOCK_WAIT_SECONDS", 0.5)
    path = raw_world.settings.warehouse_url.split(":///", 1)[1]
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb, time; c = duckdb.connect({path!r}); print('held', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(WarehouseError, match="Another process holds it") as error:
            _gate_hour(raw_world, "gate-locked")
        assert not isinstance(error.value, AirflowFailException)
    finally:
        holder.kill()
        holder.wait(timeout=30)
    time.sleep(0.1)
    assert _gate_hour(raw_world, "gate-retry")["gates_passed"] == 3  # the retry, once the lock is gone
