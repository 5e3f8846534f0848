"""The held-out window a candidate and the model in service are judged on: the newest published hours, their
impressions from the feature store, and the slice of each impression (fixed cut points, so a slice means
the same in every evaluation) and the logged requests the ranking replay re-ranks."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np

from flywheel.config import Settings, get_settings
from flywheel.events import naive_utc
from flywheel.warehouse.published import (
    PUBLISHED_HOURS_TABLE,
    held_out_window,
    keep_published_rows,
    published_hours,
)

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

__all__ = ["SLICES", "held_out_window", "label_slices", "load_held_out", "requests_for_replay", "slices"]

#: The slices the gate judges, as ``compare_models(slices=...)`` names them (``user_tenure=new``, ...);
#: each is held in the frame as ``slice_<name>`` so it never overwrites a feature of the same name.
SLICES = ("user_tenure", "user_activity", "item_category", "price_band")
SLICE_PREFIX = "slice_"
#: ``user_activity`` by the user's impressions in the 7 days before the impression's hour: "low" below
#: ACTIVITY_MEDIUM_FROM (new users included), "high" from ACTIVITY_HIGH_FROM, "medium" between, i.e. fewer
#: than 8 requests (slates of 10) a week, 8 to 23, 24 or more. Fixed, not data-dependent: they round the
#: impression-weighted terciles (80, 230) computed from the simulator's default world (lognormal(0, 1.2)
#: user activity, 5,000 users, 2,000 impressions an hour) once a week of history exists. Shorter or
#: quieter histories put more impressions in "low" (after 24 hours the terciles are near 10 and 30).
ACTIVITY_MEDIUM_FROM = 80
ACTIVITY_HIGH_FROM = 240
#: ``price_band`` by the price shown with the impression: "low" below PRICE_MID_FROM, "high" from
#: PRICE_HIGH_FROM. The simulator draws category median prices log-uniformly from 8 to 250
#: (simulate/marketplace.py CATEGORY_PRICE_RANGE); these cut that range into log-thirds (25.2, 79.4).
#: Over the impressions of 8 simulated worlds (seeds 1-8) that is 36% low, 36% mid, 28% high; one world
#: with 12 categories can be lopsided (seed 7: 11%, 27%, 62%).
PRICE_MID_FROM = 25.0
PRICE_HIGH_FROM = 80.0
#: A slice label where the frame has no value (a category the log lacks).
UNKNOWN = "unknown"


def load_held_out(start: datetime, end: datetime, settings: Settings | None = None) -> pd.DataFrame:
    """The feature store's training set of ``[start, end)``, only its published hours, with the slice labels
    (``slice_<name>`` columns, see :func:`label_slices`)."""
    from flywheel.feature_store.store import training_set
    from flywheel.warehouse import open_warehouse

    settings = settings or get_settings()
    start, end = naive_utc(start), naive_utc(end)
    published = published_hours(open_warehouse(settings.warehouse_url), start, end)
    if not published:
        raise ValueError(
            f"no hour of the held-out window [{start}, {end}) is published in {PUBLISHED_HOURS_TABLE}: "
            "rerun build_features for it, or evaluate on another window"
        )
    try:
        frame = training_set(start, end, settings)
    except ValueError as exc:
        raise ValueError(f"the held-out window [{start}, {end}) is empty: {exc}") from exc
    frame = keep_published_rows(frame, published, "held-out set")
    if frame.empty:
        raise ValueError(
            f"the held-out window [{start}, {end}) is empty: its published hours hold no impressions; "
            "evaluate on a window build_features has covered"
        )
    return label_slices(frame)


def _first_present(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    for name in names:
        if name in frame.columns:
            return frame[name]
    raise ValueError(
        f"the held-out frame lacks {' and '.join(names)}: it needs one of them for the slice labels; "
        f"it has {', '.join(map(str, frame.columns))}"
    )


def label_slices(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``slice_<name>`` column per slice of :data:`SLICES`:

    - ``user_tenure``: "new" when the user had no impression in the 7 days before the impression's hour
      (``user_impressions_7d == 0``), else "returning";
    - ``user_activity``: "low" / "medium" / "high" by ``user_impressions_7d`` (:data:`ACTIVITY_MEDIUM_FROM`,
      :data:`ACTIVITY_HIGH_FROM`);
    - ``item_category``: the category logged with the impression (``category``; the ``item_category``
      feature when the frame has no log column: the feature reads "none" for an item with no snapshot);
    - ``price_band``: "low" / "mid" / "high" by the price logged with the impression (``price``, else the
      ``item_price`` feature, 0 for an item with no snapshot) (:data:`PRICE_MID_FROM`,
      :data:`PRICE_HIGH_FROM`).
    """
    import pandas as pd

    impressions = pd.to_numeric(_first_present(frame, ("user_impressions_7d",)), errors="coerce").fillna(0)
    price = pd.to_numeric(_first_present(frame, ("price", "item_price")), errors="coerce")
    category = _first_present(frame, ("category", "item_category"))
    activity = np.select(
        [impressions >= ACTIVITY_HIGH_FROM, impressions >= ACTIVITY_MEDIUM_FROM], ["high", "medium"], "low"
    )
    band = np.select(
        [price >= PRICE_HIGH_FROM, price >= PRICE_MID_FROM, price.notna()], ["high", "mid", "low"], UNKNOWN
    )
    return frame.assign(
        **{
            f"{SLICE_PREFIX}user_tenure": np.where(impressions == 0, "new", "returning").astype(object),
            f"{SLICE_PREFIX}user_activity": activity.astype(object),
            f"{SLICE_PREFIX}item_category": category.astype("string").fillna(UNKNOWN).astype(object),
            f"{SLICE_PREFIX}price_band": band.astype(object),
        }
    )


