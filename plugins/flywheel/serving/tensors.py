"""How online features become a model's input tensors at serving time: the frame ``encode`` reads, and which
tensor columns come from the user and which from the item (a request is assembled from per-entity parts).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flywheel.artifacts.spec import POSITION, FeatureSpec

USER_PREFIX, ITEM_PREFIX = "user_", "item_"
#: The impression's own columns a model reads, which serving takes from the item (see serving_frame).
IMPRESSION_COLUMNS = ("category", "price")


def serving_frame(columns: dict[str, list[Any]]) -> pd.DataFrame:
    """The features as a frame, with the impression's own columns the model was trained on.

    A training row's ``category`` and ``price`` are the item's as shown in that impression; at serving
    time they are the item's latest known ones (``item_category``, ``item_price``). An item without a
    snapshot has no known price (``item_price`` 0): ``price`` is left missing, so the feature spec fills it
    with the training median, as it does for any missing price.
    """
    frame = pd.DataFrame(columns)
    if "item_category" in frame:
        frame["category"] = frame["item_category"]
    if "item_price" in frame:
        price = pd.to_numeric(frame["item_price"], errors="coerce")
        frame["price"] = price.where(price > 0)
    return frame


@dataclass(frozen=True)
class TensorLayout:
    """Which columns of a spec's ``sparse`` and ``dense`` tensors come from the user, the item, or neither
    (the position, fixed at serving). ``encode`` computes every column from one input column, row by row,
    so a request's tensors can be assembled from each entity's encoded part."""

    user_sparse: np.ndarray
    item_sparse: np.ndarray
    user_dense: np.ndarray
    item_dense: np.ndarray
    position: int | None
    serving_position: int
    shape: tuple[int, int]

    @classmethod
    def of(cls, spec: FeatureSpec) -> TensorLayout | None:
        sparse, dense = _owners(spec.sparse_columns), _owners(spec.dense_columns)
        if None in sparse.values() or None in dense.values() or "position" in dense.values():
            return None  # a column neither entity owns: encode each request whole

        def index(owners: dict[str, str | None], who: str) -> np.ndarray:
            return np.array([k for k, o in enumerate(owners.values()) if o == who], dtype=np.int64)

        positions = [k for k, o in enumerate(sparse.values()) if o == "position"]
        return cls(
            index(sparse, "user"),
            index(sparse, "item"),
            index(dense, "user"),
            index(dense, "item"),
            positions[0] if positions else None,
            spec.serving_position,
            (len(sparse), len(dense)),
        )

    def part(
        self, who: str, sparse: np.ndarray, dense: np.ndarray, row: int
    ) -> tuple[np.ndarray, np.ndarray]:
        columns = (
            (self.user_sparse, self.user_dense) if who == "user" else (self.item_sparse, self.item_dense)
        )
        return sparse[row, columns[0]].copy(), dense[row, columns[1]].copy()

    def assemble(
        self, user: tuple[np.ndarray, np.ndarray], items: list[tuple[np.ndarray, np.ndarray]]
    ) -> tuple[np.ndarray, np.ndarray]:
        n = len(items)
        sparse = np.empty((n, self.shape[0]), dtype=np.int64)
        dense = np.empty((n, self.shape[1]), dtype=np.float32)
        sparse[:, self.user_sparse], dense[:, self.user_dense] = user
        sparse[:, self.item_sparse] = np.stack([part[0] for part in items])
        dense[:, self.item_dense] = np.stack([part[1] for part in items])
        if self.position is not None:
            sparse[:, self.position] = self.serving_position
        return sparse, dense


def _owners(columns: list[str]) -> dict[str, str | None]:
    def owner(name: str) -> str | None:
        if name == "user_id" or name.startswith(USER_PREFIX):
            return "user"
        if name == "item_id" or name.startswith(ITEM_PREFIX) or name in IMPRESSION_COLUMNS:
            return "item"
        return "position" if name == POSITION else None

    return {name: owner(name) for name in columns}
