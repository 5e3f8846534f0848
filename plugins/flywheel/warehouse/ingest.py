"""Load the landing zone's files for one data interval into ``raw.*``, swapping the partition atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN, hour_dir, hours_between, naive_utc
from flywheel.warehouse.base import Warehouse
from flywheel.warehouse.connect import open_warehouse
from flywheel.warehouse.landing import BadFile, LandedFile, copy_to_quarantine, read_landed

log = logging.getLogger(__name__)

QUARANTINE_TABLE = "quarantine.files"
QUARANTINE_SCHEMA = pa.schema(
    [
        ("file_path", pa.string()),
        ("quarantine_path", pa.string()),
        ("table_name", pa.string()),
        ("interval_start", pa.timestamp("us")),
        ("interval_end", pa.timestamp("us")),
        ("reason", pa.string()),
        ("run_id", pa.string()),
        ("quarantined_at", pa.timestamp("us")),
    ]
)


@dataclass
class IngestReport:
    """What one interval's load did: rows per table, files loaded, files quarantined with reasons."""

    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=dict)
    files_loaded: int = 0
    quarantined: list[dict[str, str]] = field(default_factory=list)

    def as_extra(self) -> dict[str, object]:
        """A small JSON-able pointer for the ``raw_events`` asset event."""
        return {
            "interval_start": self.start.isoformat(),
            "interval_end": self.end.isoformat(),
            "rows": self.rows,
            "files_quarantined": len(self.quarantined),
        }


def landed_files(landing_dir: Path, start: datetime, end: datetime) -> list[LandedFile]:
    """Every Parquet file filed under an hour of ``[start, end)``, in a stable order."""
    files = []
    for table in EVENT_SCHEMAS:
        for hour in hours_between(start, end):
            folder = hour_dir(landing_dir, table, hour)
            files += [LandedFile(table, hour, p) for p in sorted(folder.glob("*.parquet"))]
    return files


def ingest_interval(
    start: datetime,
    end: datetime,
    *,
    settings: Settings | None = None,
    warehouse: Warehouse | None = None,
    run_id: str = "manual",
) -> IngestReport:
    """Load ``[start, end)`` into ``raw.<table>``; bad files go to quarantine, good ones still load.

    All tables' partitions are replaced in one transaction, so a rerun of the interval leaves exactly
    the same rows, and a crash leaves the previous load in place.
    """
    settings = settings or get_settings()
    warehouse = warehouse or open_warehouse(settings.warehouse_url)
    start, end = naive_utc(start), naive_utc(end)
    report = IngestReport(start, end)
    batches: dict[str, list[pa.Table]] = {table: [] for table in EVENT_SCHEMAS}
    bad: list[tuple[LandedFile, str]] = []
    for file in landed_files(settings.landing_dir, start, end):
        try:
            data = read_landed(file)
        except BadFile as exc:
            bad.append((file, str(exc)))
            continue
        source = str(file.path.relative_to(settings.landing_dir))
        batches[file.table].append(data.append_column("_source_file", pa.array([source] * data.num_rows)))
        report.files_loaded += 1

    quarantined_at = datetime.now(UTC).replace(tzinfo=None)
    moved = []
    for file, reason in bad:
        target = copy_to_quarantine(file.path, settings.landing_dir, settings.quarantine_dir)
        record = {
            "file_path": str(file.path.relative_to(settings.landing_dir)),
            "quarantine_path": str(target),
            "table_name": file.table,
            "reason": reason,
        }
        moved.append(record)
        log.warning("quarantined %s (%s): %s -> %s", record["file_path"], file.table, reason, target)

    with warehouse.transaction() as conn:
        for table, parts in batches.items():
            schema = EVENT_SCHEMAS[table].append(pa.field("_source_file", pa.string()))
            data = pa.concat_tables(parts) if parts else schema.empty_table()
            conn.ensure_table(f"raw.{table}", schema)
            report.rows[table] = conn.replace_partition(f"raw.{table}", data, PARTITION_COLUMN, start, end)
        if moved:
            conn.ensure_table(QUARANTINE_TABLE, QUARANTINE_SCHEMA)
            for record in moved:
                conn.execute("delete from quarantine.files where quarantine_path = :quarantine_path", record)
            conn.insert_arrow(
                QUARANTINE_TABLE,
                pa.Table.from_pylist(
                    [
                        {
                            **r,
                            "interval_start": start,
                            "interval_end": end,
                            "run_id": run_id,
                            "quarantined_at": quarantined_at,
                        }
                        for r in moved
                    ],
                    schema=QUARANTINE_SCHEMA,
                ),
            )
    for file, _ in bad:  # recorded and copied: now the landing zone may let go of it
        file.path.unlink(missing_ok=True)
    report.quarantined = moved
    log.info(
        "loaded [%s, %s): %s from %d file(s); %d file(s) quarantined",
        start,
        end,
        ", ".join(f"raw.{t}={n}" for t, n in report.rows.items()),
        report.files_loaded,
        len(moved),
    )
    if not report.files_loaded and not moved:
        log.warning("no files landed for [%s, %s) under %s", start, end, settings.landing_dir)
    return report
