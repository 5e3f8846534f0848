"""Difference-in-differences in SQL (sql/evaluation/did.sql) agrees with a NumPy statement of the same
estimator and clustered standard error, and its 95% interval covers a planted canary effect as promised."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pytest

from flywheel.config import Settings
from flywheel.serving.causal import DidError, DidEstimate, did_estimate
from flywheel.warehouse import Warehouse, open_warehouse

TOLERANCE = 1e-9
CANARY_START = datetime(2026, 3, 2)
BEFORE_START = CANARY_START - timedelta(days=1)
AFTER_END = CANARY_START + timedelta(days=1)
LOG = "raw.predictions"
TRIALS = 100


@pytest.fixture
def warehouse(warehouse_home: Settings) -> Warehouse:
    return open_warehouse(warehouse_home.warehouse_url)


@pytest.fixture
def duckdb_warehouse(home: Settings) -> Warehouse:
    return open_warehouse(home.warehouse_url)


@dataclass(frozen=True)
class Design:
    """A simulated canary: each user has a click rate, moved by a shock of their own in each period (their
    interest changes between the days), by a trend everyone shares, and by the effect in the canary after
    it starts. Additive and never outside [0, 1], so the expected DID is exactly ``effect``."""

    users: int = 400
    requests: float = 8.0  # Poisson mean of a user's requests in a period they are active in
    active: float = 0.8  # chance a user comes at all in a period (new and lapsed users)
    base: tuple[float, float] = (0.02, 0.30)  # a user's click rate, uniform in this range
    shock: float = 0.02  # a user's rate moves by uniform(-shock, shock) in each period
    trend: float = 0.01
    effect: float = 0.02


def simulate(rng: np.random.Generator, design: Design) -> dict[str, np.ndarray]:
    """One prediction log, request by request: user_id, is_canary, is_after, clicked, served_at."""
    canary = rng.random(design.users) < 0.5
    base = rng.uniform(*design.base, design.users)
    parts = []
    for after in (0, 1):
        n = rng.poisson(design.requests, design.users) * (rng.random(design.users) < design.active)
        rate = base + rng.uniform(-design.shock, design.shock, design.users)
        rate += after * (design.trend + design.effect * canary)
        user = np.repeat(np.arange(design.users), n)
        offset = rng.uniform(0, 86_400_000_000, user.size).astype("timedelta64[us]")
        start = np.datetime64(CANARY_START if after else BEFORE_START, "us")
        parts.append(
            {
                "user_id": user,
                "is_canary": canary[user],
                "is_after": np.full(user.size, bool(after)),
                "clicked": (rng.random(user.size) < rate[user]).astype(np.int64),
                "served_at": start + offset,
            }
        )
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def as_table(log: dict[str, np.ndarray], **extra: np.ndarray) -> pa.Table:
    """The log as serving would write it (bucket names, a request id per row) plus any extra columns."""
    return pa.table(
        {
            "request_id": pa.array(np.arange(log["user_id"].size)).cast(pa.string()),
            "user_id": pa.array(log["user_id"], pa.int64()),
            "bucket": pa.array(np.where(log["is_canary"], "canary", "champion"), pa.string()),
            "served_at": pa.array(log["served_at"], pa.timestamp("us")),
            "clicks": pa.array(log["clicked"], pa.int64()),
            **{name: pa.array(values) for name, values in extra.items()},
        }
    )


def load(warehouse: Warehouse, table: str, data: pa.Table) -> None:
    with warehouse.transaction() as conn:
        conn.ensure_table(table, data.schema)
        conn.insert_arrow(table, data)


def reference_did(user: np.ndarray, canary: np.ndarray, after: np.ndarray, y: np.ndarray) -> dict:
    """The estimator in NumPy, request by request: cell means, DID, and the variance as the sum over the
    two buckets of G_b * var(u_i, ddof=1), u_i user i's linearized contribution (see did.sql)."""
    y = y.astype(float)
    out: dict = {"variance": 0.0}
    means = {}
    for bucket, in_bucket in (("canary", canary), ("champion", ~canary)):
        ids, index = np.unique(user[in_bucket], return_inverse=True)
        contribution = np.zeros(ids.size)
        for period, sign in (("before", -1.0), ("after", 1.0)):
            cell = in_bucket & (after == (period == "after"))
            mean = y[cell].mean()
            per_user = np.bincount(index, weights=(y - mean)[in_bucket] * cell[in_bucket], minlength=ids.size)
            contribution += sign * per_user / cell.sum()
            means[bucket, period] = mean
            out[f"{bucket}_{period}_mean"] = mean
            out[f"{bucket}_{period}_requests"] = int(cell.sum())
            out[f"{bucket}_{period}_users"] = np.unique(user[cell]).size
        out[f"{bucket}_users"] = ids.size
        out["variance"] += ids.size * contribution.var(ddof=1)
    out["estimate"] = (means["canary", "after"] - means["canary", "before"]) - (
        means["champion", "after"] - means["champion", "before"]
    )
    out["std_error"] = float(np.sqrt(out.pop("variance")))
    return out


