"""Does retraining recover after an interest shift? The pre-drift champion and a challenger retrained after
the shift, trained by the real search (Ray Tune, ASHA + TPE) and judged by ``flywheel.evaluation``.

One simulated world in a temporary home, hours counted from its start (T = --train-hours, H =
--held-out-hours; defaults 24 and 6):

    [0, T)            champion's training window
    [T, O)            pre-drift held-out window (O = T + H, the interest_shift onset)
    [O, O+H)          just after the onset: the champion alone, to show what the drift cost at once
    [O, O+C)          challenger's training window (post-drift hours only; C = --challenger-hours)
    [O+C, O+C+H)      post-drift held-out window

Evaluation holds out the newest published hours, so an earlier window is judged while the hours after it
are withdrawn from publication, and published again afterwards. Printed: AUC and CTR@5 with 95% bootstrap
intervals of the champion before the drift, just after it and on the post-drift window, of the challenger
on the post-drift window, the paired difference challenger - champion there, the recovery ratio
(challenger's post-drift AUC / champion's pre-drift AUC) against the 0.95 target next to the same ratio
without retraining (the champion's), and wall times. Run: ``nice -n 19 .venv/bin/python
benchmarks/retrain_after_drift.py`` (about 2.5 minutes on 2 cores with the defaults).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import shutil
import sys
import tempfile
import time
import warnings
from datetime import timedelta
from typing import Any

#: The compass: a retrained model recovers at least this share of the pre-drift AUC.
RECOVERY_TARGET = 0.95
#: z of a two-sided 95% interval, to turn percentile intervals into standard errors for the ratio.
Z95 = 1.959964


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seed", type=int, default=7, help="seeds the world, the search and the bootstrap")
    parser.add_argument("--impressions-per-hour", type=int, default=2000)
    parser.add_argument("--train-hours", type=int, default=24, help="the champion's training window")
    parser.add_argument(
        "--challenger-hours", type=int, default=None, help="the challenger's (default: --train-hours)"
    )
    parser.add_argument("--held-out-hours", type=int, default=6, help="each held-out window")
    parser.add_argument("--budget", type=int, default=4, help="trials per search")
    parser.add_argument("--max-epochs", type=int, default=4, help="epochs per trial at most")
    parser.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--verbose", action="store_true", help="log the pipeline's and the search's lines")
    parser.add_argument(
        "--keep-home", action="store_true", help="keep the temporary home (warehouse, models, report)"
    )
    args = parser.parse_args(argv)
    numbers = ("impressions_per_hour", "train_hours", "held_out_hours", "budget", "max_epochs")
    for name in (*numbers, *(("challenger_hours",) if args.challenger_hours is not None else ())):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def _check(evaluation: Any, name: str) -> Any:
    return next(c for c in evaluation.decision.checks if c.name == name and c.slice == "all")


def _interval(value: float, lower: float, upper: float) -> str:
    if not math.isfinite(value):
        return "-"
    return f"{value:.4f} [{lower:.4f}, {upper:.4f}]"


def _signed(value: float | None, lower: float, upper: float) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.4f} [{lower:+.4f}, {upper:+.4f}]"


def ratio_interval(num: Any, den: Any) -> tuple[float, float, float]:
    """``num / den`` of two checks' candidate values on independent windows, with an approximate 95%
    interval by the delta method (each standard error read off its percentile interval)."""
    a, b = num.candidate, den.candidate
    se_a = (num.candidate_upper - num.candidate_lower) / (2 * Z95)
    se_b = (den.candidate_upper - den.candidate_lower) / (2 * Z95)
    ratio = a / b
    se = ratio * math.sqrt((se_a / a) ** 2 + (se_b / b) ** 2)
    return ratio, ratio - Z95 * se, ratio + Z95 * se


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = tempfile.mkdtemp(prefix="flywheel-bench-retrain-")
    try:
        return measure(args, home)
    finally:
        # A run leaves about 100 MB (warehouse, feature store, models, Ray's results): removed unless asked.
        if args.keep_home:
            print(f"home kept for inspection: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: str) -> int:
    """Build the world in ``home``, train, judge, print; returns the exit status."""
    T, H, C = args.train_hours, args.held_out_hours, args.challenger_hours or args.train_hours
    onset = T + H
    hours = onset + C + H
    # Nothing of the user's is read or written: every FLYWHEEL_* variable is dropped, the home is temporary.
    for name in [n for n in os.environ if n.startswith("FLYWHEEL_")]:
        del os.environ[name]
    os.environ.update(
        FLYWHEEL_HOME=home,
        FLYWHEEL_EVAL_HELD_OUT_HOURS=str(H),
        FLYWHEEL_EVAL_RESAMPLES=str(args.resamples),
        FLYWHEEL_EVAL_SEED=str(args.seed),
    )
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s")
    if not args.verbose:
        import feast  # noqa: F401  its modules reset the warning filters when first imported

        warnings.filterwarnings("ignore", category=DeprecationWarning)  # ibis' notices would bury the table

    from flywheel.config import get_settings
    from flywheel.evaluation.evaluate import evaluate
    from flywheel.feature_store.store import training_set
    from flywheel.simulate.scenario import START, prepare_drift_world
    from flywheel.training.runs import train_and_register
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.published import publish_hours, withdraw_hours

    settings = get_settings()

    def at(hour: int) -> Any:
        return START + timedelta(hours=hour)

    print(
        f"world: interest_shift at hour {onset} of {hours}, {args.impressions_per_hour} impressions/h, "
        f"seed {args.seed}; champion trains on [0, {T}), pre-drift held-out [{T}, {onset}); challenger "
        f"trains on [{onset}, {onset + C}), post-drift held-out [{onset + C}, {hours}); search: "
        f"{args.budget} trials x <= {args.max_epochs} epochs; home {home}",
        flush=True,
    )
    walls: dict[str, float] = {}
    started = tick = time.perf_counter()
    prepare_drift_world(
        settings,
        "interest_shift",
        hours=hours,
        drift_at=onset,
        impressions_per_hour=args.impressions_per_hour,
        reference_hours=(0, T),
        seed=args.seed,
    )
    walls["world (simulate, ingest, dbt, publish)"] = time.perf_counter() - tick

    trained = {}
    for name, first, span in (("champion", 0, T), ("challenger", onset, C)):
        tick = time.perf_counter()
        frame = training_set(at(first), at(first + span), settings)
        trained[name] = train_and_register(
            frame,
            settings,
            budget=args.budget,
            max_epochs=args.max_epochs,
            run_id=f"retrain-after-drift-{name}",
            seed=args.seed,
        )
        walls[f"{name} training ({len(frame):,} rows)"] = time.perf_counter() - tick
        print(
            f"{name}: {trained[name]['version']}, {len(frame):,} training rows ({frame['label'].mean():.2%} "
            f"clicked), validation AUC {trained[name]['val_auc']:.4f}",
            flush=True,
        )
    champion, challenger = trained["champion"]["version"], trained["challenger"]["version"]

    tick = time.perf_counter()
    warehouse = open_warehouse(settings.warehouse_url)

    def evaluate_until(end: int, candidate: str, label: str, baseline: str | None = None) -> Any:
        """``evaluate`` on the H hours before ``end``: the hours after it are withdrawn meanwhile."""
        if end < hours:
            withdraw_hours(warehouse, at(end), at(hours))
        try:
            result = evaluate(candidate, champion=baseline, settings=settings, evaluation_id=label)
        finally:
            if end < hours:
                publish_hours(warehouse, at(end), at(hours), "scenario")
        if result.window != (at(end - H), at(end)):
            raise RuntimeError(f"{label} ran on {result.window}, not [{at(end - H)}, {at(end)})")
        return result

    pre = evaluate_until(onset, champion, "champion-pre-drift")
    onset_champion = evaluate_until(onset + H, champion, "champion-after-onset")
    post_champion = evaluate_until(hours, champion, "champion-post-drift")
    post = evaluate_until(hours, challenger, "challenger-post-drift", baseline=champion)
    walls["evaluations (4)"] = time.perf_counter() - tick

    def window_of(evaluation: Any, name: str) -> str:
        first, end = (int((t - START) / timedelta(hours=1)) for t in evaluation.window)
        return f"{name} [{first}, {end})"

    rows = [("window (hours)", "model", "impressions", "AUC [95% CI]", "CTR@5 [95% CI]")]
    for window, model, evaluation in (
        (window_of(pre, "pre-drift"), f"champion {champion}", pre),
        (window_of(onset_champion, "after onset"), f"champion {champion}", onset_champion),
        (window_of(post, "post-drift"), f"champion {champion}", post_champion),
        (window_of(post, "post-drift"), f"challenger {challenger}", post),
    ):
        auc, ctr = _check(evaluation, "auc"), _check(evaluation, "ctr@5")
        rows.append(
            (
                window,
                model,
                f"{evaluation.rows:,}",
                _interval(auc.candidate, auc.candidate_lower, auc.candidate_upper),
                _interval(ctr.candidate, ctr.candidate_lower, ctr.candidate_upper),
            )
        )
    auc, ctr = _check(post, "auc"), _check(post, "ctr@5")
    rows.append(
        (
            window_of(post, "post-drift"),
            "challenger - champion (paired)",
            f"{post.rows:,}",
            _signed(auc.difference, auc.lower, auc.upper),
            _signed(ctr.difference, ctr.lower, ctr.upper),
        )
    )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))

    # The champion's value in the paired comparison is the one it scored alone on the same window.
    if not math.isclose(auc.champion, _check(post_champion, "auc").candidate):
        raise RuntimeError(
            f"champion AUC {auc.champion} paired, {_check(post_champion, 'auc').candidate} alone"
        )
    print()
    for label, num in (
        ("no retraining, just after onset: champion", onset_champion),
        ("no retraining, post-drift: champion", post_champion),
        ("retrained, post-drift: challenger", post),
    ):
        ratio, low, high = ratio_interval(_check(num, "auc"), _check(pre, "auc"))
        verdict = "PASS" if ratio >= RECOVERY_TARGET else "MISS"
        print(
            f"{label} AUC / champion pre-drift AUC = {ratio:.3f} [{low:.3f}, {high:.3f}]; "
            f"target >= {RECOVERY_TARGET}: {verdict}"
        )
    print("(ratio intervals: approximate 95%, delta method; the windows are independent samples)")
    failed = ", ".join(f"{c.name} on {c.slice}" for c in post.decision.failed) or "none"
    print(
        f"gate, challenger against champion post-drift: {'PASSED' if post.passed else 'REJECTED'} "
        f"(failed checks: {failed}); report {post.report_uri}"
        + ("" if args.keep_home else " (removed with the home; --keep-home keeps it)")
    )
    walls["total"] = time.perf_counter() - started
    print("wall time: " + "; ".join(f"{name} {seconds:.0f} s" for name, seconds in walls.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
