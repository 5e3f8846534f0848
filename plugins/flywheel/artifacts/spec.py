"""The feature spec: how a training or serving row becomes the model's two tensors (ids and dense values).

It is fitted on the training split only, saved as ``feature_spec.json`` beside the model, and is all that
serving needs: :func:`encode` is the reference implementation of every rule written in the JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FORMAT = "flywheel.feature_spec/1"
LABEL = "label"

#: Hash buckets per id column: ids unseen in training still land in a (shared) learned row.
ID_BUCKETS: dict[str, int] = {"user_id": 32_768, "item_id": 16_384}
CATEGORICAL: tuple[str, ...] = ("category", "user_top_category", "item_category")
POSITION = "position"
#: Positions above this share one embedding row; serving scores at ``SERVING_POSITION`` (top slot).
MAX_POSITION = 20
SERVING_POSITION = 1
HOURS_CAP = 168.0

COUNTS = (
    "user_impressions_1h", "user_clicks_1h", "user_impressions_24h", "user_clicks_24h",
    "user_impressions_7d", "user_clicks_7d", "item_impressions_24h", "item_clicks_24h",
    "item_impressions_7d", "item_clicks_7d",
)  # fmt: skip
RATES = (
    "user_ctr_1h", "user_ctr_24h", "user_ctr_7d", "user_top_category_share",
    "item_ctr_24h", "item_popularity_24h", "item_ctr_7d",
)  # fmt: skip
PRICES = ("price", "item_price")

# splitmix64 finaliser: a fixed, documented hash that any language can reproduce with 64-bit wrapping.
SPLITMIX_INCREMENT = 0x9E3779B97F4A7C15
SPLITMIX_MUL1 = 0xBF58476D1CE4E5B9
SPLITMIX_MUL2 = 0x94D049BB133111EB


class FeatureSpecError(ValueError):
    """A frame does not fit the spec (missing columns, wrong spec format)."""


@dataclass(frozen=True)
class NumericFeature:
    """``(transform(clip(fillna(x, fill), clip_min, clip_max)) - mean) / std``, as float32."""

    name: str
    transform: str  # "log1p" or "identity"
    fill: float
    mean: float
    std: float
    clip_min: float = 0.0
    clip_max: float | None = None


@dataclass(frozen=True)
class FeatureSpec:
    """Everything needed to turn a feature row into ``sparse`` (int64) and ``dense`` (float32) tensors."""

    id_buckets: dict[str, int]
    vocabularies: dict[str, list[str]]  # index 0 is out-of-vocabulary / missing, then these in order
    numeric: list[NumericFeature]
    max_position: int = MAX_POSITION
    serving_position: int = SERVING_POSITION
    format: str = FORMAT
    hash: dict[str, Any] = field(
        default_factory=lambda: {
            "name": "splitmix64",
            "increment": hex(SPLITMIX_INCREMENT),  # hex strings: JSON readers lose 64-bit integers
            "multipliers": [hex(SPLITMIX_MUL1), hex(SPLITMIX_MUL2)],
            "shifts": [30, 27, 31],
            "bucket": "splitmix64(uint64(id)) % buckets",
        }
    )

    @property
    def sparse_columns(self) -> list[str]:
        """Columns of the ``sparse`` tensor, in order: hashed ids, categoricals, position."""
        return [*self.id_buckets, *self.vocabularies, POSITION]

    @property
    def dense_columns(self) -> list[str]:
        return [f.name for f in self.numeric]

    @property
    def cardinalities(self) -> list[int]:
        """Embedding table sizes, one per sparse column."""
        return [
            *self.id_buckets.values(),
            *(len(v) + 1 for v in self.vocabularies.values()),
            self.max_position + 1,
        ]

    @property
    def input_columns(self) -> list[str]:
        return [*self.sparse_columns, *self.dense_columns]

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["tensors"] = {
            "sparse": {"dtype": "int64", "columns": self.sparse_columns, "cardinalities": self.cardinalities},
            "dense": {"dtype": "float32", "columns": self.dense_columns},
            "output": {"name": "probability", "dtype": "float32", "shape": ["batch", 1]},
        }
        out["categorical_rule"] = "index = 1 + position of the value in vocabularies[name], else 0"
        out["position_rule"] = "clip(position, 0, max_position); serving uses serving_position"
        return out

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        if data.get("format") != FORMAT:
            raise FeatureSpecError(f"feature spec format {data.get('format')!r} is not {FORMAT!r}")
        return cls(
            id_buckets=dict(data["id_buckets"]),
            vocabularies={k: list(v) for k, v in data["vocabularies"].items()},
            numeric=[NumericFeature(**f) for f in data["numeric"]],
            max_position=int(data["max_position"]),
            serving_position=int(data["serving_position"]),
            hash=dict(data["hash"]),
        )

    @classmethod
    def load(cls, path: str | Path) -> FeatureSpec:
        return cls.from_dict(json.loads(Path(path).read_text()))


def splitmix64(values: np.ndarray) -> np.ndarray:
    """The splitmix64 finaliser of each value, as uint64 (wrapping arithmetic, like C)."""
    z = values.astype(np.int64).view(np.uint64) + np.uint64(SPLITMIX_INCREMENT)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(SPLITMIX_MUL1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(SPLITMIX_MUL2)
    return z ^ (z >> np.uint64(31))


def hash_bucket(values: np.ndarray, buckets: int) -> np.ndarray:
    return (splitmix64(values) % np.uint64(buckets)).astype(np.int64)


def _numeric_raw(column: pd.Series, feature: NumericFeature) -> np.ndarray:
    values = pd.to_numeric(column, errors="coerce").astype("float64").fillna(feature.fill).to_numpy()
    values = np.clip(values, feature.clip_min, feature.clip_max)
    return np.log1p(values) if feature.transform == "log1p" else values


def _numeric_template(name: str, column: pd.Series) -> NumericFeature:
    if name in COUNTS:
        return NumericFeature(name, "log1p", fill=0.0, mean=0.0, std=1.0)
    if name in PRICES:
        median = float(pd.to_numeric(column, errors="coerce").median())
        return NumericFeature(name, "log1p", fill=median if np.isfinite(median) else 0.0, mean=0.0, std=1.0)
    if name == "user_hours_since_last_click":
        return NumericFeature(name, "identity", fill=HOURS_CAP, mean=0.0, std=1.0, clip_max=HOURS_CAP)
    return NumericFeature(name, "identity", fill=0.0, mean=0.0, std=1.0, clip_max=1.0)


def fit_spec(train: pd.DataFrame, id_buckets: Mapping[str, int] | None = None) -> FeatureSpec:
    """Fit vocabularies, fill values and standardisation on the training split (never on validation)."""
    numeric_names = [*COUNTS, *RATES, *PRICES, "user_hours_since_last_click"]
    require_columns(train, [*(id_buckets or ID_BUCKETS), *CATEGORICAL, POSITION, *numeric_names])
    numeric = []
    for name in numeric_names:
        template = _numeric_template(name, train[name])
        raw = _numeric_raw(train[name], template)
        std = float(raw.std()) if raw.size else 1.0
        numeric.append(
            NumericFeature(
                **{
                    **asdict(template),
                    "mean": float(raw.mean()) if raw.size else 0.0,
                    "std": std if std > 1e-6 else 1.0,
                }
            )
        )
    vocabularies = {name: sorted(train[name].dropna().astype(str).unique().tolist()) for name in CATEGORICAL}
    return FeatureSpec(id_buckets=dict(id_buckets or ID_BUCKETS), vocabularies=vocabularies, numeric=numeric)


def require_columns(frame: pd.DataFrame, columns: Sequence[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise FeatureSpecError(
            f"feature frame lacks column(s) {', '.join(missing)}; it has {', '.join(map(str, frame.columns))}"
        )


def encode(frame: pd.DataFrame, spec: FeatureSpec, serving: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Turn rows into ``(sparse int64 [n, S], dense float32 [n, D])`` exactly as the model was trained.

    With ``serving=True`` the position column is optional and every row is scored at the top slot.
    """
    needed = [c for c in spec.input_columns if not (serving and c == POSITION)]
    require_columns(frame, needed)
    sparse = np.empty((len(frame), len(spec.sparse_columns)), dtype=np.int64)
    col = 0
    for name, buckets in spec.id_buckets.items():
        ids = pd.to_numeric(frame[name], errors="coerce").fillna(-1).astype("int64").to_numpy()
        sparse[:, col] = hash_bucket(ids, buckets)
        col += 1
    for name, vocab in spec.vocabularies.items():
        index = pd.Index(vocab)
        codes = index.get_indexer(frame[name].astype("string").fillna("\x00").astype(object))
        sparse[:, col] = codes + 1  # -1 (unseen) becomes 0, the out-of-vocabulary row
        col += 1
    if serving and POSITION not in frame.columns:
        sparse[:, col] = spec.serving_position
    else:
        position = pd.to_numeric(frame[POSITION], errors="coerce").fillna(spec.serving_position)
        sparse[:, col] = np.clip(position.astype("int64").to_numpy(), 0, spec.max_position)
    dense = np.empty((len(frame), len(spec.numeric)), dtype=np.float32)
    for j, feature in enumerate(spec.numeric):
        dense[:, j] = (_numeric_raw(frame[feature.name], feature) - feature.mean) / feature.std
    return sparse, dense
