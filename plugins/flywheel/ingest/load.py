"""Load the landing zone's files for one data interval into ``raw.*``, swapping the partition atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from flywheel.config import Settings, get_settings
from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN, hour_dir, hours_between, naive_utc
from flywheel.ingest.landing import BadFile, LandedFile, copy_to_quarantine, read_landed
from flywheel.warehouse.base import Connection, Warehouse
from flywheel.warehouse.connect import open_warehouse
from flywheel.warehouse.tables import FILE_QUARANTINE_TABLE, LOADS_TABLE
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)
SQL_DIR = Path(__file__).resolve().parent / "sql"

#: Files ingest refused. ``interval_start``/``interval_end`` are the hour the file was filed under (the
#: partition it would have loaded into), so the refusal fails that hour's gate and no other. A refusal is
#: open until a file loads from the same landing path (the repaired file) or someone sets ``resolved_at``.
QUARANTINE_TABLE = FILE_QUARANTINE_TABLE
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
        ("resolved_at", pa.timestamp("us")),
        ("resolved_by_run_id", pa.string()),
    ]
)

#: One row per table and hour: what the latest load of that partition did (merged on the pair). The gates
#: read it to tell a partition they set aside from one ingest has loaded again since.
LOADS_SCHEMA = pa.schema(
    [
        ("table_name", pa.string()),
        ("hour_start", pa.timestamp("us")),
        ("run_id", pa.string()),
        ("files_loaded", pa.int64()),
        ("files_refused", pa.int64()),
        ("rows_loaded", pa.int64()),
        ("loaded_at", pa.timestamp("us")),
    ]
)


@dataclass
class IngestReport:
    """What one interval's load did: rows per table, files loaded, files quarantined with reasons."""

    start: datetime
    end: datetime
    rows: dict[str, int] = field(default_factory=dict)
    files_loaded: int = 0
    quarantined: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # loaded, but not as landed (e.g. columns dropped)

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


def load_events(
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
    good: list[tuple[LandedFile, int]] = []
    bad: list[tuple[LandedFile, str]] = []
    for file in landed_files(settings.landing_dir, start, end):
        source = str(file.path.relative_to(settings.landing_dir))
        try:
            data, dropped = read_landed(file)
        except BadFile as exc:
            bad.append((file, str(exc)))
            continue
        if dropped:
            warning = (
                f"{source}: dropped column(s) {', '.join(dropped)} that raw.{file.table} does not have; "
                f"its other columns loaded (add them to flywheel/events.py to keep them)"
            )
            report.warnings.append(warning)
            log.warning("%s", warning)
        batches[file.table].append(data.append_column("_source_file", pa.array([source] * data.num_rows)))
        good.append((file, data.num_rows))
        report.files_loaded += 1

    now = datetime.now(UTC).replace(tzinfo=None)
    moved = []
    for file, reason in bad:
        target = copy_to_quarantine(file.path, settings.landing_dir, settings.quarantine_dir)
        record = {
            "file_path": str(file.path.relative_to(settings.landing_dir)),
            "quarantine_path": str(target),
            "table_name": file.table,
            "interval_start": file.hour,
            "interval_end": file.hour + timedelta(hours=1),
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
        _record_files(conn, good, moved, run_id, now, settings.landing_dir)
        _record_loads(conn, start, end, good, bad, run_id, now)
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


def _record_files(
    conn: Connection,
    good: list[tuple[LandedFile, int]],
    refused: list[dict[str, Any]],
    run_id: str,
    now: datetime,
    landing_dir: Path,
) -> None:
    """Record refusals, and close the open refusals of every path that loaded now (a repaired file)."""
    conn.ensure_table(QUARANTINE_TABLE, QUARANTINE_SCHEMA)
    # Tables created before refusals could be resolved gain the columns (no-op once they exist).
    conn.execute_script(render_sql(SQL_DIR / "add_refusal_resolution.sql"))
    resolve = render_sql(SQL_DIR / "resolve_refused_files.sql")  # once: it runs for every file that loaded
    delete_refusal = render_sql(SQL_DIR / "delete_refused_file.sql", table=QUARANTINE_TABLE)
    for file, _ in good:
        conn.execute(
            resolve,
            {
                "table_name": file.table,
                "file_path": str(file.path.relative_to(landing_dir)),
                "resolved_at": now,
                "run_id": run_id,
            },
        )
    for record in refused:
        conn.execute(delete_refusal, record)
    if refused:
        rows = [{**r, "run_id": run_id, "quarantined_at": now} for r in refused]
        conn.insert_arrow(QUARANTINE_TABLE, pa.Table.from_pylist(rows, schema=QUARANTINE_SCHEMA))


def _record_loads(
    conn: Connection,
    start: datetime,
    end: datetime,
    good: list[tuple[LandedFile, int]],
    bad: list[tuple[LandedFile, str]],
    run_id: str,
    now: datetime,
) -> None:
    """Merge one ``raw.loads`` row per table and hour of the interval, hours without files included."""
    conn.ensure_table(LOADS_TABLE, LOADS_SCHEMA)
    conn.execute(
        render_sql("delete_partition.sql", table=LOADS_TABLE, column="hour_start"),
        {"start": start, "end": end},
    )
    rows = []
    for table in EVENT_SCHEMAS:
        for hour in hours_between(start, end):
            loaded = [n for f, n in good if f.table == table and f.hour == hour]
            refused = [f for f, _ in bad if f.table == table and f.hour == hour]
            rows.append(
                {
                    "table_name": table,
                    "hour_start": hour,
                    "run_id": run_id,
                    "files_loaded": len(loaded),
                    "files_refused": len(refused),
                    "rows_loaded": sum(loaded),
                    "loaded_at": now,
                }
            )
    conn.insert_arrow(LOADS_TABLE, pa.Table.from_pylist(rows, schema=LOADS_SCHEMA))
