"""The gateway's prediction log: rows buffered in memory and written as Parquet files into the landing zone
(``predictions/date=.../hour=.../``), where ``ingest_events`` loads them into ``raw.predictions``.

Each file is written under a name ingest skips and renamed into place, so no reader sees half a file.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN, hour_dir

log = logging.getLogger(__name__)

TABLE = "predictions"
SCHEMA = EVENT_SCHEMAS[TABLE]


class PredictionLogError(RuntimeError):
    """Rows could not be written (the message says how many wait in memory, and where they should go)."""


class PredictionLog:
    """A thread-safe, buffered writer of prediction rows.

    :meth:`append` only touches memory. A background thread (:meth:`start`) writes what was appended every
    ``flush_seconds``, one file per hour of ``event_ts``; :meth:`close` writes the rest. Rows a write fails
    on stay buffered and are written by the next flush: a full disk delays rows, it does not drop them.
    """

    def __init__(self, landing_dir: Path, flush_seconds: float, *, writer: str | None = None) -> None:
        if not flush_seconds > 0:
            raise ValueError(
                f"flush_seconds must be above 0 (FLYWHEEL_PREDICTION_FLUSH_SECONDS), got {flush_seconds}"
            )
        self.landing_dir = Path(landing_dir)
        self.flush_seconds = flush_seconds
        # Unique per process: several gateways (or restarts) never write the same file name.
        default = f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.writer = re.sub(r"[^A-Za-z0-9_.-]", "_", writer or default)
        self._buffer: dict[datetime, dict[str, list[Any]]] = {}
        self._rows = 0
        self._files = 0
        self._lock = threading.Lock()  # the buffer
        self._write_lock = threading.Lock()  # one flush at a time, in order
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def pending(self) -> int:
        """Rows appended and not written yet."""
        return self._rows

    @property
    def files_written(self) -> int:
        return self._files

    def start(self) -> PredictionLog:
        """Start the background flusher (idempotent)."""
        if self._thread is None and not self._closed:
            self._thread = threading.Thread(target=self._run, name="prediction-log-flusher", daemon=True)
            self._thread.start()
        return self

    def append(self, columns: Mapping[str, Sequence[Any]]) -> None:
        """Buffer rows given as columns (every column of ``raw.predictions``, equal lengths)."""
        missing = [name for name in SCHEMA.names if name not in columns]
        if missing:
            raise ValueError(
                f"prediction rows lack column(s) {', '.join(missing)}; need {', '.join(SCHEMA.names)}"
            )
        n = len(columns[PARTITION_COLUMN])
        if any(len(columns[name]) != n for name in SCHEMA.names):
            raise ValueError("prediction columns have different lengths: one value per row in each")
        hours = [ts.replace(minute=0, second=0, microsecond=0) for ts in columns[PARTITION_COLUMN]]
        with self._lock:
            if self._closed:
                raise PredictionLogError("the prediction log is closed: the gateway is shutting down")
            if len(set(hours)) == 1:
                self._extend(hours[0], {name: columns[name] for name in SCHEMA.names})
            else:
                for hour in sorted(set(hours)):
                    keep = [i for i, h in enumerate(hours) if h == hour]
                    self._extend(hour, {name: [columns[name][i] for i in keep] for name in SCHEMA.names})
            self._rows += n

    def _extend(self, hour: datetime, columns: Mapping[str, Sequence[Any]]) -> None:
        target = self._buffer.setdefault(hour, {name: [] for name in SCHEMA.names})
        for name in SCHEMA.names:
            target[name].extend(columns[name])

    def flush(self) -> list[Path]:
        """Write every buffered row now, one file per hour; returns the files written."""
        with self._write_lock:
            with self._lock:
                batches, self._buffer = self._buffer, {}
            written = []
            try:
                while batches:
                    hour = min(batches)
                    written.append(self._write(hour, batches[hour]))
                    rows = len(batches.pop(hour)[PARTITION_COLUMN])
                    with self._lock:
                        self._rows -= rows
            except Exception as exc:
                with self._lock:  # back in front of what arrived meanwhile, nothing lost
                    for hour, columns in batches.items():
                        later = self._buffer.pop(hour, None)
                        self._buffer[hour] = columns
                        if later:
                            self._extend(hour, later)
                raise PredictionLogError(
                    f"could not write prediction rows under {self.landing_dir / TABLE} "
                    f"({type(exc).__name__}: {exc}); {self._rows} row(s) stay in memory and the next flush "
                    "retries: free the disk or fix the landing zone's permissions"
                ) from exc
            return written

    def _write(self, hour: datetime, columns: dict[str, list[Any]]) -> Path:
        folder = hour_dir(self.landing_dir, TABLE, hour)
        folder.mkdir(parents=True, exist_ok=True)
        name = f"part-gateway-{self.writer}-{uuid.uuid4().hex[:8]}.parquet"
        target, scratch = folder / name, folder / f".{name}.tmp"  # ingest reads *.parquet only
        try:
            pq.write_table(pa.Table.from_pydict(columns, schema=SCHEMA), scratch, compression="zstd")
            os.replace(scratch, target)
            self._files += 1
        finally:
            scratch.unlink(missing_ok=True)
        return target

    def _run(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except PredictionLogError as exc:
                log.error("%s", exc)

    def close(self, timeout: float = 30.0) -> list[Path]:
        """Stop the flusher and write what is left; raises :class:`PredictionLogError` if rows remain."""
        with self._lock:
            self._closed = True
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        return self.flush()
