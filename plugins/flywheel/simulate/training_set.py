"""A point-in-time training set built with pandas from simulated (or landed) events.

Production training sets come from the feature store; this one has the same columns and the same rule
(features see only events before ``feature_ts``, the start of the impression's hour) for tests,
benchmarks and demos.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

HOUR = pd.Timedelta(hours=1)
WINDOWS = {"1h": pd.Timedelta(hours=1), "24h": pd.Timedelta(hours=24), "7d": pd.Timedelta(days=7)}


def read_landed_events(landing_dir: str | Path) -> dict[str, pd.DataFrame]:
    """Impressions, clicks and orders from a landing zone (the simulator's hourly Parquet layout)."""
    out = {}
    for table in ("impressions", "clicks", "orders"):
        folder = Path(landing_dir) / table
        frame = pd.read_parquet(folder) if folder.exists() else pd.DataFrame()
        out[table] = frame.drop(columns=["date", "hour"], errors="ignore")
    return out


def _cumulative(events: pd.DataFrame, keys: list[str], name: str) -> pd.DataFrame:
    """Running event counts per key at the end of each hour bucket."""
    hourly = events.assign(_bucket=events["event_ts"].dt.floor("h")).groupby([*keys, "_bucket"]).size()
    hourly = hourly.rename(name).reset_index().sort_values("_bucket")
    hourly[name] = hourly.groupby(keys)[name].cumsum()
    return hourly


def _count_before(
    cum: pd.DataFrame, queries: pd.DataFrame, keys: list[str], at: str, name: str
) -> np.ndarray:
    """For each query row: the count of events of its key in hours strictly before ``queries[at]``."""
    q = queries[[*keys, at]].reset_index().sort_values(at)
    merged = pd.merge_asof(
        q, cum, left_on=at, right_on="_bucket", by=keys, allow_exact_matches=False, direction="backward"
    )
    return merged.set_index("index")[name].reindex(queries.index).fillna(0).to_numpy()


def _window_counts(
    events: pd.DataFrame, queries: pd.DataFrame, keys: list[str], window: pd.Timedelta
) -> np.ndarray:
    if events.empty:
        return np.zeros(len(queries))
    cum = _cumulative(events, keys, "n")
    q = queries.assign(_start=(queries["feature_ts"] - window).astype(queries["feature_ts"].dtype))
    return _count_before(cum, q, keys, "feature_ts", "n") - _count_before(cum, q, keys, "_start", "n")


def build_training_set(impressions: pd.DataFrame, clicks: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    """One row per impression: label (clicked at all), gmv, and features as of the impression's hour."""
    rows = impressions.copy()
    rows["event_ts"] = pd.to_datetime(rows["event_ts"]).astype("datetime64[us]")
    rows["feature_ts"] = rows["event_ts"].dt.floor("h")
    clicks = clicks.assign(event_ts=pd.to_datetime(clicks["event_ts"]).astype("datetime64[us]"))
    rows["label"] = rows["impression_id"].isin(set(clicks["impression_id"])).astype("int64")
    gmv = orders.groupby("impression_id")["gmv"].sum() if len(orders) else pd.Series(dtype=float)
    rows["gmv"] = rows["impression_id"].map(gmv).fillna(0.0).astype("float64")
    clicks = clicks.merge(impressions[["impression_id", "category"]], on="impression_id", how="left")
    imps = rows[["user_id", "item_id", "category", "event_ts"]]

    users = rows[["user_id", "feature_ts"]].drop_duplicates().reset_index(drop=True)
    for label, window in WINDOWS.items():
        users[f"user_impressions_{label}"] = _window_counts(imps, users, ["user_id"], window).astype("int64")
        users[f"user_clicks_{label}"] = _window_counts(clicks, users, ["user_id"], window).astype("int64")
        users[f"user_ctr_{label}"] = _ctr(users[f"user_clicks_{label}"], users[f"user_impressions_{label}"])
    _top_category(users, clicks)
    last = (
        pd.merge_asof(
            users.reset_index().sort_values("feature_ts"),
            clicks[["user_id", "event_ts"]].sort_values("event_ts").rename(columns={"event_ts": "_last"}),
            left_on="feature_ts",
            right_on="_last",
            by="user_id",
            allow_exact_matches=False,
        )
        .set_index("index")["_last"]
        .reindex(users.index)
    )
    hours = (users["feature_ts"] - last) / HOUR
    users["user_hours_since_last_click"] = hours.fillna(168.0).clip(upper=168.0).astype("float64")

    items = rows[["item_id", "feature_ts"]].drop_duplicates().reset_index(drop=True)
    everything = imps.assign(_all=0)
    totals = _window_counts(everything, items.assign(_all=0), ["_all"], WINDOWS["24h"])
    for label in ("24h", "7d"):
        items[f"item_impressions_{label}"] = _window_counts(imps, items, ["item_id"], WINDOWS[label]).astype(
            "int64"
        )
        items[f"item_clicks_{label}"] = _window_counts(clicks, items, ["item_id"], WINDOWS[label]).astype(
            "int64"
        )
        items[f"item_ctr_{label}"] = _ctr(items[f"item_clicks_{label}"], items[f"item_impressions_{label}"])
    items["item_popularity_24h"] = np.where(
        totals > 0, items["item_impressions_24h"] / np.maximum(totals, 1), 0.0
    )

    out = rows.merge(users, on=["user_id", "feature_ts"], how="left").merge(
        items, on=["item_id", "feature_ts"], how="left"
    )
    out["item_category"] = out["category"]
    out["item_price"] = out["price"]
    out["position"] = out["position"].astype("int64")
    return (
        out.drop(columns=["request_id"], errors="ignore").sort_values("impression_id").reset_index(drop=True)
    )


def _ctr(clicks: pd.Series, impressions: pd.Series) -> pd.Series:
    return (clicks / impressions.where(impressions > 0)).fillna(0.0).clip(upper=1.0).astype("float64")


def _top_category(users: pd.DataFrame, clicks: pd.DataFrame) -> None:
    """The category a user clicked most in the last 7 days, and its share of those clicks ('none', 0)."""
    categories = sorted(clicks["category"].dropna().unique())
    counts = np.zeros((len(users), len(categories)))
    for j, category in enumerate(categories):
        events = clicks[clicks["category"] == category]
        counts[:, j] = _window_counts(events, users, ["user_id"], WINDOWS["7d"])
    total = counts.sum(axis=1) if categories else np.zeros(len(users))
    top = counts.argmax(axis=1) if categories else np.zeros(len(users), dtype=int)
    names = np.array(categories, dtype=object)
    users["user_top_category"] = np.where(total > 0, names[top] if categories else "none", "none")
    users["user_top_category_share"] = np.where(
        total > 0, counts.max(axis=1, initial=0) / np.maximum(total, 1), 0.0
    )


def simulated_training_set(
    hours: int = 24, impressions_per_hour: int = 2000, seed: int = 7, work_dir: str | Path | None = None
) -> pd.DataFrame:
    """Simulate ``hours`` of marketplace traffic and return its point-in-time training set."""
    import tempfile

    from flywheel.simulate import SimulationConfig, simulate

    cfg = SimulationConfig(
        start=datetime(2026, 1, 1), hours=hours, seed=seed, impressions_per_hour=impressions_per_hour
    )
    with tempfile.TemporaryDirectory(prefix="flywheel-sample-", dir=work_dir) as landing:
        simulate(cfg, Path(landing))
        events = read_landed_events(landing)
    # Clicks of the last hour may land in the hour after the simulated window: keep them for labels.
    end = cfg.start + timedelta(hours=hours)
    impressions = events["impressions"][events["impressions"]["event_ts"] < end]
    return build_training_set(impressions, events["clicks"], events["orders"])
