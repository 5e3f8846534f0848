"""The settings of one simulation run: when, how long, how much traffic, which drift, which world."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

#: Drift scenarios ``SimulationConfig.drift`` accepts; docs/simulator.md describes each one.
DRIFTS: tuple[str, ...] = ("none", "interest_shift", "price_shift")


@dataclass(frozen=True)
class ClickModel:
    """Parameters of the examination-hypothesis click model and of the order model.

    ``P(click) = pos**-eta * sigmoid(b0 + b_affinity*affinity + b_quality*quality - b_price*log(price/ref))``
    and ``P(order | click) = sigmoid(c0 + c_quality*quality - c_price*log(price/ref))``.
    """

    eta: float = 0.8  # position bias exponent: P(examine | pos) = pos ** -eta
    b0: float = -3.2
    b_affinity: float = 1.4
    b_quality: float = 0.5
    b_price: float = 1.0
    c0: float = -2.4
    c_quality: float = 0.4
    c_price: float = 1.5
    extra_quantity_mean: float = 0.3  # quantity = 1 + Poisson(extra_quantity_mean)


@dataclass(frozen=True)
class SimulationConfig:
    """One run of the marketplace; the same config (and seed) always produces the same files.

    ``drift_at`` is the hour offset from ``start`` at which the drift switches on; it defaults to
    ``hours``, i.e. never. World-size fields have defaults that simulate a small shop in seconds.
    """

    start: datetime
    hours: int
    drift: str = "none"
    drift_at: int | None = None
    strength: float = 1.0
    seed: int = 7
    impressions_per_hour: int = 2000
    n_users: int = 5000
    n_items: int = 1000
    n_categories: int = 12
    slate_size: int = 10
    personal_share: float = 0.7  # share of candidate weight from the user's interests, the rest popularity
    diurnal_amplitude: float = 0.3  # traffic swings +-30% around the mean over a day
    diurnal_peak_hour: int = 20  # busiest hour of day (UTC)
    click_model: ClickModel = field(default_factory=ClickModel)

    def __post_init__(self) -> None:
        if self.drift_at is None:
            # Frozen dataclass: the documented default (never) is filled in once, here.
            object.__setattr__(self, "drift_at", self.hours if isinstance(self.hours, int) else 0)
        _validate(self)

    @property
    def drift_onset(self) -> int:
        """The first hour offset with drift switched on (``hours`` or more means never)."""
        return self.hours if self.drift == "none" else int(self.drift_at or 0)


def _validate(cfg: SimulationConfig) -> None:
    if not isinstance(cfg.start, datetime):
        raise ValueError(f"start must be a datetime, got {cfg.start!r}")
    if cfg.start.tzinfo is not None:
        raise ValueError(
            f"start must be a naive UTC datetime, got {cfg.start.isoformat()}; "
            "convert it with .astimezone(timezone.utc).replace(tzinfo=None)"
        )
    if (cfg.start.minute, cfg.start.second, cfg.start.microsecond) != (0, 0, 0):
        raise ValueError(
            f"start must be on a whole hour, got {cfg.start.isoformat()}; "
            f"use {cfg.start.replace(minute=0, second=0, microsecond=0).isoformat()}"
        )
    _require_int("hours", cfg.hours, low=1)
    if cfg.drift not in DRIFTS:
        raise ValueError(f"drift must be one of {', '.join(DRIFTS)}; got {cfg.drift!r}")
    _require_int("drift_at", cfg.drift_at, low=0, high=cfg.hours)
    if not 0.0 <= cfg.strength <= 1.0:
        raise ValueError(f"strength must be between 0 and 1, got {cfg.strength!r}")
    _require_int("seed", cfg.seed, low=0)
    _require_int("slate_size", cfg.slate_size, low=1)
    _require_int("impressions_per_hour", cfg.impressions_per_hour, low=cfg.slate_size)
    _require_int("n_users", cfg.n_users, low=1)
    _require_int("n_categories", cfg.n_categories, low=2, high=100)
    # Every category needs an item and every slate needs distinct items.
    _require_int("n_items", cfg.n_items, low=max(cfg.slate_size, cfg.n_categories))
    if not 0.0 <= cfg.personal_share <= 1.0:
        raise ValueError(f"personal_share must be between 0 and 1, got {cfg.personal_share!r}")
    if not 0.0 <= cfg.diurnal_amplitude < 1.0:
        raise ValueError(f"diurnal_amplitude must be in [0, 1), got {cfg.diurnal_amplitude!r}")
    _require_int("diurnal_peak_hour", cfg.diurnal_peak_hour, low=0, high=23)
    if cfg.click_model.eta < 0 or cfg.click_model.extra_quantity_mean < 0:
        raise ValueError(f"click_model.eta and extra_quantity_mean must be >= 0, got {cfg.click_model!r}")


def _require_int(name: str, value: object, low: int, high: int | None = None) -> None:
    # bool is an int subclass; True hours is a typo, not a request for one hour.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bounds = f">= {low}" if high is None else f"between {low} and {high}"
        raise ValueError(f"{name} must be {bounds}, got {value!r}")