def slices(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    """The slice labels of a :func:`load_held_out` frame as ``compare_models(slices=...)`` takes them."""
    missing = [name for name in SLICES if f"{SLICE_PREFIX}{name}" not in frame.columns]
    if missing:
        raise ValueError(
            f"the frame has no slice column(s) {', '.join(SLICE_PREFIX + m for m in missing)}: "
            "label it with label_slices (load_held_out does)"
        )
    return {name: frame[f"{SLICE_PREFIX}{name}"].to_numpy(dtype=object).astype(str) for name in SLICES}


def requests_for_replay(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(request_ids, clicked, order_value)``, one per impression, as ``ranking.replay`` takes them.

    The request is ``request_id`` when the frame has it. The feature store's training sets do not carry it
    (``marts.training_examples`` has it, the entity dataframe leaves it out), so otherwise a request is the
    impressions sharing ``(user_id, event_ts)``: the simulator (simulate/events.py) and the event log give
    every slot of one request the request's timestamp and user, and two requests of one user in the same
    microsecond do not occur. ``clicked`` is ``label``; ``order_value`` is ``gmv`` (0 without an order).
    """
    import pandas as pd

    if "request_id" in frame.columns:
        ids = pd.factorize(frame["request_id"])[0]
    else:
        missing = [c for c in ("user_id", "event_ts") if c not in frame.columns]
        if missing:
            raise ValueError(
                f"the held-out frame has no request_id and no {' or '.join(missing)} to group impressions "
                "into requests: load it with load_held_out"
            )
        ids = frame.groupby(["user_id", "event_ts"], sort=False, dropna=False).ngroup().to_numpy()
    if "label" not in frame.columns:
        raise ValueError(
            "the held-out frame has no label column (the logged click): load it with load_held_out"
        )
    clicked = pd.to_numeric(frame["label"], errors="coerce").fillna(0).to_numpy(dtype=np.float64)
    gmv = frame["gmv"] if "gmv" in frame.columns else pd.Series(0.0, index=frame.index)
    order_value = pd.to_numeric(gmv, errors="coerce").fillna(0.0).to_numpy(dtype=np.float64)
    return np.asarray(ids, dtype=np.int64), clicked, order_value
