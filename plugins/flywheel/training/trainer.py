"""Training one configuration: epochs over the encoded training split, validation AUC and log loss after
each, early stopping with patience, and a state that checkpoints and resumes exactly.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from flywheel.artifacts.spec import LABEL, FeatureSpec, encode, fit_spec
from flywheel.training.dataset import time_split

#: Settings a single training run uses when no search chose them (also the search's first guess).
DEFAULT_PARAMS: dict[str, Any] = {
    "lr": 3e-3,
    "batch_size": 512,
    "embedding_dim": 16,
    "cross_layers": 2,
    "mlp_layers": 2,
    "mlp_width": 128,
    "dropout": 0.1,
    "optimizer": "adamw",
    "weight_decay": 1e-5,
}
VAL_FRACTION = 0.2
PATIENCE = 2


@dataclass(frozen=True)
class Split:
    sparse: np.ndarray
    dense: np.ndarray
    label: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class TrainingData:
    """Both splits, encoded with a spec fitted on the training split alone."""

    train: Split
    val: Split
    spec: FeatureSpec
    cutoff: str  # validation holds event_ts >= cutoff


def prepare_data(
    frame: pd.DataFrame, val_fraction: float = VAL_FRACTION, spec: FeatureSpec | None = None
) -> TrainingData:
    """Split by time and encode; with ``spec`` (a warm start: the champion's), encode with it instead of
    fitting one, so every input means to the weights what it meant when they were trained."""
    train_df, val_df, cutoff = time_split(frame, val_fraction)
    spec = spec or fit_spec(train_df)

    def split(part: pd.DataFrame) -> Split:
        sparse, dense = encode(part, spec)
        return Split(sparse, dense, part[LABEL].to_numpy(dtype=np.float32))

    return TrainingData(split(train_df), split(val_df), spec, str(cutoff))


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U, ties counted half); NaN without both classes."""
    labels = np.asarray(labels) > 0.5
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def log_loss(labels: np.ndarray, probs: np.ndarray) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64), 1e-7, 1 - 1e-7)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


@dataclass(frozen=True)
class EpochMetrics:
    epoch: int
    train_loss: float
    val_auc: float
    val_logloss: float
    samples_per_s: float
    best_val_auc: float
    best_epoch: int

    def as_dict(self) -> dict[str, float]:
        return dict(self.__dict__)


