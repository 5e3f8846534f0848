"""Benchmark: ASHA + TPE against random search (no early stopping) on the same data and trial budget.

Run ``.venv/bin/python benchmarks/hpo.py``; it prints, side by side, the training epochs each search
spent, the best validation AUC each found, the epochs each needed to come within 0.005 of the best AUC
either found, and the ratios ASHA+TPE / random (target <= 0.3), plus the trainer's samples per second.
"""

from __future__ import annotations

import argparse
import math
import tempfile
import time
from pathlib import Path
from typing import Any

#: How close to the best AUC of both searches counts as "found it".
AUC_TOLERANCE = 0.005
#: The epoch ratio ASHA + TPE should stay under against random search.
TARGET_RATIO = 0.3


def _epochs_to_reach(timeline: list[dict[str, Any]], target: float) -> int | None:
    """Epochs trained (in the order results arrived) until some trial first reported >= target."""
    for count, result in enumerate(sorted(timeline, key=lambda r: r["time"]), start=1):
        if result["val_auc"] >= target:
            return count
    return None


def _trainer_samples_per_s(data: Any) -> float:
    import torch

    from flywheel.training.trainer import Trainer

    torch.set_num_threads(1)  # what each trial gets
    trainer = Trainer(data, {}, seed=0)
    trainer.run_epoch()  # warm-up
    return max(trainer.run_epoch().samples_per_s for _ in range(2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=int, default=12, help="trials per search")
    parser.add_argument("--max-epochs", type=int, default=9)
    parser.add_argument("--hours", type=int, default=24, help="simulated hours of traffic")
    parser.add_argument("--impressions-per-hour", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    from flywheel.simulate.training_set import simulated_training_set
    from flywheel.training.search import SearchOptions, run_search
    from flywheel.training.trainer import PATIENCE, prepare_data

    frame = simulated_training_set(hours=args.hours, impressions_per_hour=args.impressions_per_hour)
    data = prepare_data(frame)
    print(
        f"data: {len(frame):,} impressions ({frame['label'].mean():.1%} clicked), train {len(data.train):,}, "
        f"validation {len(data.val):,}; budget {args.budget} trials, at most {args.max_epochs} epochs each"
    )
    samples_per_s = _trainer_samples_per_s(data)

    # No hand-picked first guess: each search finds good settings by itself.
    searches = {
        "asha+tpe": SearchOptions(
            args.budget, args.max_epochs, patience=PATIENCE, seed=args.seed, first_guess=False
        ),
        "random": SearchOptions(
            args.budget,
            args.max_epochs,
            patience=args.max_epochs,  # no early stopping: every trial runs all its epochs
            seed=args.seed,
            scheduler="fifo",
            searcher="random",
            first_guess=False,
        ),
    }
    outcomes: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fw-hpo-") as tmp:
        for name, options in searches.items():
            timeline: list[dict[str, Any]] = []
            started = time.perf_counter()
            outcome = run_search(
                data, Path(tmp) / name, options, resume=False, emit=lambda _line: None, timeline=timeline
            )
            outcomes[name] = {
                "epochs": outcome.epochs_total,
                "trials": outcome.trial_count,
                "best": max(r["val_auc"] for r in timeline),
                "timeline": timeline,
                "wall_s": time.perf_counter() - started,
            }

    best = max(o["best"] for o in outcomes.values())
    target = best - AUC_TOLERANCE
    print(f"overall best val AUC {best:.4f}; target = best - {AUC_TOLERANCE} = {target:.4f}")
    print(
        f"{'search':<10} {'trials':>6} {'epochs':>7} {'best AUC':>9} {'epochs to target':>17} {'wall s':>7}"
    )
    for name, o in outcomes.items():
        o["to_target"] = _epochs_to_reach(o["timeline"], target)
        reached = "never" if o["to_target"] is None else str(o["to_target"])
        row = f"{name:<10} {o['trials']:>6} {o['epochs']:>7} {o['best']:>9.4f} {reached:>17}"
        print(f"{row} {o['wall_s']:>7.1f}")

    asha, rand = outcomes["asha+tpe"], outcomes["random"]
    ratio = asha["epochs"] / rand["epochs"]
    print(f"ratio asha+tpe/random, total epochs:     {ratio:.2f}  (target <= {TARGET_RATIO})")
    if asha["to_target"] and rand["to_target"]:
        print(f"ratio asha+tpe/random, epochs to target: {asha['to_target'] / rand['to_target']:.2f}")
    else:
        missing = [n for n, o in outcomes.items() if not o["to_target"]]
        print(
            f"ratio asha+tpe/random, epochs to target: n/a ({', '.join(missing)} never came within tolerance)"
        )
    print(f"AUC gap asha+tpe - random:               {asha['best'] - rand['best']:+.4f}")
    per_epoch = [r["samples_per_s"] for o in outcomes.values() for r in o["timeline"] if r["samples_per_s"]]
    median = sorted(per_epoch)[len(per_epoch) // 2] if per_epoch else math.nan
    print(
        f"trainer throughput on this CPU: {samples_per_s:,.0f} samples/s (default params, 1 thread); "
        f"median over all trial epochs {median:,.0f} samples/s"
    )


if __name__ == "__main__":
    main()
