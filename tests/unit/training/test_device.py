"""The device the trainer picks, mixed precision only on CUDA, and batches that cover every row in order
whether they are cut in place or streamed from the host by a thread."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from flywheel.training.device import amp_dtype, batches, grad_scaler, pick_device, place, streamed

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")


@NO_CUDA
def test_without_cuda_training_runs_on_the_cpu_and_asking_for_cuda_says_why_not() -> None:
    assert pick_device() == torch.device("cpu")
    with pytest.raises(ValueError, match="CUDA is not available on this machine.*use cpu"):
        pick_device("cuda")


def test_the_cpu_trains_in_float32_without_loss_scaling() -> None:
    cpu = torch.device("cpu")
    assert amp_dtype(cpu) is None
    assert not grad_scaler(cpu, amp_dtype(cpu)).is_enabled()


def _rows(n: int) -> tuple[torch.Tensor, ...]:
    ids = np.arange(n, dtype=np.int64).reshape(-1, 1).repeat(3, axis=1)
    return place((ids, ids.astype(np.float32) / 10, (ids[:, 0] % 2).astype(np.float32)), torch.device("cpu"))


def test_streamed_batches_are_the_batches_cut_in_place() -> None:
    tensors = _rows(1003)
    order = torch.randperm(1003, generator=torch.Generator().manual_seed(0))
    cpu = torch.device("cpu")

    in_place = list(batches(tensors, order, 128, cpu))
    from_thread = list(streamed(tensors, order, 128, cpu))

    assert [len(b[0]) for b in in_place] == [128] * 7 + [107]
    assert len(from_thread) == len(in_place)
    for ours, theirs in zip(from_thread, in_place, strict=True):
        for a, b in zip(ours, theirs, strict=True):
            assert torch.equal(a, b)
    seen = torch.cat([b[0][:, 0] for b in from_thread])
    assert torch.equal(seen, order)  # every row once, in the epoch's order


def test_a_consumer_that_stops_early_does_not_leave_the_loader_thread_behind() -> None:
    import threading

    tensors = _rows(5000)
    stream = streamed(tensors, torch.arange(5000), 10, torch.device("cpu"))
    next(stream)
    stream.close()  # e.g. an exception in the training step
    assert not [t for t in threading.enumerate() if t.name == "flywheel-batches"]
