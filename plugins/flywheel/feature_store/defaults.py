"""What a missing feature means: the entity had no activity in the window, exactly as the marts coalesce.

Training and serving both fill with these values, so a model never sees a null the other side would not.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

#: Hours since the last click when there was none in the last 7 days (the marts' cap).
HOURS_SINCE_CLICK_CAP = 168.0
#: Category features of an entity with no clicks (or never seen).
NO_CATEGORY = "none"

_SPECIAL = {"user_hours_since_last_click": HOURS_SINCE_CLICK_CAP}


def missing_value(name: str, dtype: str) -> Any:
    """The value a feature takes when its entity has no snapshot within the view's ttl."""
    if name in _SPECIAL:
        return _SPECIAL[name]
    if dtype == "String":
        return NO_CATEGORY
    return 0 if dtype.startswith("Int") else 0.0


def fill_missing(frame: pd.DataFrame, fields: list[tuple[str, str]]) -> pd.DataFrame:
    """Fill missing features in place of nulls and restore integer columns that nulls turned to float."""
    for name, dtype in fields:
        frame[name] = frame[name].where(frame[name].notna(), missing_value(name, dtype))
        if dtype.startswith("Int"):
            frame[name] = frame[name].astype("int64")
        elif dtype.startswith("Float"):
            frame[name] = frame[name].astype("float64")
        else:
            frame[name] = frame[name].astype(object)
    return frame
