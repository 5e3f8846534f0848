"""The page's last good read of the warehouse. While DuckDB's one writer (a running task) holds the file, the
page answers from it and says how old it is, instead of waiting for the task or making the task wait."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from flywheel.warehouse.base import WarehouseBusy

log = logging.getLogger(__name__)


class Unavailable(RuntimeError):
    """The warehouse cannot be read now and no read has succeeded yet; the message says why."""


class Snapshots:
    """Reads through ``read`` at most once every ``refresh_s`` seconds (page loads in between share the last
    read, so many open tabs do not keep a writer waiting), and falls back to the last good read when the
    warehouse is busy or unreachable."""

    def __init__(self, read: Callable[[], dict[str, Any]], refresh_s: float) -> None:
        self._read = read
        self.refresh_s = refresh_s
        # One read at a time: concurrent requests wait for it rather than each knocking on the file.
        self._lock = threading.Lock()
        self._data: dict[str, Any] | None = None
        self._as_of: str | None = None
        self._read_at = -float("inf")

    def get(self) -> dict[str, Any]:
        """The sections with ``as_of`` (when they were read, UTC) and ``stale`` (None when fresh, else why
        the warehouse could not be read and how old the data is); :class:`Unavailable` with none to show."""
        with self._lock:
            if self._data is not None and time.monotonic() - self._read_at < self.refresh_s:
                return self._view(None)
            try:
                data = self._read()
            except WarehouseBusy:
                return self._fallback("warehouse busy")
            except Exception as exc:  # a down PostgreSQL, a schema a stage has not migrated yet, ...
                log.warning("the Flywheel page could not read the warehouse: %s", exc, exc_info=True)
                return self._fallback(f"warehouse unavailable ({exc})")
            self._data = data
            self._as_of = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
            self._read_at = time.monotonic()
            return self._view(None)

    def _fallback(self, why: str) -> dict[str, Any]:
        if self._data is None:
            raise Unavailable(
                f"{why}, and the page has not read it yet: it retries on its own in a few seconds"
            )
        return self._view(f"{why}; data as of {self._as_of}")

    def _view(self, stale: str | None) -> dict[str, Any]:
        return {**(self._data or {}), "as_of": self._as_of, "stale": stale}
