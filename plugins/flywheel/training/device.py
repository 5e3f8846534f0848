"""Where a model trains: the device, mixed precision on CUDA, and batches that reach the GPU without
stalling it. On the CPU nothing changes: float32, batches cut from the tensors as they are.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import torch

#: A split is copied to the GPU once when it takes at most this share of the free GPU memory (the model,
#: its optimiser and activations need the rest); a larger one streams from pinned host memory per batch.
RESIDENT_SHARE = 0.5
#: Batches the host prepares ahead of the GPU when a split streams.
PREFETCH_BATCHES = 4


def pick_device(name: str | torch.device | None = None) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``), or CUDA when the machine has it, else the CPU."""
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    chosen = torch.device(name)
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(name)!r} asked for, but CUDA is not available on this machine "
            f"(torch {torch.__version__}, CUDA build {torch.version.cuda}): use cpu, or leave it unset"
        )
    return chosen


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype: bfloat16 on GPUs that have it (no loss scaling needed), else float16 (with a
    ``GradScaler``); ``None`` on the CPU, which trains in float32 exactly as it always did."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def autocast(device: torch.device, dtype: torch.dtype | None) -> Any:
    """Mixed precision for the forward pass and the loss, or nothing at all without an AMP dtype."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def grad_scaler(device: torch.device, dtype: torch.dtype | None) -> torch.amp.GradScaler:
    """Loss scaling, on only for float16 (its small range underflows gradients); a no-op otherwise."""
    return torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)


def place(arrays: Sequence[Any], device: torch.device) -> tuple[torch.Tensor, ...]:
    """A split's arrays as tensors where batches are cut from them.

    CPU: the arrays as tensors (no copy). CUDA: pinned host tensors, copied to the GPU once (asynchronously)
    when they fit in ``RESIDENT_SHARE`` of its free memory: then a batch is an index on the GPU and the
    host never waits. Otherwise they stay pinned on the host and :func:`batches` streams them.
    """
    tensors = tuple(torch.as_tensor(a) for a in arrays)
    if device.type != "cuda":
        return tensors
    pinned = tuple(t.pin_memory() for t in tensors)
    free, _ = torch.cuda.mem_get_info(device)
    if sum(t.nbytes for t in pinned) <= RESIDENT_SHARE * free:
        return tuple(t.to(device, non_blocking=True) for t in pinned)
    return pinned


def batches(
    tensors: Sequence[torch.Tensor], order: torch.Tensor, size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, ...]]:
    """The rows of ``tensors`` in ``order``, ``size`` at a time, on ``device``.

    Tensors already on the device are indexed there. Host tensors bound for a GPU are gathered (and pinned)
    by a thread a few batches ahead, each batch copied with ``non_blocking=True`` so the copy overlaps the
    previous batch's compute.
    """
    if tensors[0].device.type == device.type:
        order = order.to(tensors[0].device)
        for start in range(0, len(order), size):
            idx = order[start : start + size]
            yield tuple(t[idx] for t in tensors)
        return
    yield from streamed(tensors, order.to("cpu"), size, device)


def streamed(
    tensors: Sequence[torch.Tensor], order: torch.Tensor, size: int, device: torch.device
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Host tensors' rows in ``order`` as batches on ``device``, gathered ``PREFETCH_BATCHES`` ahead by a
    thread (pinned when bound for a GPU)."""
    pin = device.type == "cuda"
    ready: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_BATCHES)
    stop = threading.Event()

    def produce() -> None:
        try:
            for start in range(0, len(order), size):
                if stop.is_set():
                    return
                idx = order[start : start + size]
                batch = tuple(t.index_select(0, idx) for t in tensors)
                ready.put(tuple(b.pin_memory() for b in batch) if pin else batch)
            ready.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            ready.put(exc)

    thread = threading.Thread(target=produce, name="flywheel-batches", daemon=True)
    thread.start()
    try:
        while (item := ready.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield tuple(t.to(device, non_blocking=True) for t in item)
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        thread.join()
