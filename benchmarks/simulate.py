"""Benchmark: simulate one million impressions (with their clicks and orders) into a temporary landing zone.

Run ``.venv/bin/python benchmarks/simulate.py``; it times generation and Parquet writing side by side.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime
from pathlib import Path

from flywheel.simulate import SimulationConfig
from flywheel.simulate.events import generate_events
from flywheel.simulate.writer import write_batch

#: Wall-clock budget for a million impressions; the simulator must stay well inside it.
BUDGET_S = 60.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--impressions", type=int, default=1_000_000)
    parser.add_argument("--hours", type=int, default=24)
    args = parser.parse_args()

    cfg = SimulationConfig(
        start=datetime(2026, 1, 1),
        hours=args.hours,
        drift="interest_shift",
        drift_at=args.hours // 2,
        impressions_per_hour=round(args.impressions / args.hours),
    )
    counts = {"impressions": 0, "clicks": 0, "orders": 0}
    generate_s = write_s = 0.0
    with tempfile.TemporaryDirectory(prefix="flywheel-bench-") as landing:
        # The same loop as simulate(), with a clock around each half, so both are measured in one run.
        started = time.perf_counter()
        batches = generate_events(cfg)
        while True:
            tick = time.perf_counter()
            batch = next(batches, None)
            generate_s += time.perf_counter() - tick
            if batch is None:
                break
            tick = time.perf_counter()
            write_batch(batch, Path(landing))
            write_s += time.perf_counter() - tick
            counts[batch.table] += batch.data.num_rows
        wall_s = time.perf_counter() - started

    print(
        f"hours {cfg.hours}, impressions {counts['impressions']:,}, clicks {counts['clicks']:,}, "
        f"orders {counts['orders']:,}"
    )
    print(f"wall time            {wall_s:8.2f} s")
    print(f"impressions/second   {counts['impressions'] / wall_s:12,.0f}")
    print(f"generation           {generate_s:8.2f} s")
    print(f"parquet writing      {write_s:8.2f} s")
    print(f"generation / writing {generate_s / write_s:8.2f}")
    print(f"wall / {BUDGET_S:.0f} s budget  {wall_s / BUDGET_S:8.3f}")


if __name__ == "__main__":
    main()
