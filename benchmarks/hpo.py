"""Benchmark: does ASHA + TPE find a good click model in fewer epochs than random search (and ASHA alone)?

Run ``.venv/bin/python benchmarks/hpo.py`` (5 seeds x 3 searches; ``--quick``: a smoke run, about 2 min).
"""

from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SPACE_FILE = Path(__file__).with_name("hpo_space.yaml")
#: Shares of random search's epochs at which the searches are compared.
BUDGET_FRACTIONS: tuple[float, ...] = (0.1, 0.25, 0.5, 1.0)
#: ASHA + TPE should need at most this share of random search's epochs to reach random's final mean best.
TARGET_RATIO = 0.2
#: Below this gap between the worst and the best random configuration, the space and data cannot tell
#: a good search from a bad one (any configuration is near the best).
MIN_CONFIG_SPREAD = 0.01
#: Float slack when a mean curve is compared with the mean it was built from.
EPS = 1e-12
#: The searches, as (scheduler, searcher); random search is the baseline and runs every trial to the end.
METHODS: dict[str, tuple[str, str]] = {
    "random": ("fifo", "random"),
    "asha+random": ("asha", "random"),
    "asha+tpe": ("asha", "tpe"),
}
BASELINE = "random"


# --- pure helpers (tests/unit/test_hpo_benchmark.py) ---------------------------------------------------


def best_so_far(timeline: Sequence[dict[str, Any]], metric: str = "val_auc") -> list[float]:
    """The best ``metric`` after each epoch, epochs counted across all trials in the order they reported."""
    curve: list[float] = []
    best = -math.inf
    for result in sorted(timeline, key=lambda r: r["time"]):
        value = float(result[metric])
        if not math.isnan(value):
            best = max(best, value)
        curve.append(best)
    return curve


def best_at(curve: Sequence[float], epochs: int) -> float:
    """The best value reached within ``epochs`` epochs; a search that stopped earlier keeps its final best."""
    if epochs < 1 or not curve:
        return math.nan
    return curve[min(epochs, len(curve)) - 1]


def epochs_to_reach(curve: Sequence[float], target: float) -> int | None:
    """The first epoch count at which the curve reaches ``target``, or None if it never does."""
    for epochs, value in enumerate(curve, start=1):
        if value >= target - EPS:
            return epochs
    return None


def mean_curve(curves: Sequence[Sequence[float]], length: int) -> list[float]:
    """The mean over seeds of best-so-far curves, each cut or extended (with its final best) to ``length``."""
    return [statistics.fmean(best_at(c, n) for c in curves) for n in range(1, length + 1)]


def budget_points(total: int, fractions: Sequence[float] = BUDGET_FRACTIONS) -> list[int]:
    """Epoch counts at the given shares of ``total`` (at least one epoch each)."""
    return [max(1, round(f * total)) for f in fractions]


def trial_finals(timeline: Sequence[dict[str, Any]], metric: str = "val_auc") -> list[float]:
    """Each trial's best ``metric`` over its epochs (for the spread across configurations)."""
    finals: dict[str, float] = {}
    for result in timeline:
        value = float(result[metric])
        finals[result["trial_id"]] = max(finals.get(result["trial_id"], -math.inf), value)
    return sorted(finals.values())


def mean_sd(values: Sequence[float]) -> str:
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return "n/a"
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.fmean(values):.4f} ± {sd:.4f}"


# --- the run ------------------------------------------------------------------------------------------


@dataclass
class SearchRun:
    method: str
    seed: int
    curve: list[float]
    finals: list[float]
    epochs: int
    wall_s: float
    samples_per_s: list[float]


def _trainer_samples_per_s(data: Any) -> float:
    import torch

    from flywheel.training.trainer import Trainer

    torch.set_num_threads(1)  # what each trial gets
    trainer = Trainer(data, {}, seed=0)
    trainer.run_epoch()  # warm-up
    return max(trainer.run_epoch().samples_per_s for _ in range(2))


def _search(
    data: Any, folder: Path, method: str, seed: int, args: argparse.Namespace, space: Any
) -> SearchRun:
    from flywheel.training.search import SearchOptions, run_search
    from flywheel.training.trainer import PATIENCE

    scheduler, searcher = METHODS[method]
    random_epochs = args.budget * args.max_epochs
    baseline = method == BASELINE
    options = SearchOptions(
        # The ASHA searches may start a trial per epoch and are stopped at random search's epoch count.
        budget=args.budget if baseline else random_epochs,
        max_epochs=args.max_epochs,
        patience=args.max_epochs if baseline else PATIENCE,  # the baseline never stops a trial early
        seed=seed,
        scheduler=scheduler,
        searcher=searcher,
        num_cpus=args.num_cpus,
        first_guess=False,  # no search is handed a good starting point
        space=space,
        max_total_epochs=None if baseline else random_epochs,
    )
    timeline: list[dict[str, Any]] = []
    started = time.perf_counter()
    run_search(data, folder, options, resume=False, emit=lambda _line: None, timeline=timeline)
    return SearchRun(
        method=method,
        seed=seed,
        curve=best_so_far(timeline),
        finals=trial_finals(timeline),
        epochs=len(timeline),
        wall_s=time.perf_counter() - started,
        samples_per_s=[float(r["samples_per_s"]) for r in timeline if r.get("samples_per_s")],
    )


