"""The gateway's online features: Feast's online store read through :mod:`flywheel.feature_store.store`,
with a per-entity cache, and concurrent cache misses batched into one read (a read costs about 20 ms of
Python whatever its size: 1 pair or 100; a cached request about 1 ms).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from flywheel.artifacts.spec import FeatureSpec, encode
from flywheel.config import Settings
from flywheel.serving.batching import BatchedReader, Reader
from flywheel.serving.tensors import ITEM_PREFIX, USER_PREFIX, TensorLayout, serving_frame

#: Seconds an entity's features may be served from memory. Values change only when features are materialised
#: (hourly), which empties the cache at once (see ``registry``); this bounds the rest: a snapshot that expires
#: by the view's ttl (7 days) is served as missing at most this late.
MAX_AGE_SECONDS = 600.0
#: How often the registry file is checked for a re-materialisation.
CHECK_SECONDS = 0.5
#: Entities kept per kind (users, items); the least recently used leave first.
MAX_ENTITIES = 200_000


@dataclass
class _Entry:
    """One entity's features as read, and their encoding per model version (filled on first use)."""

    fetched: float
    values: dict[str, Any]
    encoded: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


class OnlineFeatures:
    """Feature rows, and the model's tensors, for one user and a slate of items.

    Users and items are cached separately: a feature view is keyed by one entity, so a user's features do
    not depend on the item they are read with (the marts name them ``user_*`` and ``item_*``; a service
    with any other column is read pair by pair, uncached). Each entity's encoding is cached beside its
    features, per model version, so a request whose entities were all seen costs no pandas at all.
    Unknown users and items get the feature store's defaults, exactly as in training sets
    (``flywheel.feature_store.defaults``).

    Feast's ``materialize`` rewrites its registry file after writing the online store, so a changed
    registry file empties the cache: a request after a re-materialisation reads the new values.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        reader: Reader | None = None,
        max_age: float = MAX_AGE_SECONDS,
        max_entities: int = MAX_ENTITIES,
    ) -> None:
        if reader is None:
            from flywheel.feature_store.store import online_features

            def reader(users: list[int], items: list[int]) -> dict[str, list[Any]]:
                return online_features(users, items, settings)

        self._read = BatchedReader(reader)
        # The file registry the feature store renders for this home (flywheel/feature_store/render.py).
        self.registry = settings.home / "feature_store" / "registry.db"
        self.max_age, self.max_entities = max_age, max_entities
        self._users: OrderedDict[int, _Entry] = OrderedDict()
        self._items: OrderedDict[int, _Entry] = OrderedDict()
        self._columns: tuple[list[str], list[str]] | None = None  # user and item feature names
        self._cacheable = True
        self._layouts: dict[str, TensorLayout | None] = {}
        self._lock = threading.Lock()
        self._generation = 0  # bumped by clear(): reads that began before it are not cached
        self._registry_mark: object = None
        self._checked = -math.inf

    def frame(self, user_id: int, item_ids: Sequence[int]) -> tuple[pd.DataFrame, bool]:
        """One row per item (in order) with every feature, plus the impression columns the spec reads
        (see :func:`serving_frame`); and whether the feature store was read (False: all from the cache)."""
        entries = self._entries(user_id, item_ids)
        if entries is None:
            return serving_frame(self._read([user_id] * len(item_ids), list(item_ids))), True
        user, items, read = entries
        return self._frame(user_id, item_ids, user, items), read

    def encoded(
        self, user_id: int, item_ids: Sequence[int], version: str, spec: FeatureSpec
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """``encode(frame(user_id, item_ids), spec, serving=True)`` for the model ``version``, assembled from
        the entities' cached encodings when they are all known; and whether the feature store was read."""
        entries = self._entries(user_id, item_ids)
        if entries is None:
            frame = serving_frame(self._read([user_id] * len(item_ids), list(item_ids)))
            return (*encode(frame, spec, serving=True), True)
        user, items, read = entries
        if version not in self._layouts:
            self._layouts[version] = TensorLayout.of(spec)
        layout = self._layouts[version]
        if (
            layout is not None
            and version in user.encoded
            and all(version in e.encoded for e in items.values())
        ):
            return (
                *layout.assemble(user.encoded[version], [items[i].encoded[version] for i in item_ids]),
                read,
            )
        sparse, dense = encode(self._frame(user_id, item_ids, user, items), spec, serving=True)
        if layout is not None:
            user.encoded[version] = layout.part("user", sparse, dense, 0)
            for row, item in enumerate(item_ids):
                items[item].encoded.setdefault(version, layout.part("item", sparse, dense, row))
        return sparse, dense, read

    def _entries(
        self, user_id: int, item_ids: Sequence[int]
    ) -> tuple[_Entry, dict[int, _Entry], bool] | None:
        """The user's and the items' entries, read from the feature store when missing or stale; None
        when the service's columns cannot be cached per entity."""
        self._expire_on_materialisation()
        now = time.monotonic()
        with self._lock:
            generation = self._generation
            user = self._fresh(self._users, user_id, now)
            known = {i: self._fresh(self._items, i, now) for i in dict.fromkeys(item_ids)}
        missing = [i for i, entry in known.items() if entry is None]
        read = user is None or bool(missing)
        if read and self._cacheable:
            fetch = missing or [item_ids[0]]
            columns = self._read([user_id] * len(fetch), fetch)
            if self._split(columns):
                user_names, item_names = self._columns or ([], [])
                user = _Entry(now, {name: columns[name][0] for name in user_names})
                fetched = {
                    item: _Entry(now, {name: columns[name][k] for name in item_names})
                    for k, item in enumerate(fetch)
                }
                known.update(fetched)
                with self._lock:
                    if generation == self._generation:  # not read from before a re-materialisation
                        self._put(self._users, user_id, user)
                        for item, entry in fetched.items():
                            self._put(self._items, item, entry)
        if not self._cacheable:
            return None
        assert user is not None
        return user, known, read  # type: ignore[return-value]

    def _frame(
        self, user_id: int, item_ids: Sequence[int], user: _Entry, items: dict[int, _Entry]
    ) -> pd.DataFrame:
        assert self._columns is not None
        user_names, item_names = self._columns
        n = len(item_ids)
        data: dict[str, list[Any]] = {"user_id": [user_id] * n, "item_id": list(item_ids)}
        data.update({name: [user.values[name]] * n for name in user_names})
        data.update({name: [items[i].values[name] for i in item_ids] for name in item_names})
        return serving_frame(data)

    def clear(self) -> None:
        with self._lock:
            self._generation += 1
            self._users.clear()
            self._items.clear()

    def _split(self, columns: dict[str, list[Any]]) -> bool:
        """Learn which columns belong to users and which to items; False if some belong to neither."""
        if self._columns is None:
            names = [c for c in columns if c not in ("user_id", "item_id")]
            users = [c for c in names if c.startswith(USER_PREFIX)]
            items = [c for c in names if c.startswith(ITEM_PREFIX)]
            self._cacheable = len(users) + len(items) == len(names)
            self._columns = (users, items)
        return self._cacheable

    def _fresh(self, cache: OrderedDict[int, _Entry], key: int, now: float) -> _Entry | None:
        entry = cache.get(key)
        if entry is None or now - entry.fetched > self.max_age:
            return None
        cache.move_to_end(key)
        return entry

    def _put(self, cache: OrderedDict[int, _Entry], key: int, entry: _Entry) -> None:
        cache[key] = entry
        cache.move_to_end(key)
        while len(cache) > self.max_entities:
            cache.popitem(last=False)

    def _expire_on_materialisation(self) -> None:
        now = time.monotonic()
        if now - self._checked < CHECK_SECONDS:
            return
        self._checked = now
        try:
            stat = self.registry.stat()
            mark: object = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            mark = None
        if mark != self._registry_mark:
            self._registry_mark = mark
            self.clear()
