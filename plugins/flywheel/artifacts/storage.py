"""Datasets and artifacts by URI through fsspec: plain paths (the default) on the local disk, ``s3://``
through s3fs, so the worker and the trainer pod address the same objects by the same string.

An S3-compatible endpoint other than AWS (MinIO, moto) comes from ``AWS_ENDPOINT_URL``, read by botocore.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def is_local(uri: str | os.PathLike[str]) -> bool:
    """A plain path or a ``file://`` URI (everything else names an object store)."""
    return "://" not in str(uri) or str(uri).startswith("file://")


def resolve(uri: str | os.PathLike[str]) -> tuple[Any, str]:
    """The fsspec filesystem and the path within it of a path, ``file://`` URI or object store URI."""
    import fsspec

    text = str(uri)
    if is_local(text):
        path = Path(text.removeprefix("file://")).expanduser().resolve()
        return fsspec.filesystem("file"), str(path)
    try:
        filesystem, path = fsspec.core.url_to_fs(text)
    except ImportError as exc:  # fsspec names the missing package (s3fs, gcsfs, ...)
        raise ValueError(f"cannot open {text}: {exc}") from exc
    # Another process (the trainer, the pod) may have written here since this instance listed it.
    filesystem.invalidate_cache()
    return filesystem, path


def local_path(uri: str | os.PathLike[str]) -> Path:
    """The local path of a path or ``file://`` URI."""
    if not is_local(uri):
        raise ValueError(f"{uri} is not a local path")
    return Path(resolve(uri)[1])


def join(root: str | os.PathLike[str], *parts: str) -> Path | str:
    """``root/parts``: a ``Path`` for a local root (as before URIs), a URI string for an object store."""
    if is_local(root):
        return Path(str(root).removeprefix("file://")).joinpath(*parts)
    return "/".join([str(root).rstrip("/"), *parts])


def uri_of(filesystem: Any, path: str, like: str | os.PathLike[str]) -> str:
    """The URI a caller passes back to :func:`resolve`: a plain path if ``like`` was one."""
    return path if is_local(like) else filesystem.unstrip_protocol(path)


def exists(uri: str | os.PathLike[str]) -> bool:
    filesystem, path = resolve(uri)
    return filesystem.exists(path)


def tune_storage(uri: str) -> tuple[str, Any]:
    """``(storage_path, storage_filesystem)`` for Ray Tune: the same fsspec filesystem (and endpoint) as
    the dataset's, wrapped for pyarrow; ``None`` lets Ray use the local disk."""
    if is_local(uri):
        return str(local_path(uri)), None
    from pyarrow.fs import FSSpecHandler, PyFileSystem

    filesystem, path = resolve(uri)
    return path, PyFileSystem(FSSpecHandler(filesystem))
