"""Warm starts: a run fine-tunes the model in service from its weights when its feature spec fits the new
training set, with a smaller search narrowed around that model's hyperparameters.
"""

from __future__ import annotations

import io
import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pandas as pd

from flywheel.artifacts.folder import METADATA_FILE, MODEL_FILE, SPEC_FILE
from flywheel.artifacts.spec import FeatureSpec, fit_spec
from flywheel.training.dataset import time_split
from flywheel.training.space import SearchSpace
from flywheel.training.trainer import DEFAULT_PARAMS

#: A warm search runs this share of the trial budget (rounded up): it only looks near a known good point.
WARM_BUDGET_SHARE = 0.5
#: Learning rates from the champion's / LR_SPAN up to the champion's: fine-tuning takes smaller steps.
LR_SPAN = 10.0
#: Weight decay from the champion's / WEIGHT_DECAY_SPAN to the champion's * WEIGHT_DECAY_SPAN.
WEIGHT_DECAY_SPAN = 3.0
#: Dropout within this much of the champion's.
DROPOUT_SPAN = 0.1


class WarmStartError(ValueError):
    """The model to start from cannot be read; the message names it and says what to do."""


@dataclass(frozen=True)
class Champion:
    """The model a warm start fine-tunes: its version, folder, full hyperparameters, spec and weights."""

    version: str
    artifact_uri: str
    params: dict[str, Any]
    spec: FeatureSpec
    weights: dict[str, Any]  # the DCN's state dict, on the CPU


def load_champion(artifact_uri: str, version: str) -> Champion:
    """Read a registered model folder (path or URI): ``metadata.json``'s params, ``feature_spec.json`` and
    the weights inside the TorchScript ``model.pt`` (what serving runs, so no training checkpoint is needed).
    """
    import torch

    from flywheel.artifacts.storage import resolve

    filesystem, root = resolve(artifact_uri)
    root = root.rstrip("/")
    missing = [n for n in (METADATA_FILE, SPEC_FILE, MODEL_FILE) if not filesystem.exists(f"{root}/{n}")]
    if missing:
        raise WarmStartError(
            f"model {version} at {artifact_uri} lacks {', '.join(missing)}: its folder was moved or removed; "
            "train cold (warm_start=false) or restore the folder"
        )
    metadata = json.loads(filesystem.cat_file(f"{root}/{METADATA_FILE}").decode())
    spec = FeatureSpec.from_dict(json.loads(filesystem.cat_file(f"{root}/{SPEC_FILE}").decode()))
    with warnings.catch_warnings():
        # Deprecated in torch 2.13 in favour of torch.export, but Triton's libtorch backend loads TorchScript.
        warnings.filterwarnings("ignore", category=DeprecationWarning, message=".*torch.jit")
        scripted = torch.jit.load(io.BytesIO(filesystem.cat_file(f"{root}/{MODEL_FILE}")), map_location="cpu")
    # ClickScorer holds the DCN as ``model``: its parameters are ``model.<name>``.
    weights = {k.removeprefix("model."): v.detach().clone().float() for k, v in scripted.state_dict().items()}
    params = {**DEFAULT_PARAMS, **metadata.get("params", {})}
    return Champion(version, artifact_uri, params, spec, weights)


def spec_mismatch(champion: FeatureSpec, fitted: FeatureSpec) -> str | None:
    """Why the champion's spec cannot encode the new training set the way a fresh fit would, or ``None``.

    Normalisation statistics may differ (the champion's are kept, so inputs mean what they meant to its
    weights), and vocabularies may grow (:func:`grow_vocabularies`); the layout may not: spec format, hashed
    id columns and buckets, categorical columns, numeric features and their transforms, positions.
    """
    if champion.format != fitted.format:
        return f"its feature spec has format {champion.format}, this trainer writes {fitted.format}"
    if champion.id_buckets != fitted.id_buckets:
        return f"its id hash buckets are {champion.id_buckets}, the new spec's {fitted.id_buckets}"
    if list(champion.vocabularies) != list(fitted.vocabularies):
        ours, theirs = list(champion.vocabularies), list(fitted.vocabularies)
        return f"it encodes categorical columns {ours}, the new training set {theirs}"
    ours = [(f.name, f.transform) for f in champion.numeric]
    theirs = [(f.name, f.transform) for f in fitted.numeric]
    if ours != theirs:
        return f"its numeric features are {ours}, the new spec's {theirs}"
    if (champion.max_position, champion.serving_position) != (fitted.max_position, fitted.serving_position):
        return "its position encoding differs from the new spec's"
    return None


def grow_vocabularies(champion: Champion, fitted: FeatureSpec) -> tuple[Champion, dict[str, int]]:
    """The champion with the categorical values new in ``fitted`` appended to its vocabularies, and the
    count added per column. Known values keep their index; each new value's embedding row starts as the
    out-of-vocabulary row, so the grown model scores exactly as the champion did (which sent those values
    to out-of-vocabulary) until fine-tuning tells them apart."""
    import torch

    vocabularies, weights, added = {}, dict(champion.weights), {}
    offset = len(champion.spec.id_buckets)  # embeddings: hashed ids, then categoricals, then position
    for i, (name, known) in enumerate(champion.spec.vocabularies.items()):
        new = [v for v in fitted.vocabularies[name] if v not in set(known)]
        vocabularies[name] = [*known, *new]
        if new:
            key = f"embeddings.{offset + i}.weight"
            table = weights[key]
            weights[key] = torch.cat([table, table[:1].expand(len(new), -1)]).contiguous()
            added[name] = len(new)
    spec = replace(champion.spec, vocabularies=vocabularies)
    return replace(champion, spec=spec, weights=weights), added


