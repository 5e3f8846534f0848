"""Writing simulated events to the landing zone: one Parquet file per table and hour, replaced on rerun."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.events import EVENT_SCHEMAS, hour_dir
from flywheel.simulate.config import SimulationConfig
from flywheel.simulate.events import HourBatch, generate_events

#: The simulator's file name in every hour folder; fixed, so a rerun replaces rather than adds.
FILE_NAME = "part-sim.parquet"


def simulate(cfg: SimulationConfig, landing_dir: Path) -> dict[str, int]:
    """Simulate ``cfg.hours`` hours of traffic into ``landing_dir`` and return what was written.

    The same config writes the same files with the same bytes, so running it twice changes nothing.
    Late clicks and orders of the last hour land in the hour after it.
    """
    counts = {"impressions": 0, "clicks": 0, "orders": 0, "files": 0, "hours": cfg.hours}
    for batch in generate_events(cfg):
        write_batch(batch, Path(landing_dir))
        counts[batch.table] += batch.data.num_rows
        counts["files"] += 1
    return counts


def write_batch(batch: HourBatch, landing_dir: Path) -> Path:
    """Write one table's events of one hour to its landing file, atomically; return the file's path."""
    if batch.data.schema != EVENT_SCHEMAS[batch.table]:
        raise ValueError(
            f"{batch.table} batch for {batch.hour:%Y-%m-%d %H}:00 has schema {batch.data.schema}, "
            f"expected {EVENT_SCHEMAS[batch.table]}"
        )
    folder = hour_dir(landing_dir, batch.table, batch.hour)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / FILE_NAME
    # Ingest reads *.parquet: write beside it under a name it skips, then swap, so no reader sees half a file.
    scratch = folder / f".{FILE_NAME}.tmp"
    pq.write_table(_single_chunk(batch.data), scratch, compression="zstd")
    os.replace(scratch, target)
    return target


def _single_chunk(table: pa.Table) -> pa.Table:
    # Concatenated hours arrive in several chunks; one row group keeps bytes independent of chunking.
    return table.combine_chunks()
