"""The ``flywheel`` command: simulate events, ingest an interval, run the demo loop, start Airflow."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import datetime
from pathlib import Path


def _hour(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO time such as 2026-01-01T00:00") from None
    if parsed.tzinfo is not None:
        from datetime import UTC

        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _cmd_simulate(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.simulate import SimulationConfig, simulate

    try:
        config = SimulationConfig(
            start=args.start,
            hours=args.hours,
            drift=args.drift,
            drift_at=args.drift_at if args.drift_at is not None else args.hours,
            strength=args.strength,
            seed=args.seed,
            impressions_per_hour=args.impressions_per_hour,
        )
    except ValueError as exc:
        print(f"flywheel simulate: {exc}", file=sys.stderr)
        return 2
    landing = Path(args.landing_dir) if args.landing_dir else get_settings().landing_dir
    summary = simulate(config, landing_dir=landing)
    print(json.dumps({**summary, "landing_dir": str(landing)}, default=str))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from flywheel.warehouse.ingest import ingest_interval

    report = ingest_interval(args.start, args.end, run_id="cli")
    print(json.dumps({**report.as_extra(), "quarantined": report.quarantined}, default=str, indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from flywheel.local.demo import run_demo

    return run_demo(hours=args.hours, seed=args.seed, impressions_per_hour=args.impressions_per_hour)


def _cmd_up(args: argparse.Namespace) -> int:
    from flywheel.local.demo import run_up

    return run_up(port=args.port)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sim = sub.add_parser("simulate", help="write hourly event files of a simulated marketplace")
    sim.add_argument("--start", type=_hour, required=True, help="first hour, e.g. 2026-01-01T00:00 (UTC)")
    sim.add_argument("--hours", type=int, required=True, help="number of hours to simulate")
    sim.add_argument("--drift", default="none", help="none | interest_shift | price_shift")
    sim.add_argument("--drift-at", type=int, default=None, help="hour offset where drift starts")
    sim.add_argument("--strength", type=float, default=1.0, help="drift strength, 0..1")
    sim.add_argument("--seed", type=int, default=7)
    sim.add_argument("--impressions-per-hour", type=int, default=2000)
    sim.add_argument("--landing-dir", default=None, help="default: $FLYWHEEL_HOME/landing")
    sim.set_defaults(func=_cmd_simulate)

    ing = sub.add_parser("ingest", help="load [start, end) from the landing zone (what ingest_events runs)")
    ing.add_argument("--start", type=_hour, required=True)
    ing.add_argument("--end", type=_hour, required=True)
    ing.set_defaults(func=_cmd_ingest)

    demo = sub.add_parser("demo", help="run the closed loop through a real Airflow on this machine")
    demo.add_argument("--hours", type=int, default=24)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--impressions-per-hour", type=int, default=2000)
    demo.set_defaults(func=_cmd_demo)

    up = sub.add_parser("up", help="start Airflow (UI and scheduler) for this home until Ctrl-C")
    up.add_argument("--port", type=int, default=8080)
    up.set_defaults(func=_cmd_up)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll drowns the progress
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