def _report(runs: list[SearchRun], random_epochs: int, seeds: list[int]) -> None:
    by_method = {m: [r for r in runs if r.method == m] for m in METHODS}
    finals = [v for r in by_method[BASELINE] for v in r.finals]
    gap = max(finals) - min(finals)
    quartiles = statistics.quantiles(finals, n=4) if len(finals) > 1 else [finals[0]] * 3
    print(
        f"\ncan the space tell? best val AUC of each of the {len(finals)} random-search configurations "
        f"(all epochs): min {min(finals):.4f}, quartiles {', '.join(f'{q:.4f}' for q in quartiles)}, "
        f"max {max(finals):.4f}; worst-to-best {gap:.4f}"
        + ("" if gap >= MIN_CONFIG_SPREAD else f"  <- under {MIN_CONFIG_SPREAD}: widen the space or the data")
    )

    points = budget_points(random_epochs)
    print(f"\nbest val AUC reached within a share of random search's {random_epochs} epochs")
    print(f"(mean ± sd over {len(seeds)} seed(s): {', '.join(map(str, seeds))})")
    header = "".join(f"{f'{f:.0%} ({n} ep)':>18}" for f, n in zip(BUDGET_FRACTIONS, points, strict=True))
    print(f"{'search':<12}{header}{'epochs':>8}{'wall s':>8}")
    for method, method_runs in by_method.items():
        cells = "".join(f"{mean_sd([best_at(r.curve, n) for r in method_runs]):>18}" for n in points)
        epochs = statistics.fmean(r.epochs for r in method_runs)
        wall = statistics.fmean(r.wall_s for r in method_runs)
        print(f"{method:<12}{cells}{epochs:>8.0f}{wall:>8.1f}")

    target = statistics.fmean(best_at(r.curve, random_epochs) for r in by_method[BASELINE])
    print(f"\ntarget: random search's final mean best val AUC {target:.4f}")
    print(f"{'search':<12}{'epochs to target (mean curve)':>31}   per seed (- = not within {random_epochs})")
    reached: dict[str, int | None] = {}
    for method, method_runs in by_method.items():
        reached[method] = epochs_to_reach(mean_curve([r.curve for r in method_runs], random_epochs), target)
        per_seed = [epochs_to_reach(r.curve[:random_epochs], target) for r in method_runs]
        cell = "never" if reached[method] is None else str(reached[method])
        print(f"{method:<12}{cell:>31}   {', '.join('-' if e is None else str(e) for e in per_seed)}")
    asha_tpe, rand = reached["asha+tpe"], reached[BASELINE]
    ratio = f"{asha_tpe / rand:.2f}" if asha_tpe and rand else "n/a (asha+tpe did not reach it)"
    print(f"ratio epochs asha+tpe/random to reach it: {ratio}  (target <= {TARGET_RATIO})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="search seeds per method (0..N-1)")
    parser.add_argument("--budget", type=int, default=12, help="random search's trials")
    parser.add_argument("--max-epochs", type=int, default=9, help="epochs per trial at most")
    parser.add_argument("--hours", type=int, default=24, help="simulated hours of traffic")
    parser.add_argument("--impressions-per-hour", type=int, default=3000)
    parser.add_argument("--num-cpus", type=int, default=2, help="trials at once (one CPU each)")
    parser.add_argument("--space", type=Path, default=SPACE_FILE, help="search space YAML")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 2 seeds, tiny data and budget (overrides those flags)",
    )
    args = parser.parse_args()
    started = time.perf_counter()
    if args.quick:
        args.seeds, args.budget, args.max_epochs, args.hours, args.impressions_per_hour = 2, 4, 3, 6, 1000

    from flywheel.simulate.training_set import simulated_training_set
    from flywheel.training.space import load_search_space
    from flywheel.training.trainer import prepare_data

    space = load_search_space(args.space)
    frame = simulated_training_set(hours=args.hours, impressions_per_hour=args.impressions_per_hour)
    data = prepare_data(frame)
    random_epochs = args.budget * args.max_epochs
    print(
        f"data: {len(frame):,} impressions ({frame['label'].mean():.1%} clicked), train {len(data.train):,}, "
        f"validation {len(data.val):,}; space {args.space.name} ({len(space.parameters)} parameters)\n"
        f"random search: {args.budget} trials x {args.max_epochs} epochs = {random_epochs} epochs; "
        f"the ASHA searches start trials until they have trained as many; {args.seeds} seed(s)"
    )
    speed = _trainer_samples_per_s(data)
    print(f"trainer throughput on this CPU: {speed:,.0f} samples/s (default params, 1 thread)")

    runs: list[SearchRun] = []
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory(prefix="fw-hpo-") as tmp:
        for seed in seeds:
            for method in METHODS:
                run = _search(data, Path(tmp) / f"{method}-{seed}", method, seed, args, space)
                runs.append(run)
                print(
                    f"seed {seed} {method:<12} {run.epochs:>4} epochs, {len(run.finals):>3} trials, "
                    f"best {best_at(run.curve, random_epochs):.4f}, {run.wall_s:.0f} s",
                    flush=True,
                )
    _report(runs, random_epochs, seeds)
    per_epoch = sorted(v for r in runs for v in r.samples_per_s)
    if per_epoch:
        median = per_epoch[len(per_epoch) // 2]
        print(f"median samples/s over all trial epochs ({args.num_cpus} trials at once): {median:,.0f}")
    print(f"benchmark wall time: {(time.perf_counter() - started) / 60:.1f} min")


if __name__ == "__main__":
    main()
