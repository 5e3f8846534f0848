"""The gated hour and ``RawWorld``: raw tables filled the real way (simulator, landing zone, ingest)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.config import Settings
from flywheel.events import hour_dir
from flywheel.ingest.load import load_events
from flywheel.simulate.writer import FILE_NAME
from flywheel.warehouse import open_warehouse

T0 = datetime(2026, 1, 1)
HISTORY_HOURS = 6  # normal hours before the gated one: the trailing average
GATED = T0 + timedelta(hours=HISTORY_HOURS)  # the hour every raw test gates
GATED_END = GATED + timedelta(hours=1)
IMPRESSIONS_PER_HOUR = 400


@dataclass
class RawWorld:
    """A home whose ``raw.*`` holds the simulated hours, and helpers to break and repair the gated hour."""

    settings: Settings

    def ingest(self, start: datetime = T0, end: datetime = GATED_END + timedelta(hours=1)) -> None:
        load_events(start, end, settings=self.settings, run_id="test-ingest")

    def landed_path(self, table: str = "impressions", hour: datetime = GATED) -> Path:
        return hour_dir(self.settings.landing_dir, table, hour) / FILE_NAME

    def landed(self, table: str = "impressions", hour: datetime = GATED) -> pa.Table:
        return pq.read_table(self.landed_path(table, hour))

    def reland(self, data: pa.Table, table: str = "impressions", hour: datetime = GATED) -> int:
        """Replace the hour's landed file with ``data``; return the rows it holds (rows received)."""
        path = self.landed_path(table, hour)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(data, path)
        return data.num_rows

    def count(self, table: str, column: str = "event_ts", start=GATED, end=GATED_END) -> int:
        wh = open_warehouse(self.settings.warehouse_url)
        if not wh.table_exists(table):
            return 0
        return wh.read_arrow(
            f"select count(*) as n from {table} where {column} >= :start and {column} < :end",
            {"start": start, "end": end},
        ).to_pylist()[0]["n"]

    def rows_in_files_quarantined_by_ingest(self, table: str = "impressions") -> int:
        """Rows in the files ``ingest_events`` refused for the gated hour, read from the quarantine."""
        wh = open_warehouse(self.settings.warehouse_url)
        if not wh.table_exists("quarantine.files"):
            return 0
        files = wh.read_arrow(
            "select quarantine_path from quarantine.files where table_name = :table "
            "and interval_start <= :start and interval_end > :start",
            {"table": table, "start": GATED},
        ).column("quarantine_path")
        # A zero-byte file (a producer that died before writing) holds no rows and no Parquet footer.
        return sum(pq.read_metadata(p).num_rows if Path(p).stat().st_size else 0 for p in files.to_pylist())

    def quarantine_run_ids(self) -> list[str]:
        rows = open_warehouse(self.settings.warehouse_url).read_arrow(
            "select distinct validation_run_id from quarantine.raw_impressions"
        )
        return rows.column("validation_run_id").to_pylist()

    def validations(self, suite: str) -> list[dict]:
        return (
            open_warehouse(self.settings.warehouse_url)
            .read_arrow(
                "select * from quarantine.validations where suite = :suite order by validated_at",
                {"suite": suite},
            )
            .to_pylist()
        )


def set_values(data: pa.Table, column: str, rows: range, value) -> pa.Table:
    """``data`` with ``column`` set to ``value`` in ``rows``: one way to break a batch."""
    values = data.column(column).to_pylist()
    for i in rows:
        values[i] = value
    index = data.schema.get_field_index(column)
    return data.set_column(index, data.schema.field(index), pa.array(values, data.schema.field(index).type))
