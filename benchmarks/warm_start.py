"""Warm start against cold search after an interest shift: AUC on the post-drift held-out hours and wall
time, over seeds, with the real training entry point (Ray Tune search in a subprocess, as ``train`` runs it).

Per seed, one simulated world (hours from its start; T = --train-hours, C = --post-drift-hours,
H = --held-out-hours):

    [0, T)            the champion's training window (a cold search): the model in service
    T                 interest_shift switches on
    [T, T+C)          the retraining window: warm (fine-tune the champion) and cold (full search)
    [T+C, T+C+H)      post-drift held-out hours: both scored there, never trained on

Warm and cold alternate which goes first from seed to seed, so machine load falls on both alike. Training
sets are the simulator's point-in-time sets (``flywheel.simulate.training_set``: the rule the feature store
applies) rather than the warehouse's, which keeps three seeds within minutes. Printed: per seed and as mean
and spread, AUC and wall time of each, the ratios warm/cold, whether warm wins on both, and training
throughput on this machine. Run: ``nice -n 19 .venv/bin/python benchmarks/warm_start.py`` (about 5 minutes
on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2026, 1, 1)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9], help="one world per seed")
    parser.add_argument("--impressions-per-hour", type=int, default=1500)
    parser.add_argument("--train-hours", type=int, default=24, help="the champion's training window")
    parser.add_argument("--post-drift-hours", type=int, default=12, help="the retraining window")
    parser.add_argument("--held-out-hours", type=int, default=6)
    parser.add_argument("--budget", type=int, default=4, help="trials of a cold search (warm runs fewer)")
    parser.add_argument("--max-epochs", type=int, default=4, help="epochs per trial at most")
    parser.add_argument("--keep-home", action="store_true", help="keep the temporary home")
    args = parser.parse_args(argv)
    for name in ("impressions_per_hour", "train_hours", "post_drift_hours", "held_out_hours", "budget"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def simulate_world(seed: int, args: argparse.Namespace, work: Path) -> Any:
    """The point-in-time training set of every impression of one world with an interest shift at T."""
    from flywheel.simulate import SimulationConfig, simulate
    from flywheel.simulate.training_set import build_training_set, read_landed_events

    hours = args.train_hours + args.post_drift_hours + args.held_out_hours
    config = SimulationConfig(
        start=START,
        hours=hours,
        drift="interest_shift",
        drift_at=args.train_hours,
        seed=seed,
        impressions_per_hour=args.impressions_per_hour,
    )
    landing = work / f"landing-{seed}"
    simulate(config, landing)
    events = read_landed_events(landing)
    shutil.rmtree(landing)
    impressions = events["impressions"][events["impressions"]["event_ts"] < START + timedelta(hours=hours)]
    return build_training_set(impressions, events["clicks"], events["orders"])


def hours(frame: Any, first: int, end: int) -> Any:
    ts = frame["event_ts"]
    return frame[(ts >= START + timedelta(hours=first)) & (ts < START + timedelta(hours=end))]


def held_out_auc(model_dir: Path, frame: Any) -> float:
    """AUC of an exported model on rows it never saw, encoded with its own spec as serving would."""
    from flywheel.artifacts.folder import SPEC_FILE, score_exported
    from flywheel.artifacts.spec import FeatureSpec, encode
    from flywheel.training.trainer import roc_auc

    sparse, dense = encode(frame, FeatureSpec.load(model_dir / SPEC_FILE))
    return roc_auc(frame["label"].to_numpy(), score_exported(model_dir, sparse, dense))


def train(dataset_uri: str, output: Path, args: argparse.Namespace, seed: int, extra: list[str]) -> dict:
    """One run of the training entry point; its metadata plus the wall time the caller waited."""
    from flywheel.training import backends

    tick = time.perf_counter()
    metadata = backends.train(
        dataset_uri, str(output), args.budget, args.max_epochs, resume=False, seed=seed, extra_args=extra
    )
    return {**metadata, "wall_s": time.perf_counter() - tick}


def spread(values: list[float], digits: int = 4) -> str:
    """Mean ± sample standard deviation."""
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.{digits}f} ± {sd:.{digits}f}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    home = Path(tempfile.mkdtemp(prefix="flywheel-bench-warm-"))
    for name in [n for n in os.environ if n.startswith("FLYWHEEL_")]:
        del os.environ[name]  # nothing of the user's is read or written
    os.environ["FLYWHEEL_HOME"] = str(home)
    try:
        return measure(args, home)
    finally:
        if args.keep_home:
            print(f"home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)


def measure(args: argparse.Namespace, home: Path) -> int:
    from flywheel.training.dataset import snapshot_training_set
    from flywheel.training.warm import warm_budget

    T, C, H = args.train_hours, args.post_drift_hours, args.held_out_hours
    print(
        f"interest_shift at hour {T}; champion trains on [0, {T}), warm and cold on [{T}, {T + C}), "
        f"scored on [{T + C}, {T + C + H}); {args.impressions_per_hour} impressions/h; cold search "
        f"{args.budget} trials, warm {warm_budget(args.budget)}, <= {args.max_epochs} epochs each; "
        f"seeds {args.seeds}",
        flush=True,
    )
    results: dict[str, list[dict[str, Any]]] = {"warm": [], "cold": []}
    rows = [("seed", "run", "held-out AUC", "val AUC", "trials", "epochs", "wall s", "from")]
    for index, seed in enumerate(args.seeds):
        frame = simulate_world(seed, args, home)
        artifacts = home / "artifacts"
        champion_uri, _ = snapshot_training_set(hours(frame, 0, T), artifacts)
        post_uri, _ = snapshot_training_set(hours(frame, T, T + C), artifacts)
        held_out = hours(frame, T + C, T + C + H)
        champion_dir = home / f"seed{seed}-champion"
        champion = train(champion_uri, champion_dir, args, seed, [])
        rows.append(
            (
                str(seed),
                "champion",
                f"{held_out_auc(champion_dir / 'model', held_out):.4f}",
                f"{champion['metrics']['val_auc']:.4f}",
                str(champion["search"]["trial_count"]),
                str(champion["search"]["epochs_total"]),
                f"{champion['wall_s']:.1f}",
                "-",
            )
        )
        warm_args = ["--warm-start-from", str(champion_dir / "model"), "--warm-start-version", "champion"]
        order = ("warm", "cold") if index % 2 == 0 else ("cold", "warm")
        for kind in order:
            output = home / f"seed{seed}-{kind}"
            run = train(post_uri, output, args, seed, warm_args if kind == "warm" else [])
            if kind == "warm" and not run["warm_start"]["from"]:
                raise RuntimeError(f"seed {seed}: the warm run searched cold: {run['warm_start']['reason']}")
            run["held_out_auc"] = held_out_auc(output / "model", held_out)
            results[kind].append(run)
            rows.append(
                (
                    str(seed),
                    kind,
                    f"{run['held_out_auc']:.4f}",
                    f"{run['metrics']['val_auc']:.4f}",
                    str(run["search"]["trial_count"]),
                    str(run["search"]["epochs_total"]),
                    f"{run['wall_s']:.1f}",
                    run["warm_start"]["from"] or "-",
                )
            )
            print(
                f"seed {seed} {kind}: held-out AUC {run['held_out_auc']:.4f}, {run['wall_s']:.1f} s",
                flush=True,
            )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))

    auc = {k: [r["held_out_auc"] for r in v] for k, v in results.items()}
    wall = {k: [r["wall_s"] for r in v] for k, v in results.items()}
    print()
    print(
        f"post-drift held-out AUC (mean ± sd over {len(args.seeds)} seeds): "
        f"warm {spread(auc['warm'])}, cold {spread(auc['cold'])}"
    )
    print(f"wall time s (mean ± sd): warm {spread(wall['warm'], 1)}, cold {spread(wall['cold'], 1)}")
    auc_ratio = statistics.mean(auc["warm"]) / statistics.mean(auc["cold"])
    wall_ratio = statistics.mean(wall["warm"]) / statistics.mean(wall["cold"])
    paired = [w - c for w, c in zip(auc["warm"], auc["cold"], strict=True)]
    print(
        f"warm/cold: AUC ratio {auc_ratio:.4f} (paired difference warm - cold {spread(paired)}), "
        f"wall-time ratio {wall_ratio:.3f}"
    )
    wins_auc, wins_wall = auc_ratio > 1.0, wall_ratio < 1.0
    verdict = "on by default" if wins_auc and wins_wall else "off by default"
    print(
        f"warm wins on AUC: {'yes' if wins_auc else 'no'}; on wall time: {'yes' if wins_wall else 'no'} "
        f"-> FLYWHEEL_TRAIN_WARM_START {verdict}"
    )
    every = [r for runs in results.values() for r in runs]
    throughput = [r["metrics"]["samples_per_s"] for r in every if r["metrics"].get("samples_per_s")]
    print(
        f"training throughput on this CPU (best trial's best epoch, 1 thread per trial, {os.cpu_count()} "
        f"cores, 2 trials at once): {statistics.mean(throughput):,.0f} samples/s "
        f"(min {min(throughput):,.0f}, max {max(throughput):,.0f})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
