"""Concurrent reads batched into one call: while a read runs, the pairs other threads ask for wait and go
together in the next, so a store with a high cost per call (Feast through flywheel.feature_store: about 20 ms
of Python, whatever the number of rows) is called once per batch, not once per request.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

Reader = Callable[[list[int], list[int]], dict[str, list[Any]]]


class _Read:
    """One caller's pairs waiting for a batched read."""

    def __init__(self, users: list[int], items: list[int]) -> None:
        self.users, self.items = users, items
        self.done = threading.Event()
        self.lead = False  # woken to read for everyone waiting, not with a result
        self.result: dict[str, list[Any]] | None = None
        self.error: BaseException | None = None


class BatchedReader:
    """Calls ``reader`` one batch at a time: pairs asked for while a read runs wait and go together in the
    next, so under load the feature store sees one call per ~20 ms, not one per request (and Feast's
    SQLite online store, one connection shared by threads, is never used by two at once)."""

    def __init__(self, reader: Reader) -> None:
        self._reader = reader
        self._lock = threading.Lock()
        self._queue: list[_Read] = []
        self._busy = False

    def __call__(self, users: list[int], items: list[int]) -> dict[str, list[Any]]:
        job = _Read(users, items)
        with self._lock:
            self._queue.append(job)
            lead = not self._busy
            self._busy = True
        if not lead:
            job.done.wait()
            if not job.lead:
                return _outcome(job)
        with self._lock:
            batch, self._queue = self._queue, []
        try:
            columns = self._reader([u for j in batch for u in j.users], [i for j in batch for i in j.items])
            start = 0
            for j in batch:
                j.result = {name: values[start : start + len(j.users)] for name, values in columns.items()}
                start += len(j.users)
        except BaseException as exc:  # every waiter gets the error, and the next batch still runs
            for j in batch:
                j.error = exc
        finally:
            with self._lock:
                if self._queue:  # hand the queue to a waiter: it reads the next batch
                    self._queue[0].lead = True
                    self._queue[0].done.set()
                else:
                    self._busy = False
            for j in batch:
                if j is not job:
                    j.done.set()
        return _outcome(job)


def _outcome(job: _Read) -> dict[str, list[Any]]:
    if job.error is not None:
        raise job.error
    assert job.result is not None
    return job.result
