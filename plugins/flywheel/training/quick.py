"""A small model in seconds, without a search: for tests, benchmarks and drills that need a real exported
model (``model.pt`` and ``feature_spec.json``) but not a tuned one."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def train_quick_model(
    frame: Any, folder: Path, *, shuffle: bool = False, epochs: int = 4, seed: int = 0
) -> Path:
    """A small DCN fitted by a few epochs of Adam on ``frame`` (a training set with ``label``), exported to
    ``folder`` as training exports it; ``shuffle`` permutes the labels (a model that learned nothing)."""
    import numpy as np
    import torch

    from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE
    from flywheel.artifacts.spec import encode, fit_spec
    from flywheel.training.model import build_model, export_torchscript

    torch.manual_seed(seed)
    spec = fit_spec(frame, id_buckets={"user_id": 512, "item_id": 256})
    sparse, dense = (torch.from_numpy(a) for a in encode(frame, spec))
    labels = frame["label"].to_numpy(dtype=np.float32)
    if shuffle:
        labels = np.random.default_rng(seed).permutation(labels)
    y = torch.from_numpy(labels)
    model = build_model(spec.cardinalities, len(spec.numeric), {"mlp_width": 32, "embedding_dim": 8})
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    loss = torch.nn.BCEWithLogitsLoss()
    generator = torch.Generator().manual_seed(seed)
    model.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(y), generator=generator).split(512):
            optimiser.zero_grad()
            loss(model(sparse[batch], dense[batch]), y[batch]).backward()
            optimiser.step()
    folder.mkdir(parents=True)
    spec.save(folder / SPEC_FILE)
    export_torchscript(model.eval(), folder / MODEL_FILE)
    return folder