def naive_std_error(canary: np.ndarray, after: np.ndarray, y: np.ndarray) -> float:
    """What treating every request as independent would say: the four cells' sampling variances summed."""
    cells = [(canary == c) & (after == a) for c in (True, False) for a in (True, False)]
    return float(np.sqrt(sum(y[cell].var(ddof=1) / cell.sum() for cell in cells)))


def estimate(warehouse: Warehouse, table: str = LOG, **kwargs) -> DidEstimate:
    return did_estimate(warehouse, table, CANARY_START, BEFORE_START, AFTER_END, **kwargs)


def test_the_estimate_and_its_clustered_error_equal_numpy(warehouse: Warehouse) -> None:
    rng = np.random.default_rng(7)
    log = simulate(rng, Design(users=300))
    table = as_table(log)
    # Rows the estimator must ignore: outside the window, another bucket, a NULL outcome.
    noise = as_table(simulate(rng, Design(users=20)))
    shifted = pa.array(noise["served_at"].to_numpy() + np.timedelta64(3, "D"), pa.timestamp("us"))
    noise = noise.set_column(noise.schema.get_field_index("served_at"), "served_at", shifted)
    holdout = as_table(simulate(rng, Design(users=20)))
    holdout = holdout.set_column(2, "bucket", pa.array(["holdout"] * holdout.num_rows))
    unknown = table.slice(0, 50).set_column(4, "clicks", pa.nulls(50, pa.int64()))
    load(warehouse, LOG, pa.concat_tables([table, noise, holdout, unknown]))

    got = estimate(warehouse, outcome_column="clicks")
    expected = reference_did(log["user_id"], log["is_canary"], log["is_after"], log["clicked"])

    assert got.estimate == pytest.approx(expected["estimate"], abs=TOLERANCE)
    assert got.std_error == pytest.approx(expected["std_error"], abs=TOLERANCE)
    assert got.lower == pytest.approx(expected["estimate"] - 1.959963984540054 * expected["std_error"])
    assert got.upper == pytest.approx(expected["estimate"] + 1.959963984540054 * expected["std_error"])
    for bucket in ("canary", "champion"):
        assert getattr(got, f"{bucket}_users") == expected[f"{bucket}_users"]
        for period in ("before", "after"):
            cell = getattr(got, f"{bucket}_{period}")
            assert cell.mean == pytest.approx(expected[f"{bucket}_{period}_mean"], abs=TOLERANCE)
            assert cell.requests == expected[f"{bucket}_{period}_requests"]
            assert cell.users == expected[f"{bucket}_{period}_users"]


def trials_table(design: Design, seed: int) -> tuple[pa.Table, list[dict], list[float]]:
    """TRIALS logs in one table (a trial column picks one), with the NumPy answer and naive error of each."""
    rng = np.random.default_rng(seed)
    tables, expected, naive = [], [], []
    for trial in range(TRIALS):
        log = simulate(rng, design)
        tables.append(as_table(log, trial=np.full(log["user_id"].size, trial, np.int64)))
        expected.append(reference_did(log["user_id"], log["is_canary"], log["is_after"], log["clicked"]))
        naive.append(naive_std_error(log["is_canary"], log["is_after"], log["clicked"]))
    return pa.concat_tables(tables), expected, naive


