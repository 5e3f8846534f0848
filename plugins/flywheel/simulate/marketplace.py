"""The simulated marketplace: users and items, how drift changes them, and the click and order models.

Everything is vectorised NumPy over whole arrays of impressions; docs/simulator.md gives the formulas.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from flywheel.simulate.config import ClickModel, SimulationConfig

# Random streams derived from the seed, so that the world never depends on how much traffic was drawn.
WORLD_STREAM = 0
HOUR_STREAM = 1

#: Skew of the population's category mix: category c gets weight (c + 1) ** -CATEGORY_SKEW.
CATEGORY_SKEW = 1.0
#: Dirichlet concentration per category for user interests; below 1 makes most users specialists.
INTEREST_CONCENTRATION = 0.5
#: Spread (log-scale sigma) of item prices around their category's median.
PRICE_SIGMA = 0.4
#: Category median prices are drawn log-uniformly from this range.
CATEGORY_PRICE_RANGE = (8.0, 250.0)
#: How strongly quality and noise concentrate popularity on a few items (log-scale).
POPULARITY_QUALITY_WEIGHT, POPULARITY_SIGMA = 0.7, 0.8
#: price_shift at strength 1: half of the categories get dearer by this share, the other half cheaper.
PRICE_RISE, PRICE_CUT = 0.5, 0.3


@dataclass(frozen=True)
class World:
    """Users and items drawn once per seed; drift changes what they see, not who they are."""

    interests: np.ndarray  # (users, categories), rows sum to 1
    activity: np.ndarray  # (users,), sums to 1: who sends the requests
    item_category: np.ndarray  # (items,) int category index
    base_price: np.ndarray  # (items,) price before any drift, in currency units with cents
    reference_price: np.ndarray  # (categories,) median base price: the price shoppers think is fair
    quality: np.ndarray  # (items,) standard normal
    popularity: np.ndarray  # (items,), sums to 1
    price_direction: np.ndarray  # (categories,) +1 rises, -1 falls under price_shift


@dataclass(frozen=True)
class MarketState:
    """What users want and what items cost during one hour."""

    interests: np.ndarray
    price: np.ndarray


def category_names(n_categories: int) -> np.ndarray:
    """Names like ``cat_03``, indexed by category number."""
    return np.array([f"cat_{c:02d}" for c in range(n_categories)], dtype=object)


def build_world(cfg: SimulationConfig) -> World:
    """Draw users and items from the seed alone."""
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed, spawn_key=(WORLD_STREAM,)))
    n_cat = cfg.n_categories

    # A skewed population mix, so that rotating interests visibly moves the aggregate category mix.
    mix = (np.arange(n_cat) + 1.0) ** -CATEGORY_SKEW
    mix /= mix.sum()
    interests = rng.dirichlet(INTEREST_CONCENTRATION * n_cat * mix, size=cfg.n_users)
    # Dirichlet draws with tiny alphas can underflow to all-zero rows; fall back to the population mix.
    empty = interests.sum(axis=1) <= 0
    interests[empty] = mix
    interests /= interests.sum(axis=1, keepdims=True)

    # Heavy-tailed activity: a few users send many of the requests, as on real sites.
    activity = rng.lognormal(0.0, 1.2, size=cfg.n_users)
    activity /= activity.sum()

    # Balanced categories (every category has items), shuffled so item ids carry no category order.
    item_category = rng.permutation(np.arange(cfg.n_items) % n_cat)
    low, high = np.log(CATEGORY_PRICE_RANGE)
    category_median = np.exp(rng.uniform(low, high, size=n_cat))
    raw_price = category_median[item_category] * rng.lognormal(0.0, PRICE_SIGMA, size=cfg.n_items)
    base_price = np.maximum(np.round(raw_price, 2), 0.01)
    reference_price = np.array([np.median(base_price[item_category == c]) for c in range(n_cat)])

    quality = rng.standard_normal(cfg.n_items)
    log_pop = POPULARITY_QUALITY_WEIGHT * quality + rng.normal(0.0, POPULARITY_SIGMA, size=cfg.n_items)
    popularity = np.exp(log_pop - log_pop.max())
    popularity /= popularity.sum()

    price_direction = np.where(rng.permutation(n_cat) < n_cat // 2, 1.0, -1.0)
    return World(
        interests=interests,
        activity=activity,
        item_category=item_category,
        base_price=base_price,
        reference_price=reference_price,
        quality=quality,
        popularity=popularity,
        price_direction=price_direction,
    )


def market_state(world: World, cfg: SimulationConfig, drifted: bool) -> MarketState:
    """Interests and prices before the drift onset (``drifted=False``) or from it on."""
    if not drifted or cfg.drift == "none" or cfg.strength == 0.0:
        return MarketState(interests=world.interests, price=world.base_price)
    s = cfg.strength
    if cfg.drift == "interest_shift":
        # Tastes rotate by a third of the catalogue: fans of cat_00 drift towards cat_04 (of 12).
        shift = max(1, cfg.n_categories // 3)
        blended = (1.0 - s) * world.interests + s * np.roll(world.interests, shift, axis=1)
        return MarketState(interests=blended / blended.sum(axis=1, keepdims=True), price=world.base_price)
    # price_shift: shoppers keep their old reference price, so dearer categories lose clicks.
    factor = np.where(world.price_direction > 0, 1.0 + s * PRICE_RISE, 1.0 - s * PRICE_CUT)
    price = np.maximum(np.round(world.base_price * factor[world.item_category], 2), 0.01)
    return MarketState(interests=world.interests, price=price)


def requests_in_hour(cfg: SimulationConfig, hour_of_day: int) -> int:
    """Requests (slates) sent in an hour: the mean traffic times a daily cosine, rounded."""
    phase = 2.0 * np.pi * (hour_of_day - cfg.diurnal_peak_hour) / 24.0
    impressions = cfg.impressions_per_hour * (1.0 + cfg.diurnal_amplitude * np.cos(phase))
    return max(1, round(impressions / cfg.slate_size))


def candidate_weights(world: World, state: MarketState, users: np.ndarray, share: float) -> np.ndarray:
    """Each user's sampling weight over all items: interest in the item's category plus popularity.

    The personal part spreads a category's interest evenly over its items, so the two parts are on
    the same scale (each row of each part sums to 1).
    """
    # float32: this (requests x items) matrix is the largest the simulator builds; sampling needs no more.
    per_category = np.bincount(world.item_category, minlength=state.interests.shape[1])
    scale = (share / per_category[world.item_category]).astype(np.float32)
    personal = state.interests.astype(np.float32)[users][:, world.item_category]
    return personal * scale + ((1.0 - share) * world.popularity).astype(np.float32)


def sample_slates(weights: np.ndarray, slate_size: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``slate_size`` distinct items per row, proportional to ``weights``, ranked best first.

    Exponential race (equivalent to Gumbel top-k): an item's key is weight / Exp(1), and the items
    with the largest keys win, which samples without replacement in one vectorised pass.
    """
    race = rng.standard_exponential(weights.shape, dtype=weights.dtype)
    # float32 draws can round to 0; the floor keeps such an item first without dividing by zero.
    keys = weights / np.maximum(race, np.finfo(weights.dtype).tiny)
    # Partitioning at -slate_size (largest last) is several times faster than negating the keys.
    top = np.argpartition(keys, -slate_size, axis=1)[:, -slate_size:]
    order = np.argsort(-np.take_along_axis(keys, top, axis=1), axis=1, kind="stable")
    return np.take_along_axis(top, order, axis=1)


def affinity(interest: np.ndarray, n_categories: int) -> np.ndarray:
    """log(1 + n_categories * interest): 0 for no interest, log 2 for an average one."""
    return np.log1p(n_categories * interest)


def click_probability(
    model: ClickModel,
    position: np.ndarray,
    interest: np.ndarray,
    n_categories: int,
    quality: np.ndarray,
    log_price_ratio: np.ndarray,
) -> np.ndarray:
    """Examination hypothesis: P(click) = P(examine | position) * P(attractive | user, item)."""
    examine = position.astype(np.float64) ** -model.eta
    logit = (
        model.b0
        + model.b_affinity * affinity(interest, n_categories)
        + model.b_quality * quality
        - model.b_price * log_price_ratio
    )
    return examine * _sigmoid(logit)


def order_probability(model: ClickModel, quality: np.ndarray, log_price_ratio: np.ndarray) -> np.ndarray:
    """P(order | click): better and cheaper-than-usual items convert more."""
    return _sigmoid(model.c0 + model.c_quality * quality - model.c_price * log_price_ratio)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))
