"""The hyperparameter search space, read from a small YAML file people edit (``search_space.yaml``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

DEFAULT_SPACE_FILE = Path(__file__).with_name("search_space.yaml")
_FIELDS = {
    "loguniform": ("low", "high"),
    "uniform": ("low", "high"),
    "int": ("low", "high"),
    "choice": ("values",),
}


class SearchSpaceError(ValueError):
    """The search space file is malformed; the message names the file and the parameter."""


@dataclass(frozen=True)
class SearchSpace:
    metric: str
    mode: str
    parameters: dict[str, dict[str, Any]]
    source: str

    def to_tune(self) -> dict[str, Any]:
        """The space as Ray Tune domains (OptunaSearch converts them to Optuna distributions)."""
        from ray import tune

        out: dict[str, Any] = {}
        for name, p in self.parameters.items():
            kind = p["type"]
            if kind == "loguniform":
                out[name] = tune.loguniform(float(p["low"]), float(p["high"]))
            elif kind == "uniform":
                out[name] = tune.uniform(float(p["low"]), float(p["high"]))
            elif kind == "int":
                out[name] = tune.randint(int(p["low"]), int(p["high"]) + 1)  # randint excludes high
            else:
                out[name] = tune.choice(list(p["values"]))
        return out


def load_search_space(path: str | Path | None = None) -> SearchSpace:
    """Read and validate a search space file (default: the one shipped beside this module)."""
    path = Path(path) if path else DEFAULT_SPACE_FILE
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise SearchSpaceError(f"cannot read search space {path}: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("parameters"), dict) or not raw["parameters"]:
        raise SearchSpaceError(f"{path}: expected a mapping with a non-empty 'parameters' mapping")
    mode = raw.get("mode", "max")
    if mode not in ("max", "min"):
        raise SearchSpaceError(f"{path}: mode must be max or min, got {mode!r}")
    for name, spec in raw["parameters"].items():
        kind = spec.get("type") if isinstance(spec, dict) else None
        if kind not in _FIELDS:
            raise SearchSpaceError(
                f"{path}: parameter {name} has type {kind!r}; use one of {', '.join(_FIELDS)}"
            )
        missing = [f for f in _FIELDS[kind] if f not in spec]
        if missing:
            raise SearchSpaceError(f"{path}: parameter {name} ({kind}) needs {', '.join(missing)}")
        if kind == "choice":
            values = spec["values"]
            if not values or not all(isinstance(v, str | int | float | bool) for v in values):
                raise SearchSpaceError(f"{path}: parameter {name} needs a non-empty list of plain values")
        elif not float(spec["low"]) < float(spec["high"]) or (
            kind == "loguniform" and float(spec["low"]) <= 0
        ):
            raise SearchSpaceError(
                f"{path}: parameter {name} needs 0 < low < high (loguniform) or low < high"
            )
    return SearchSpace(str(raw.get("metric", "val_auc")), mode, dict(raw["parameters"]), str(path))