def fit_to(champion: Champion, frame: pd.DataFrame, val_fraction: float) -> tuple[Champion | None, str]:
    """The champion ready to fine-tune on ``frame`` and a note of what was adapted, or ``None`` and why it
    cannot be: its spec against one fitted on the new training split (as a cold run would fit it), then its
    weights against the network its hyperparameters build."""
    from flywheel.training.model import build_model

    train_df, _, _ = time_split(frame, val_fraction)
    fitted = fit_spec(train_df)
    mismatch = spec_mismatch(champion.spec, fitted)
    if mismatch is not None:
        return None, mismatch
    grown, added = grow_vocabularies(champion, fitted)
    model = build_model(grown.spec.cardinalities, len(grown.spec.numeric), grown.params)
    try:
        model.load_state_dict(grown.weights)
    except RuntimeError as exc:
        return None, f"its weights do not fit the network of its hyperparameters: {str(exc).splitlines()[0]}"
    note = "its feature spec fits the new training set"
    if added:
        values = ", ".join(f"{name} +{n}" for name, n in added.items())
        note += f" (new categorical values added, starting from the out-of-vocabulary row: {values})"
    return grown, note


def warm_budget(budget: int) -> int:
    """Trials of a warm search for a cold budget of ``budget``."""
    return max(1, math.ceil(budget * WARM_BUDGET_SHARE))


def narrowed_space(space: SearchSpace, params: dict[str, Any], version: str) -> SearchSpace:
    """The search around a champion's ``params``: learning rate at or below its own, weight decay and dropout
    near its own; everything else fixed to its value (the architecture must fit its weights)."""
    narrowed: dict[str, dict[str, Any]] = {}
    for name in sorted({*space.parameters, *params}):
        value = params.get(name)
        if value is None:
            continue
        if name == "lr":
            narrowed[name] = {"type": "loguniform", "low": value / LR_SPAN, "high": value}
        elif name == "weight_decay" and value > 0:
            low, high = value / WEIGHT_DECAY_SPAN, value * WEIGHT_DECAY_SPAN
            narrowed[name] = {"type": "loguniform", "low": low, "high": high}
        elif name == "dropout":
            low, high = max(0.0, value - DROPOUT_SPAN), min(0.9, value + DROPOUT_SPAN)
            narrowed[name] = {"type": "uniform", "low": low, "high": high}
        else:
            narrowed[name] = {"type": "choice", "values": [value]}
    return SearchSpace(space.metric, space.mode, narrowed, f"narrowed around {version} ({space.source})")


def first_guess(params: dict[str, Any]) -> dict[str, Any]:
    """The warm search's first trial: the champion's hyperparameters at the middle of the narrowed learning
    rates (the geometric mean of its range)."""
    return {**params, "lr": params["lr"] / math.sqrt(LR_SPAN)}


def warm_options(options: Any, champion: Champion) -> Any:
    """A cold search's ``SearchOptions`` turned into a warm one's: fewer trials, a space narrowed around the
    champion's hyperparameters, a first trial near them, and its weights to start every trial from."""
    return replace(
        options,
        budget=warm_budget(options.budget),
        space=narrowed_space(options.space, champion.params, champion.version),
        first_params=first_guess(champion.params),
        initial_weights=champion.weights,
    )


def choose_start(
    previous: dict[str, Any] | None,
    source_uri: str | None,
    source_version: str | None,
    frame: pd.DataFrame,
    val_fraction: float,
    emit: Callable[[str], None],
) -> tuple[Champion | None, dict[str, Any]]:
    """The champion to fine-tune (``None``: a cold search) and the record of that choice
    (``{"from": version or None, "artifact_uri", "reason"}``).

    ``previous`` is the record of the run the output already holds: a resumed run keeps the choice of its
    first start, whatever is in service now, since a search must not change its starting point half-way
    (``WarmStartError`` if that model can no longer be read). A new run starts from ``source_uri`` when it
    can be read and fits ``frame``; else it searches cold and says why.
    """
    if previous is not None:
        # A search recorded before warm starts existed began cold, and so goes on.
        record = previous.get("warm_start") or {"from": None, "artifact_uri": None, "reason": "began cold"}
        if record.get("from") is None:
            emit(f"resuming a cold search ({record.get('reason')})")
            return None, record
        # The same rows (the data version is checked) grow the same vocabularies as at the first start.
        champion, _ = fit_to(load_champion(record["artifact_uri"], record["from"]), frame, val_fraction)
        if champion is None:
            raise WarmStartError(f"{record['from']} no longer fits the training set it started from")
        emit(f"resuming a warm search from {record['from']} ({record['artifact_uri']})")
        return champion, record
    if not source_uri:
        reason = "no model to start from was given (--warm-start-from)"
        emit(f"cold search: {reason}")
        return None, {"from": None, "artifact_uri": None, "reason": reason}
    version = source_version or "the model in service"
    try:
        champion, note = fit_to(load_champion(source_uri, version), frame, val_fraction)
    except (WarmStartError, OSError, ValueError, KeyError) as exc:
        champion, note = None, f"it cannot be read: {exc}"
    if champion is None:
        reason = f"cannot start from {version} ({source_uri}): {note}"
        emit(f"cold search: {reason}")
        return None, {"from": None, "artifact_uri": source_uri, "reason": reason}
    reason = note
    emit(f"warm start from {version} ({source_uri}): {reason}")
    return champion, {"from": version, "artifact_uri": source_uri, "reason": reason}
