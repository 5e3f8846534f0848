"""The click model: a small Deep & Cross Network (DCN-v2) over id/categorical embeddings and dense features.

The exported TorchScript module takes the two encoded tensors of ``feature_spec.json`` and returns
click probabilities shaped ``[batch, 1]``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flywheel.artifacts.folder import MODEL_FILE, SPEC_FILE
from flywheel.artifacts.spec import FeatureSpec

#: Hyperparameters that shape the network (the rest of a trial's config only shapes the optimiser).
ARCHITECTURE_KEYS = ("embedding_dim", "cross_layers", "mlp_layers", "mlp_width", "dropout")


class CrossLayer(nn.Module):
    """``x_{l+1} = x_0 * (W x_l + b) + x_l``: explicit feature crosses of growing degree."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = nn.Linear(width, width)

    def forward(self, x0: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x0 * self.linear(x) + x


class DCN(nn.Module):
    """Cross network and MLP side by side over ``[embeddings..., dense]``; returns logits ``[batch]``."""

    def __init__(
        self,
        cardinalities: Sequence[int],
        n_dense: int,
        embedding_dim: int = 16,
        cross_layers: int = 2,
        mlp_layers: int = 2,
        mlp_width: int = 128,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(int(c), int(embedding_dim)) for c in cardinalities)
        width = len(cardinalities) * int(embedding_dim) + int(n_dense)
        self.cross = nn.ModuleList(CrossLayer(width) for _ in range(int(cross_layers)))
        layers: list[nn.Module] = []
        in_dim = width
        for _ in range(int(mlp_layers)):
            layers += [nn.Linear(in_dim, int(mlp_width)), nn.ReLU(), nn.Dropout(float(dropout))]
            in_dim = int(mlp_width)
        self.mlp = nn.Sequential(*layers)
        self.head = nn.Linear(width + in_dim, 1)
        for embedding in self.embeddings:
            nn.init.normal_(embedding.weight, std=0.01)

    def forward(self, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        parts = [emb(sparse[:, i]) for i, emb in enumerate(self.embeddings)]
        parts.append(dense)
        x0 = torch.cat(parts, dim=1)
        x = x0
        for layer in self.cross:
            x = layer(x0, x)
        return self.head(torch.cat([x, self.mlp(x0)], dim=1)).squeeze(1)


class ClickScorer(nn.Module):
    """What serving runs: probabilities ``[batch, 1]`` from ``sparse`` int64 and ``dense`` float32."""

    def __init__(self, model: DCN) -> None:
        super().__init__()
        self.model = model

    def forward(self, sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.model(sparse, dense)).unsqueeze(1)


def build_model(cardinalities: Sequence[int], n_dense: int, params: Mapping[str, Any]) -> DCN:
    """A DCN shaped by the architecture keys of a trial's params (other keys are ignored)."""
    return DCN(cardinalities, n_dense, **{k: params[k] for k in ARCHITECTURE_KEYS if k in params})


def export_torchscript(model: DCN, path: str | Path) -> Path:
    """Save the model as a TorchScript ``ClickScorer`` on the CPU in float32, wherever and in whatever
    precision it trained (Triton moves it where it serves)."""
    scorer = ClickScorer(model).to(device="cpu", dtype=torch.float32).eval()
    with warnings.catch_warnings():
        # Deprecated in torch 2.13 in favour of torch.export, but Triton's libtorch backend loads TorchScript.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        scripted = torch.jit.script(scorer)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    scripted.save(str(tmp))
    tmp.replace(path)
    return path


def export_model(state: dict[str, Any], spec: FeatureSpec, model_dir: Path) -> Path:
    """Write ``model.pt`` (the weights of the best epoch) and ``feature_spec.json`` into ``model_dir``."""
    model_dir.mkdir(parents=True, exist_ok=True)
    model = build_model(spec.cardinalities, len(spec.numeric), state["params"])
    model.load_state_dict(state["best_state"] if state.get("best_state") is not None else state["model"])
    spec.save(model_dir / SPEC_FILE)
    return export_torchscript(model.eval(), model_dir / MODEL_FILE)
