"""The canary's analysis on logs written as the gateway and the users write them: the DID verdict of a step
and the live guards."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from flywheel.events import hour_dir
from flywheel.serving.canary import ADVANCE, HOLD, ROLLBACK, GuardLimits, analyse_step, guard_breach

CANARY_START = datetime(2026, 3, 1, 12, 0)
BEFORE_START = CANARY_START - timedelta(minutes=5)
STEP_START = CANARY_START
AFTER_END = CANARY_START + timedelta(minutes=5)
CANDIDATES, SHOWN = 6, 4


def _write(landing: Path, table: str, rows: dict[str, list], hour: datetime, name: str) -> None:
    folder = hour_dir(landing, table, hour)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(rows), folder / f"{name}.parquet")


def _log(
    landing: Path,
    *,
    users: int,
    requests: int,
    weight: float,
    champion_ctr: float,
    canary_ctr: float,
    seed: int = 0,
    canary_score_factor: float = 1.0,
) -> None:
    """Requests spread over [BEFORE_START, AFTER_END): champion only before CANARY_START, then users whose
    hash is below ``weight`` get the canary. Each request scores CANDIDATES items, SHOWN are shown."""
    rng = np.random.default_rng(seed)
    user_hash = rng.random(users)
    span = (AFTER_END - BEFORE_START).total_seconds()
    p: dict[str, list] = {
        k: []
        for k in (
            "prediction_id",
            "request_id",
            "impression_id",
            "event_ts",
            "user_id",
            "item_id",
            "position",
            "score",
            "model_version",
            "bucket",
            "user_hash",
            "latency_ms",
        )
    }
    shown: list[str] = []
    clicked: list[str] = []
    for r in range(requests):
        user = int(rng.integers(users))
        at = BEFORE_START + timedelta(seconds=float(rng.random() * span))
        canary = at >= CANARY_START and user_hash[user] < weight
        ctr = canary_ctr if canary else champion_ctr
        for index in range(CANDIDATES):
            impression = f"r{r}-{index}"
            p["prediction_id"].append(impression)
            p["request_id"].append(f"r{r}")
            p["impression_id"].append(impression)
            p["event_ts"].append(at)
            p["user_id"].append(user)
            p["item_id"].append(index)
            p["position"].append(index + 1)
            p["score"].append(ctr * (canary_score_factor if canary else 1.0))
            p["model_version"].append("v2" if canary else "v1")
            p["bucket"].append("canary" if canary else "champion")
            p["user_hash"].append(float(user_hash[user]))
            p["latency_ms"].append(3.0)
            if index < SHOWN:
                shown.append(impression)
                if rng.random() < ctr:
                    clicked.append(impression)
    _write(landing, "predictions", p, CANARY_START, "gateway")
    _write(landing, "impressions", {"impression_id": shown}, CANARY_START, "traffic")
    _write(landing, "clicks", {"impression_id": clicked}, CANARY_START, "traffic")


def _analyse(landing: Path, weight: float, final: bool = False):
    return analyse_step(
        landing,
        "v2",
        "v1",
        weight,
        canary_start=CANARY_START,
        before_start=BEFORE_START,
        step_start=STEP_START,
        after_end=AFTER_END,
        ctr_margin=0.02,
        final=final,
    )


def test_an_equal_canary_advances(tmp_path: Path) -> None:
    _log(tmp_path, users=3000, requests=12000, weight=0.5, champion_ctr=0.1, canary_ctr=0.1)
    result = _analyse(tmp_path, 0.5)
    assert result.decision == ADVANCE, result.summary()
    assert result.did_lower > -0.02 and result.did_lower < 0 < result.did_upper
    assert result.canary_ctr == pytest.approx(0.1, abs=0.01)


def test_a_clearly_worse_canary_rolls_back(tmp_path: Path) -> None:
    _log(tmp_path, users=3000, requests=12000, weight=0.5, champion_ctr=0.1, canary_ctr=0.04)
    result = _analyse(tmp_path, 0.5)
    assert result.decision == ROLLBACK and "lowers CTR" in result.reason
    assert result.did_estimate == pytest.approx(-0.06, abs=0.015)


def test_too_few_requests_hold_then_roll_back_when_time_is_up(tmp_path: Path) -> None:
    _log(tmp_path, users=200, requests=300, weight=0.1, champion_ctr=0.1, canary_ctr=0.1)
    assert _analyse(tmp_path, 0.1).decision == HOLD
    final = _analyse(tmp_path, 0.1, final=True)
    assert final.decision == ROLLBACK and "time ran out" in final.reason


def test_only_shown_items_count(tmp_path: Path) -> None:
    _log(tmp_path, users=500, requests=2000, weight=0.5, champion_ctr=0.1, canary_ctr=0.1)
    result = _analyse(tmp_path, 0.5)
    assert result.canary_requests > 0
    # CTR is clicks per shown item: unshown candidates (never clickable) would halve it.
    assert result.champion_ctr == pytest.approx(0.1, abs=0.02)


def test_no_log_holds(tmp_path: Path) -> None:
    result = _analyse(tmp_path, 0.05)
    assert result.decision == HOLD and "no prediction" in result.reason


def test_scores_that_mean_something_else_are_reported_not_gated(tmp_path: Path) -> None:
    _log(
        tmp_path,
        users=3000,
        requests=12000,
        weight=0.5,
        champion_ctr=0.1,
        canary_ctr=0.1,
        canary_score_factor=4,
    )
    result = _analyse(tmp_path, 0.5)
    assert result.decision == ADVANCE
    assert "mean something else" in result.notes[0] and "the champion's ratio" in result.summary()


def test_at_100_percent_the_guards_decide(tmp_path: Path) -> None:
    _log(tmp_path, users=500, requests=2000, weight=1.0, champion_ctr=0.1, canary_ctr=0.1)
    result = _analyse(tmp_path, 1.0)
    assert result.decision == ADVANCE and "no control group" in result.reason
    assert result.champion_requests == 0 and result.canary_requests > 0


def _stats(requests: int, errors: int, p99: float) -> dict:
    return {
        "versions": {
            "v2": {
                "requests": 900,
                "errors": 3,
                "window_seconds": 60,
                "window_requests": requests,
                "window_errors": errors,
                "p99_ms": p99,
            }
        }
    }


@pytest.mark.parametrize(
    ("stats", "breach"),
    [
        (_stats(100, 0, 20.0), None),
        (_stats(100, 5, 20.0), "error rate 5.0%"),
        (_stats(100, 0, 250.0), "p99 latency 250.0 ms"),
        (_stats(10, 10, 900.0), None),  # too few requests in the window to judge
        ({"versions": {}}, None),
    ],
)
def test_guards(stats: dict, breach: str | None) -> None:
    found = guard_breach(stats, "v2", GuardLimits(max_error_rate=0.01, p99_ms=100.0))
    assert (found is None) if breach is None else (breach in found)