class Trainer:
    """One model and its optimiser; ``run_epoch`` trains and validates, ``state_dict`` checkpoints it all."""

    def __init__(
        self,
        data: TrainingData,
        params: Mapping[str, Any],
        seed: int = 0,
        device: Any = None,
        initial_weights: Mapping[str, Any] | None = None,
    ) -> None:
        """``device``: ``cpu``, ``cuda``... (default: CUDA when present); ``initial_weights``: a state dict to
        start from instead of a random initialisation (a warm start from the model in service)."""
        import torch

        from flywheel.training.device import amp_dtype, grad_scaler, pick_device, place
        from flywheel.training.model import build_model

        self.params = {**DEFAULT_PARAMS, **params}
        self.data = data
        self.device = pick_device(device)
        self.amp = amp_dtype(self.device)
        torch.manual_seed(seed)
        self.generator = torch.Generator().manual_seed(seed)
        model = build_model(data.spec.cardinalities, data.train.dense.shape[1], self.params)
        if initial_weights is not None:
            model.load_state_dict(initial_weights)
        self.model = model.to(self.device)
        self.optimizer = _optimizer(self.model, self.params)
        self.scaler = grad_scaler(self.device, self.amp)
        self.epoch = 0
        self.best_auc = -math.inf
        self.best_epoch = 0
        self.best_state: dict[str, Any] | None = None
        self.history: list[dict[str, float]] = []
        self._tensors = {
            name: place((split.sparse, split.dense, split.label), self.device)
            for name, split in (("train", data.train), ("val", data.val))
        }

    @property
    def epochs_since_best(self) -> int:
        return self.epoch - self.best_epoch

    def run_epoch(self) -> EpochMetrics:
        import torch

        from flywheel.training.device import autocast, batches

        rows = len(self.data.train)
        order = torch.randperm(rows, generator=self.generator)
        self.model.train()
        started = time.perf_counter()
        total = torch.zeros((), device=self.device)  # summed on the device: no sync per batch on a GPU
        for sparse, dense, label in batches(
            self._tensors["train"], order, int(self.params["batch_size"]), self.device
        ):
            with autocast(self.device, self.amp):
                logits = self.model(sparse, dense)
            # The loss in float32 whatever the forward pass ran in (a no-op on the CPU).
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), label)
            self.optimizer.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.optimizer)
            self.scaler.update()
            total += loss.detach() * len(label)
        train_loss = float(total) / rows  # waits for the device, so the clock below is honest
        elapsed = time.perf_counter() - started
        probs = self.predict(*self._tensors["val"][:2])
        val_label = self.data.val.label
        self.epoch += 1
        auc = roc_auc(val_label, probs)
        if auc > self.best_auc:
            self.best_auc, self.best_epoch = auc, self.epoch
            self.best_state = {k: v.detach().to("cpu").clone() for k, v in self.model.state_dict().items()}
        metrics = EpochMetrics(
            epoch=self.epoch,
            train_loss=train_loss,
            val_auc=auc,
            val_logloss=log_loss(val_label, probs),
            samples_per_s=rows / elapsed if elapsed > 0 else float("inf"),
            best_val_auc=self.best_auc,
            best_epoch=self.best_epoch,
        )
        self.history.append(metrics.as_dict())
        return metrics

    def predict(self, sparse: Any, dense: Any, batch: int = 8192) -> np.ndarray:
        """Click probabilities for encoded rows (tensors or arrays), with the current weights."""
        import torch

        from flywheel.training.device import autocast

        self.model.eval()
        out = []
        with torch.no_grad():
            for start in range(0, len(sparse), batch):
                s = torch.as_tensor(sparse[start : start + batch]).to(self.device, non_blocking=True)
                d = torch.as_tensor(dense[start : start + batch]).to(self.device, non_blocking=True)
                with autocast(self.device, self.amp):
                    logits = self.model(s, d)
                out.append(torch.sigmoid(logits.float()).cpu().numpy())
        return np.concatenate(out) if out else np.empty(0, dtype=np.float32)

    def best_model(self) -> Any:
        """The network with the weights of its best validation epoch (on the CPU)."""
        from flywheel.training.model import build_model

        model = build_model(self.data.spec.cardinalities, self.data.train.dense.shape[1], self.params)
        model.load_state_dict(self.best_state if self.best_state is not None else self.model.state_dict())
        return model.eval()

    def state_dict(self) -> dict[str, Any]:
        import torch

        return {
            # Dropout draws from the global generators: without them a resumed epoch would differ.
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
            "params": self.params,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict(),
            "generator": self.generator.get_state(),
            "epoch": self.epoch,
            "best_auc": self.best_auc,
            "best_epoch": self.best_epoch,
            "best_state": self.best_state,
            "history": self.history,
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        import torch

        torch.set_rng_state(state["torch_rng"])
        if state.get("cuda_rng") is not None and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        self.generator.set_state(state["generator"])
        self.epoch, self.best_auc, self.best_epoch = state["epoch"], state["best_auc"], state["best_epoch"]
        self.best_state, self.history = state["best_state"], list(state["history"])


def _optimizer(model: Any, params: Mapping[str, Any]) -> Any:
    import torch

    name, lr, wd = str(params["optimizer"]).lower(), float(params["lr"]), float(params["weight_decay"])
    if name == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=wd)
    if name == "sgd":
        return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=wd)
    raise ValueError(f"unknown optimizer {params['optimizer']!r}: use adamw, adam or sgd")


def fit(
    data: TrainingData,
    params: Mapping[str, Any] | None = None,
    max_epochs: int = 10,
    patience: int = PATIENCE,
    seed: int = 0,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
    device: Any = None,
    initial_weights: Mapping[str, Any] | None = None,
) -> Trainer:
    """Train until ``max_epochs`` or ``patience`` epochs without a better validation AUC."""
    trainer = Trainer(data, params or {}, seed=seed, device=device, initial_weights=initial_weights)
    while trainer.epoch < max_epochs and trainer.epochs_since_best < patience:
        metrics = trainer.run_epoch()
        if on_epoch is not None:
            on_epoch(metrics)
    return trainer
