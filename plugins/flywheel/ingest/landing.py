"""Reading landed Parquet files strictly, and moving the ones that fail into quarantine (never deleting)."""

from __future__ import annotations

import filecmp
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN


class BadFile(ValueError):
    """A landed file that cannot be loaded; the message is the reason recorded in quarantine."""


@dataclass(frozen=True)
class LandedFile:
    """One file of one table in the landing zone, for the hour it is filed under."""

    table: str
    hour: datetime
    path: Path


def read_landed(file: LandedFile) -> tuple[pa.Table, list[str]]:
    """Read a file and conform it to its table's schema, or raise ``BadFile`` saying why not.

    Returns the conformed rows and the names of the extra columns dropped (producers may add fields
    before the warehouse does; the caller warns). Missing columns, values that do not cast safely,
    and events outside the file's hour are refused.
    """
    expected = EVENT_SCHEMAS[file.table]
    try:
        table = pq.read_table(file.path)
    except Exception as exc:  # pyarrow raises several types for damaged files
        raise BadFile(f"unreadable Parquet file: {type(exc).__name__}: {exc}") from exc
    missing = [name for name in expected.names if name not in table.column_names]
    if missing:
        raise BadFile(
            f"missing column(s) {', '.join(missing)}; {file.table} files need {', '.join(expected.names)}"
        )
    columns = []
    for target in expected:
        column = table.column(target.name)
        try:
            columns.append(column.cast(target.type, safe=True))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
            raise BadFile(
                f"column {target.name} has type {column.type}, which does not cast to {target.type}: {exc}"
            ) from exc
    conformed = pa.Table.from_arrays(columns, schema=expected)
    _check_hour(conformed, file)
    return conformed, [name for name in table.column_names if name not in expected.names]


def _check_hour(table: pa.Table, file: LandedFile) -> None:
    # A row outside its file's hour would escape the partition swap and duplicate on every rerun.
    ts = table.column(PARTITION_COLUMN)
    nulls = ts.null_count
    if nulls:
        raise BadFile(f"{nulls} row(s) have no {PARTITION_COLUMN}")
    if table.num_rows == 0:
        return
    start, end = file.hour, file.hour + timedelta(hours=1)
    low, high = pc.min(ts).as_py(), pc.max(ts).as_py()
    if low < start or high >= end:
        raise BadFile(
            f"{PARTITION_COLUMN} spans {low}..{high}, outside the file's hour [{start}, {end}); "
            "land each event under the hour of its timestamp"
        )


def copy_to_quarantine(path: Path, landing_dir: Path, quarantine_dir: Path) -> Path:
    """Copy a landed file to the same relative place under ``quarantine_dir``; return where it went.

    The caller removes the original only once the quarantine record is committed. A different file
    already quarantined under that name is kept by giving the newcomer a suffix: no bytes are lost.
    """
    relative = path.relative_to(landing_dir)
    target = quarantine_dir / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 1
    while target.exists() and not filecmp.cmp(path, target, shallow=False):
        target = target.with_name(f"{relative.stem}.{n}{relative.suffix}")
        n += 1
    if not target.exists():
        tmp = target.with_name(target.name + ".partial")
        shutil.copy2(path, tmp)
        tmp.replace(target)
    return target