def run_trials(warehouse: Warehouse, design: Design, seed: int, table: str) -> tuple[list, list, list]:
    data, expected, naive = trials_table(design, seed)
    load(warehouse, table, data)
    got = [estimate(warehouse, table, experiment_column="trial", experiment=t) for t in range(TRIALS)]
    return got, expected, naive


def test_repeated_users_widen_the_interval_to_its_nominal_coverage(duckdb_warehouse: Warehouse) -> None:
    # Users whose interest moves a lot between the days, each with many requests: their requests are far
    # from independent, so an error that treats them as independent is too small and its interval too short.
    design = Design(users=200, requests=30.0, base=(0.25, 0.45), shock=0.25, trend=0.02, effect=0.03)
    got, expected, naive = run_trials(duckdb_warehouse, design, seed=11, table="raw.correlated_trials")
    clustered = np.array([g.std_error for g in got])
    naive_se = np.array(naive)
    estimates = np.array([g.estimate for g in got])
    clustered_covers = int(np.sum(np.abs(estimates - design.effect) <= 1.959963984540054 * clustered))
    naive_covers = int(np.sum(np.abs(estimates - design.effect) <= 1.959963984540054 * naive_se))
    print(
        f"\nrepeated users: clustered SE / naive SE = {np.median(clustered / naive_se):.2f} (median); "
        f"95% interval covers the effect in {clustered_covers}/{TRIALS} trials clustered, "
        f"{naive_covers}/{TRIALS} naive"
    )
    np.testing.assert_allclose(clustered, [e["std_error"] for e in expected], atol=TOLERANCE)
    assert np.all(clustered > naive_se)
    assert clustered_covers >= 90
    assert naive_covers < clustered_covers - 10


def test_the_interval_covers_a_planted_effect_and_rarely_a_null_one(duckdb_warehouse: Warehouse) -> None:
    counts = {}
    for name, effect, seed in (("planted", 0.02, 21), ("null", 0.0, 22)):
        got, expected, _ = run_trials(duckdb_warehouse, Design(effect=effect), seed, f"raw.{name}_trials")
        np.testing.assert_allclose(
            [g.estimate for g in got], [e["estimate"] for e in expected], atol=TOLERANCE
        )
        counts[name] = (
            sum(g.lower <= effect <= g.upper for g in got) if effect else sum(g.excludes_zero for g in got)
        )
    print(
        f"\nDID 95% interval: contains the planted effect (0.02) in {counts['planted']}/{TRIALS} trials; "
        f"excludes zero in {counts['null']}/{TRIALS} trials with no effect"
    )
    assert counts["planted"] >= 90
    assert counts["null"] <= 10


@pytest.mark.parametrize(
    "drop,cell",
    [
        (lambda log: log["is_canary"] & log["is_after"], "canary after"),
        (lambda log: log["is_canary"] & ~log["is_after"], "canary before"),
        (lambda log: ~log["is_canary"] & log["is_after"], "champion after"),
    ],
)
def test_an_empty_cell_is_named(warehouse: Warehouse, drop, cell: str) -> None:
    log = simulate(np.random.default_rng(3), Design(users=40))
    load(warehouse, LOG, as_table(log).filter(pa.array(~drop(log))))
    with pytest.raises(DidError, match=f"the {cell} cell is empty: {LOG} has no"):
        estimate(warehouse)


def test_unstable_bucketing_and_a_missing_log_are_refused(warehouse: Warehouse) -> None:
    with pytest.raises(DidError, match=f"{LOG} does not exist in the warehouse"):
        estimate(warehouse)
    log = simulate(np.random.default_rng(4), Design(users=40))
    table = as_table(log)
    # One user who came back after the canary started is logged in the other bucket too.
    user = log["user_id"][log["is_after"]][0]
    moved = table.filter(pa.array((log["user_id"] == user) & log["is_after"]))
    other = "champion" if log["is_canary"][log["user_id"] == user][0] else "canary"
    load(
        warehouse,
        LOG,
        pa.concat_tables([table, moved.set_column(2, "bucket", pa.array([other] * len(moved)))]),
    )
    with pytest.raises(DidError, match="1 user\\(s\\) appear in both buckets"):
        estimate(warehouse)
