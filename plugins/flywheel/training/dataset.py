"""Training sets: reading them by URI, refusing ones a click model cannot learn from, the time-based
validation split, and content-addressed snapshots whose name is the data version.
"""

from __future__ import annotations

import hashlib
import os
import uuid

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from flywheel.artifacts.storage import is_local, local_path, resolve, uri_of

__all__ = ["is_local", "local_path", "resolve"]  # re-exported: callers address sets by URI through here

#: Columns a training set must carry beyond the features the spec reads.
KEY_COLUMNS = ("impression_id", "event_ts", "label")
SNAPSHOT_FILE = "training_set.parquet"


class TrainingDataError(ValueError):
    """The training set cannot train a model; the message says which set, what is wrong and what to do."""


def load_training_set(uri: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a training set (one Parquet file, or a folder of them) from a path or URI."""
    fs, path = resolve(uri)
    if not fs.exists(path):
        raise TrainingDataError(f"training set {uri} does not exist; pass the URI the snapshot step returned")
    return pq.read_table(path, filesystem=fs).to_pandas()


def check_training_set(frame: pd.DataFrame, source: str) -> None:
    """Raise ``TrainingDataError`` unless ``frame`` has rows of both labels and the key columns."""
    missing = [c for c in KEY_COLUMNS if c not in frame.columns]
    if missing:
        raise TrainingDataError(f"training set {source} lacks column(s) {', '.join(missing)}")
    if len(frame) == 0:
        raise TrainingDataError(
            f"training set has 0 rows for {source}: nothing to train on; check that the feature build "
            "covered this interval and that events were ingested"
        )
    counts = frame["label"].value_counts()
    if len(counts) < 2:
        only = int(counts.index[0])
        raise TrainingDataError(
            f"training set has only label={only} ({len(frame):,} rows) for {source}: cannot train a click "
            "model; widen the training window or check the click join"
        )


def time_split(frame: pd.DataFrame, val_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Split at the ``1 - val_fraction`` quantile of ``event_ts``: validation is the most recent rows.

    Never random: a random split leaks the future into training and flatters the validation AUC.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    ts = pd.to_datetime(frame["event_ts"])
    cutoff = ts.quantile(1.0 - val_fraction)
    train, val = frame[ts < cutoff], frame[ts >= cutoff]
    for name, part in (("training", train), ("validation", val)):
        if part["label"].nunique() < 2:
            raise TrainingDataError(
                f"the {name} split (event_ts {'before' if name == 'training' else 'from'} {cutoff}, "
                f"{len(part):,} rows) has only one label: it needs clicks and non-clicks; "
                "use a longer training window"
            )
    return train.reset_index(drop=True), val.reset_index(drop=True), cutoff


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns by name, timestamps in microseconds, rows by ``impression_id`` (then by content)."""
    out = frame[sorted(frame.columns)].copy()
    for name in out.columns:
        if pd.api.types.is_datetime64_any_dtype(out[name]):
            out[name] = out[name].astype("datetime64[us]")
        elif isinstance(out[name].dtype, pd.CategoricalDtype) or out[name].dtype == "string":
            out[name] = out[name].astype(object)
    row_hash = pd.util.hash_pandas_object(out, index=False)
    order = pd.DataFrame({"id": out["impression_id"].astype(str).to_numpy(), "h": row_hash.to_numpy()})
    return out.iloc[order.sort_values(["id", "h"], kind="stable").index].reset_index(drop=True)


def data_version(frame: pd.DataFrame) -> str:
    """A content hash of the rows: the same rows in any order (and any column order) give the same version."""
    canonical = _canonical(frame)
    digest = hashlib.sha256()
    digest.update(repr([(c, str(canonical[c].dtype)) for c in canonical.columns]).encode())
    digest.update(pd.util.hash_pandas_object(canonical, index=False).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def snapshot_training_set(frame: pd.DataFrame, artifacts_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """Write ``frame`` once under ``<artifacts>/datasets/<data_version>/`` and return ``(uri, data_version)``.

    Rows are stored in canonical order, so a rerun with the same rows finds the snapshot and writes nothing.
    """
    version = data_version(frame)
    fs, root = resolve(artifacts_dir)
    folder = f"{root.rstrip('/')}/datasets/{version}"
    target = f"{folder}/{SNAPSHOT_FILE}"
    if not fs.exists(target):
        table = pa.Table.from_pandas(_canonical(frame), preserve_index=False)
        if is_local(artifacts_dir):
            fs.makedirs(folder, exist_ok=True)
            scratch = f"{folder}/.{SNAPSHOT_FILE}.{uuid.uuid4().hex}.tmp"
            pq.write_table(table, scratch, compression="zstd")
            os.replace(scratch, target)
        else:
            # An object appears whole when its upload completes: no scratch object to rename.
            with fs.open(target, "wb") as sink:
                pq.write_table(table, sink, compression="zstd")
    return uri_of(fs, target, artifacts_dir), version
