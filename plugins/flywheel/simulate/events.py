"""Turning one simulated hour of traffic into impression, click and order tables in the landing schemas.

Each hour draws from its own random stream (seed, hour offset), so an hour's events do not depend on
how many hours run before it or how the run is chunked.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from flywheel.events import EVENT_SCHEMAS, PARTITION_COLUMN
from flywheel.simulate.config import SimulationConfig
from flywheel.simulate.marketplace import (
    HOUR_STREAM,
    MarketState,
    World,
    build_world,
    candidate_weights,
    category_names,
    click_probability,
    market_state,
    order_probability,
    requests_in_hour,
    sample_slates,
)

SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
_EPOCH = datetime(1970, 1, 1)

# Delays after the impression (click) and after the click (order): (minimum, mean extra, maximum) in s.
# The maxima keep every event within one hour of its request, so spill-over reaches the next hour only.
CLICK_DELAY_S = (2.0, 12.0, 60.0)
ORDER_DELAY_S = (60.0, 300.0, 2400.0)
# Rows of the (requests x items) candidate matrix drawn at once; bounds memory at any traffic level.
_SLATE_CHUNK = 2048


@dataclass(frozen=True)
class HourBatch:
    """The events of one table that fall in one hour (``hour`` is the start of that hour)."""

    table: str
    hour: datetime
    data: pa.Table


def generate_events(cfg: SimulationConfig) -> Iterator[HourBatch]:
    """Yield every table's events hour by hour, each hour complete (late events included) when yielded.

    Clicks and orders of the last minutes of an hour land in the next hour, so an hour is yielded only
    once the hour after it has been generated; the run ends with the spill-over past its last hour.
    """
    world = build_world(cfg)
    states = {drifted: market_state(world, cfg, drifted) for drifted in (False, True)}
    names = category_names(cfg.n_categories)
    pending: dict[tuple[str, int], list[pa.Table]] = {}
    for offset in range(cfg.hours):
        hour = cfg.start + timedelta(hours=offset)
        tables = generate_hour(cfg, world, states[offset >= cfg.drift_onset], names, offset)
        for name, table in tables.items():
            for bucket, part in _split_by_hour(table):
                pending.setdefault((name, bucket), []).append(part)
        # Events never precede the hour that generated them: everything up to this hour is final.
        yield from _flush(pending, up_to=_to_us(hour) // HOUR_US)
    yield from _flush(pending, up_to=None)


def generate_hour(
    cfg: SimulationConfig, world: World, state: MarketState, names: np.ndarray, offset: int
) -> dict[str, pa.Table]:
    """Impressions, clicks and orders caused by the requests of hour ``offset`` (clicks may run late)."""
    streams = np.random.SeedSequence(cfg.seed, spawn_key=(HOUR_STREAM, offset)).spawn(2)
    slate_rng, event_rng = (np.random.default_rng(stream) for stream in streams)
    hour = cfg.start + timedelta(hours=offset)
    hour_us = _to_us(hour)
    k = cfg.slate_size

    n_requests = requests_in_hour(cfg, hour.hour)
    users = event_rng.choice(cfg.n_users, size=n_requests, p=world.activity)
    request_us = hour_us + np.sort(event_rng.integers(0, HOUR_US, size=n_requests))
    slates = np.concatenate(
        [
            sample_slates(candidate_weights(world, state, chunk, cfg.personal_share), k, slate_rng)
            for chunk in np.array_split(users, max(1, -(-n_requests // _SLATE_CHUNK)))
        ]
    )

    # One row per impression, in request order and slot order within a request.
    n = n_requests * k
    imp_user = np.repeat(users, k)
    imp_item = slates.ravel()
    position = np.tile(np.arange(1, k + 1, dtype=np.int32), n_requests)
    category = world.item_category[imp_item]
    price = state.price[imp_item]
    imp_us = np.repeat(request_us, k)

    log_ratio = np.log(price / world.reference_price[category])
    quality = world.quality[imp_item]
    p_click = click_probability(
        cfg.click_model, position, state.interests[imp_user, category], cfg.n_categories, quality, log_ratio
    )
    clicked = np.flatnonzero(event_rng.random(n) < p_click)
    click_us = imp_us[clicked] + delay_us(event_rng, CLICK_DELAY_S, clicked.size)

    p_order = order_probability(cfg.click_model, quality[clicked], log_ratio[clicked])
    converted = event_rng.random(clicked.size) < p_order
    ordered = clicked[converted]
    order_us = click_us[converted] + delay_us(event_rng, ORDER_DELAY_S, ordered.size)
    quantity = 1 + event_rng.poisson(cfg.click_model.extra_quantity_mean, size=ordered.size)

    # ids carry seed and clock hour, so they stay unique across hours and across runs that differ in start.
    tag = f"{cfg.seed}-{hour:%Y%m%d%H}-"
    row = np.arange(n)
    impressions = [
        _ids("imp-" + tag, row, 7),
        _ids("req-" + tag, row // k, 6),
        _timestamps(imp_us),
        imp_user.astype(np.int64),
        imp_item.astype(np.int64),
        position,
        pa.array(names[category], type=pa.string()),
        price,
    ]
    clicks = [
        _ids("clk-" + tag, clicked, 7),
        _ids("imp-" + tag, clicked, 7),
        _timestamps(click_us),
        imp_user[clicked].astype(np.int64),
        imp_item[clicked].astype(np.int64),
    ]
    orders = [
        _ids("ord-" + tag, ordered, 7),
        _ids("imp-" + tag, ordered, 7),
        _timestamps(order_us),
        imp_user[ordered].astype(np.int64),
        imp_item[ordered].astype(np.int64),
        quantity.astype(np.int32),
        quantity * price[ordered],
    ]
    return {
        name: pa.Table.from_arrays(columns, schema=EVENT_SCHEMAS[name])
        for name, columns in (("impressions", impressions), ("clicks", clicks), ("orders", orders))
    }


def delay_us(rng: np.random.Generator, delay_s: tuple[float, float, float], size: int) -> np.ndarray:
    """Delays in microseconds: ``low`` plus an exponential of mean ``mean_extra``, capped at ``high``."""
    low, mean_extra, high = delay_s
    seconds = np.minimum(low + rng.exponential(mean_extra, size=size), high)
    return np.round(seconds * SECOND_US).astype(np.int64)


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    # Zero padding keeps ids sortable in generation order; Arrow kernels avoid a Python loop per row.
    digits = pc.utf8_lpad(pc.cast(pa.array(numbers, type=pa.int64()), pa.string()), width=width, padding="0")
    return pc.binary_join_element_wise(prefix, digits, "")


def _timestamps(us: np.ndarray) -> pa.Array:
    return pa.array(us.astype(np.int64), type=pa.timestamp("us"))


def _to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


def _split_by_hour(table: pa.Table) -> Iterator[tuple[int, pa.Table]]:
    """Yield (hour number since the epoch, rows of that hour); rows keep their order."""
    if table.num_rows == 0:
        return
    buckets = table.column(PARTITION_COLUMN).cast(pa.int64()).to_numpy() // HOUR_US
    for bucket in np.unique(buckets):
        yield int(bucket), table.filter(pa.array(buckets == bucket))


def _flush(pending: dict[tuple[str, int], list[pa.Table]], up_to: int | None) -> Iterator[HourBatch]:
    for key in sorted(k for k in pending if up_to is None or k[1] <= up_to):
        name, bucket = key
        table = pa.concat_tables(pending.pop(key))
        # Time order inside a file; the id breaks ties (slots of one request share their timestamp).
        table = table.sort_by([(PARTITION_COLUMN, "ascending"), (table.column_names[0], "ascending")])
        yield HourBatch(table=name, hour=_EPOCH + timedelta(hours=bucket), data=table)
