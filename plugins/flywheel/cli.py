"""The ``flywheel`` command: simulate events, ingest an interval, run the demo loop, start Airflow, PSI."""

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

    return run_demo(
        hours=args.hours,
        seed=args.seed,
        impressions_per_hour=args.impressions_per_hour,
        drift=args.drift,
        drift_at=args.drift_at,
    )


def _cmd_up(args: argparse.Namespace) -> int:
    from flywheel.local.demo import run_up

    return run_up(port=args.port)


def _cmd_psi(args: argparse.Namespace) -> int:
    from flywheel.monitoring.psi_cli import run_psi, split_names

    return run_psi(
        warehouse_url=args.warehouse,
        reference=args.reference,
        current=args.current,
        features=split_names(args.features),
        categorical=split_names(args.categorical),
        bins=args.bins,
        output_format=args.format,
    )


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
    demo.add_argument("--hours", type=int, default=72)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--impressions-per-hour", type=int, default=2000)
    demo.add_argument("--drift", default="interest_shift", help="none | interest_shift | price_shift")
    demo.add_argument("--drift-at", type=int, default=48, help="hour the drift starts (>= --hours: none)")
    demo.set_defaults(func=_cmd_demo)

    up = sub.add_parser("up", help="start Airflow (UI and scheduler) for this home until Ctrl-C")
    up.add_argument("--port", type=int, default=8080)
    up.set_defaults(func=_cmd_up)

    psi = sub.add_parser(
        "psi",
        help="population stability index of each feature, current against reference (read-only)",
        description="REL is a table name (schema.table) or one read-only select query. Refusals exit 2.",
    )
    psi.add_argument("--warehouse", default=None, help="warehouse URL (default: FLYWHEEL_WAREHOUSE_URL)")
    psi.add_argument("--reference", required=True, metavar="REL", help="the rows the model was trained on")
    psi.add_argument("--current", required=True, metavar="REL", help="the rows to compare with them")
    psi.add_argument("--features", required=True, help="comma-separated columns, e.g. price,position")
    psi.add_argument("--categorical", default="", help="comma-separated columns to bin by category")
    psi.add_argument("--bins", type=int, default=10, help="quantile bins per numeric feature (default 10)")
    psi.add_argument("--format", choices=("table", "json"), default="table")
    psi.set_defaults(func=_cmd_psi)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll drowns the progress
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
