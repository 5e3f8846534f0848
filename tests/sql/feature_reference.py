"""The feature contract of ``dbt/README.md`` recomputed with NumPy from raw events, one snapshot at a time.

Deliberately naive (a search over sorted event times per entity), so it shares no logic with the SQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

HOUR = np.timedelta64(1, "h")
WINDOWS = {"1h": 1, "24h": 24, "7d": 168}
HOURS_SINCE_CLICK_CAP = 168.0


def _count_in_window(times: np.ndarray, feature_ts: np.datetime64, hours: int) -> int:
    """Events with ``feature_ts - hours <= event_ts < feature_ts`` in a sorted array of times."""
    return int(
        np.searchsorted(times, feature_ts, "left") - np.searchsorted(times, feature_ts - hours * HOUR, "left")
    )


def feature_hours(impressions: pd.DataFrame, clicks: pd.DataFrame) -> list[np.datetime64]:
    """Every snapshot hour of the data: from the first event's hour to the hour after the last event."""
    times = pd.concat([impressions["event_ts"], clicks["event_ts"]]).dt.floor("h")
    return list(pd.date_range(times.min(), times.max() + timedelta(hours=1), freq="h").to_numpy())


def user_snapshots(
    user_id: int, impressions: pd.DataFrame, clicks: pd.DataFrame, hours: list[np.datetime64]
) -> dict[np.datetime64, dict[str, object]]:
    """Every snapshot of one user, keyed by feature_ts, with the columns of marts.user_features."""
    shown = np.sort(impressions.loc[impressions["user_id"] == user_id, "event_ts"].to_numpy())
    own_clicks = clicks[clicks["user_id"] == user_id].merge(
        impressions[["impression_id", "category"]], on="impression_id", how="left"
    )
    clicked = np.sort(own_clicks["event_ts"].to_numpy())
    snapshots = {}
    for ts in hours:
        if _count_in_window(shown, ts, WINDOWS["7d"]) == 0:
            continue  # no impression in the week before: no row
        row: dict[str, object] = {}
        for name, width in WINDOWS.items():
            n_shown, n_clicked = _count_in_window(shown, ts, width), _count_in_window(clicked, ts, width)
            row[f"user_impressions_{name}"] = n_shown
            row[f"user_clicks_{name}"] = n_clicked
            row[f"user_ctr_{name}"] = n_clicked / n_shown if n_shown else 0.0
        in_week = own_clicks[(own_clicks["event_ts"] >= ts - 168 * HOUR) & (own_clicks["event_ts"] < ts)]
        counts = Counter(in_week["category"].dropna())
        if counts:
            top = min(counts, key=lambda category: (-counts[category], category))
            row["user_top_category"] = top
            row["user_top_category_share"] = counts[top] / len(in_week)
        else:
            row["user_top_category"], row["user_top_category_share"] = "none", 0.0
        before = clicked[clicked < ts]
        since = (ts - before[-1]) / HOUR if len(before) else HOURS_SINCE_CLICK_CAP
        row["user_hours_since_last_click"] = float(min(since, HOURS_SINCE_CLICK_CAP))
        snapshots[ts] = row
    return snapshots


def item_snapshots(
    item_id: int, impressions: pd.DataFrame, clicks: pd.DataFrame, hours: list[np.datetime64]
) -> dict[np.datetime64, dict[str, object]]:
    """Every snapshot of one item, keyed by feature_ts, with the columns of marts.item_features."""
    own = impressions[impressions["item_id"] == item_id].sort_values(["event_ts", "impression_id"])
    shown = own["event_ts"].to_numpy()
    clicked = np.sort(clicks.loc[clicks["item_id"] == item_id, "event_ts"].to_numpy())
    everyone = np.sort(impressions["event_ts"].to_numpy())
    snapshots = {}
    for ts in hours:
        if _count_in_window(shown, ts, WINDOWS["7d"]) == 0:
            continue
        last = own[own["event_ts"] < ts].iloc[-1]
        row: dict[str, object] = {"item_category": last["category"], "item_price": float(last["price"])}
        for name in ("24h", "7d"):
            n_shown = _count_in_window(shown, ts, WINDOWS[name])
            n_clicked = _count_in_window(clicked, ts, WINDOWS[name])
            row[f"item_impressions_{name}"] = n_shown
            row[f"item_clicks_{name}"] = n_clicked
            row[f"item_ctr_{name}"] = n_clicked / n_shown if n_shown else 0.0
        total = _count_in_window(everyone, ts, 24)
        row["item_popularity_24h"] = row["item_impressions_24h"] / total if total else 0.0
        snapshots[ts] = row
    return snapshots


def as_datetime(value: np.datetime64) -> datetime:
    """A NumPy timestamp as the naive ``datetime`` the warehouse returns."""
    return pd.Timestamp(value).to_pydatetime()
