"""The CUDA path against the CPU: the same few configurations trained on each device, side by side in one
run; prints training samples/s and validation AUC of each (they should agree within noise: CUDA trains in
mixed precision), and the AUC of the model exported from each and scored on the CPU as serving does.

Without CUDA it says so and runs the CPU part only (exit 0). On a GPU machine:
``.venv/bin/python benchmarks/gpu_train.py`` (about a minute on one GPU; add ``--hours 72`` for more rows).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

#: The configurations both devices train: the trainer's defaults, a wider net, and large batches (where a
#: GPU gains most).
CONFIGS: dict[str, dict[str, Any]] = {
    "default": {},
    "wide": {"embedding_dim": 32, "mlp_layers": 3, "mlp_width": 256, "cross_layers": 3},
    "batch 4096": {"batch_size": 4096, "lr": 1e-2},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hours", type=int, default=24, help="simulated hours of training data")
    parser.add_argument("--impressions-per-hour", type=int, default=3000)
    parser.add_argument("--epochs", type=int, default=3, help="epochs per configuration (no early stop)")
    parser.add_argument("--seed", type=int, default=7)
    # Half the cores: torch's threads spin while they wait, and on a machine shared with other work all of
    # them ran 14x slower than one (2 cores, another benchmark running).
    parser.add_argument(
        "--cpu-threads", type=int, default=max(1, (os.cpu_count() or 1) // 2), help="torch threads on CPU"
    )
    args = parser.parse_args(argv)
    for name in ("hours", "impressions_per_hour", "epochs", "cpu_threads"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    return args


def run(data: Any, params: dict[str, Any], device: str, args: argparse.Namespace, folder: Path) -> dict:
    """Train one configuration on ``device``; its throughput, best validation AUC, and the AUC of its
    export scored on the CPU."""
    from flywheel.artifacts.folder import score_exported
    from flywheel.training.model import export_model
    from flywheel.training.trainer import fit, roc_auc

    tick = time.perf_counter()
    trainer = fit(data, params, max_epochs=args.epochs, patience=args.epochs, seed=args.seed, device=device)
    wall = time.perf_counter() - tick
    # The first epoch pays for warm-up (CUDA context, kernels, allocator): throughput from the rest.
    rates = [h["samples_per_s"] for h in trainer.history[1:]] or [trainer.history[0]["samples_per_s"]]
    export_model(trainer.state_dict(), data.spec, folder)
    exported = roc_auc(data.val.label, score_exported(folder, data.val.sparse, data.val.dense))
    return {
        "samples_per_s": statistics.median(rates),
        "val_auc": trainer.best_auc,
        "exported_auc": exported,
        "wall_s": wall,
        "amp": str(trainer.amp).removeprefix("torch.") if trainer.amp else "float32",
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    from flywheel.simulate.training_set import simulated_training_set
    from flywheel.training.trainer import prepare_data

    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.insert(0, "cuda")
        print(f"CUDA: {torch.cuda.get_device_name(0)} (torch {torch.__version__}, CUDA {torch.version.cuda})")
    else:
        print(
            f"CUDA is absent on this machine (torch {torch.__version__}, CUDA build {torch.version.cuda}): "
            "running the CPU part only"
        )
    torch.set_num_threads(args.cpu_threads)
    frame = simulated_training_set(
        hours=args.hours, impressions_per_hour=args.impressions_per_hour, seed=args.seed
    )
    data = prepare_data(frame)
    print(
        f"{len(data.train):,} training rows, {len(data.val):,} validation rows; {args.epochs} epochs per "
        f"configuration; CPU: {args.cpu_threads} thread(s) of {os.cpu_count()} cores",
        flush=True,
    )
    results: dict[tuple[str, str], dict] = {}
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-gpu-") as scratch:
        # Devices alternate per configuration, so anything else on the machine weighs on both alike.
        for name, params in CONFIGS.items():
            for device in devices:
                folder = Path(scratch) / f"{device}-{name.replace(' ', '-')}"
                results[name, device] = run(data, params, device, args, folder)
                r = results[name, device]
                print(
                    f"{name} on {device}: {r['samples_per_s']:,.0f} samples/s, AUC {r['val_auc']:.4f}",
                    flush=True,
                )

    rows = [("configuration", "device", "precision", "samples/s", "val AUC", "exported AUC (CPU)", "wall s")]
    for (name, device), r in results.items():
        rows.append(
            (
                name,
                device,
                r["amp"],
                f"{r['samples_per_s']:,.0f}",
                f"{r['val_auc']:.4f}",
                f"{r['exported_auc']:.4f}",
                f"{r['wall_s']:.1f}",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    print()
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            print("  ".join("-" * w for w in widths))
    if "cuda" in devices:
        print()
        for name in CONFIGS:
            gpu, cpu = results[name, "cuda"], results[name, "cpu"]
            print(
                f"{name}: CUDA/CPU samples/s {gpu['samples_per_s'] / cpu['samples_per_s']:.1f}x; "
                f"AUC CUDA - CPU {gpu['val_auc'] - cpu['val_auc']:+.4f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
