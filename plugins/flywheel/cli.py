"""The ``flywheel`` command: simulate, ingest an interval, run the demo loop, start Airflow, PSI, evaluate.

Bad input (flags, any ``FLYWHEEL_*`` value, a warehouse or folder it cannot use) is refused before anything
is written: one line ``flywheel <command>: <problem>; <fix>`` on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import sys
import tempfile
from dataclasses import asdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

#: The exit code of a refusal (argparse's own usage errors exit 2 as well).
REFUSED = 2


class Refusal(Exception):
    """Input the command will not act on; ``main`` prints it as one line and exits 2."""

    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(f"{problem}; {fix}")


def _hour(value: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not an ISO time such as 2026-01-01T00:00") from None
    if parsed.tzinfo is not None:
        from datetime import UTC

        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _on_the_hour(flag: str, value: datetime) -> None:
    hour = value.replace(minute=0, second=0, microsecond=0)
    if value != hour:
        later = hour + timedelta(hours=1)
        raise Refusal(
            f"{flag} {value.isoformat()} is not on a whole hour",
            f"events are filed by hour: use {flag} {hour.isoformat()} or {later.isoformat()}",
        )


def _simulation(command: str, **fields: Any) -> Any:
    """A ``SimulationConfig``, or a refusal that names the flag at fault."""
    from flywheel.simulate import SimulationConfig
    from flywheel.simulate.config import DRIFTS

    if fields["drift"] not in DRIFTS:
        raise Refusal(
            f"--drift {fields['drift']!r} is not a drift scenario", f"use one of {', '.join(DRIFTS)}"
        )
    _on_the_hour("--start", fields["start"])
    try:
        return SimulationConfig(**fields)
    except ValueError as exc:
        raise Refusal(str(exc), f"change that flag (flywheel {command} --help)") from None


def _writable(folder: Path, what: str, fix: str) -> None:
    """Refuse unless files can be created in ``folder`` (created if missing, as the command would)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as exc:
        raise Refusal(f"cannot write to the {what} {folder} ({exc.strerror or exc})", fix) from None


def _reachable_warehouse(url: str) -> None:
    """Refuse unless the warehouse opens: a server that does not answer fails here, not mid-ingest."""
    from flywheel.config import redacted
    from flywheel.warehouse import open_warehouse
    from flywheel.warehouse.base import WarehouseError
    from flywheel.warehouse.templates import render_sql

    fix = "start it, or point FLYWHEEL_WAREHOUSE_URL at a running warehouse"
    try:
        warehouse = open_warehouse(url)
        if warehouse.dialect != "duckdb":  # a DuckDB file is created by the first write, as it should be
            warehouse.read_arrow(render_sql("ping.sql"))
    except (WarehouseError, OSError) as exc:
        raise Refusal(f"cannot open the warehouse {redacted(url)} ({exc})", fix) from None
    except Exception as exc:  # noqa: BLE001 - each driver has its own error class; all mean "not reachable"
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Refusal(f"cannot reach the warehouse {redacted(url)} ({reason})", fix) from None


def _cmd_simulate(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.simulate import simulate

    config = _simulation(
        "simulate",
        start=args.start,
        hours=args.hours,
        drift=args.drift,
        drift_at=args.drift_at if args.drift_at is not None else args.hours,
        strength=args.strength,
        seed=args.seed,
        impressions_per_hour=args.impressions_per_hour,
    )
    landing = Path(args.landing_dir) if args.landing_dir else get_settings().landing_dir
    _writable(landing, "landing folder", "choose a writable --landing-dir (or FLYWHEEL_LANDING_DIR)")
    summary = simulate(config, landing_dir=landing)
    print(json.dumps({**summary, "landing_dir": str(landing)}, default=str))
    return 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.ingest.load import load_events

    _on_the_hour("--start", args.start)
    _on_the_hour("--end", args.end)
    if args.end <= args.start:
        raise Refusal(
            f"--end {args.end.isoformat()} is not after --start {args.start.isoformat()}",
            f"ingest loads [start, end): e.g. --end {(args.start + timedelta(hours=1)).isoformat()}",
        )
    _reachable_warehouse(get_settings().warehouse_url)
    report = load_events(args.start, args.end, run_id="cli")
    print(json.dumps({**report.as_extra(), "quarantined": report.quarantined}, default=str, indent=2))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.local.demo import plan_windows, run_demo, set_aside_previous, world_start

    # The simulation the demo starts with, checked before the demo creates its home or starts Airflow.
    _simulation(
        "demo",
        start=world_start(args.hours),
        hours=args.hours,
        drift=args.drift,
        drift_at=args.drift_at,
        seed=args.seed,
        impressions_per_hour=args.impressions_per_hour,
    )
    if args.drift != "none":
        try:
            plan_windows(args.hours, args.drift_at, get_settings().evaluation.held_out_hours)
        except ValueError as exc:
            problem, _, fix = str(exc).partition("; use ")
            raise Refusal(problem, f"use {fix}") from None
    _writable(get_settings().home, "flywheel home", "set FLYWHEEL_HOME to a writable folder")
    try:
        previous = set_aside_previous(get_settings())
    except ValueError as exc:
        problem, _, fix = str(exc).partition("; ")
        raise Refusal(problem, fix) from None
    if previous:
        print(
            f"flywheel demo: the previous demo's home is now {previous}; this one starts afresh", flush=True
        )
    return run_demo(
        hours=args.hours,
        seed=args.seed,
        impressions_per_hour=args.impressions_per_hour,
        drift=args.drift,
        drift_at=args.drift_at,
    )


def _cmd_up(args: argparse.Namespace) -> int:
    from flywheel.local.up import run_foreground, run_up

    if not 0 < args.port < 65536:
        raise Refusal(f"--port {args.port} is not a TCP port", "use one from 1 to 65535, e.g. --port 8080")
    if args.foreground:
        return run_foreground(port=args.port)
    return run_up(port=args.port, story=not args.no_story)


def _cmd_down(args: argparse.Namespace) -> int:
    from flywheel.local.up import run_down

    return run_down()


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


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.evaluation.evaluate import evaluate
    from flywheel.evaluation.scoring import MissingArtifacts
    from flywheel.registry import RegistryError

    _reachable_warehouse(get_settings().warehouse_url)
    try:
        # Feast prints notices to stdout: keep stdout for the decision alone (JSON must parse).
        with contextlib.redirect_stdout(sys.stderr):
            result = evaluate(args.candidate, args.champion, record=not args.no_record)
    except RegistryError as exc:
        raise Refusal(str(exc), "pass one of those to --candidate (or --champion)") from None
    except (MissingArtifacts, ValueError) as exc:  # no model folder; an empty or too-short held-out window
        raise Refusal(str(exc), "nothing was evaluated or recorded") from None
    decision = result.decision
    report = result.report_uri or "not written (--no-record)"
    if args.format == "json":
        # NaN (a bound not computed) is not JSON: null.
        checks = [
            {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in asdict(c).items()}
            for c in decision.checks
        ]
        summary = {
            "evaluation_id": result.evaluation_id,
            "candidate": result.candidate,
            "champion": result.champion,
            "window": [t.isoformat() for t in result.window],
            "rows": result.rows,
            "passed": decision.passed,
            "checks": checks,
            "notes": decision.notes,
            "attribution": result.attribution.as_dict() if result.attribution else None,
            "report": report,
        }
        print(json.dumps(summary, indent=2, default=str))
    else:
        print(decision.table())
        if result.attribution:
            a = result.attribution
            top = ", ".join(f"{f.feature} {100 * f.candidate_share:.0f}%" for f in a.features[:3])
            shift = (
                "no champion" if a.shift is None else f"shift {a.shift:.3f} (reported from {a.threshold:g})"
            )
            print(f"\nattribution on {a.rows:,} rows: {top}; {shift}")
        print(f"\nevaluation {result.evaluation_id} ({result.rows} impressions): report {report}")
    return 0 if decision.passed else 1


def _cmd_triton(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.serving.triton import triton_command

    return triton_command(args.action, get_settings())


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        port = -1
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not a TCP port (1-65535)")
    return port


def _cmd_serve(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.serving.gateway import run_gateway

    return run_gateway(get_settings(), host=args.host, port=args.port)


def _cmd_traffic(args: argparse.Namespace) -> int:
    from flywheel.config import get_settings
    from flywheel.simulate.traffic import traffic_command

    return traffic_command(args, get_settings())


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

    up = sub.add_parser(
        "up",
        help="start Airflow (UI and scheduler) for this home in the background (`flywheel down` stops it)",
    )
    up.add_argument("--port", type=int, default=8080)
    up.add_argument("--no-story", action="store_true", help="skip the short story a home with no model gets")
    up.add_argument("--foreground", action="store_true", help="run in this terminal until Ctrl-C")
    up.set_defaults(func=_cmd_up)
    down = sub.add_parser("down", help="stop what `flywheel up` started for this home")
    down.set_defaults(func=_cmd_down)

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

    evl = sub.add_parser(
        "evaluate",
        help="judge a candidate against the champion on the held-out hours (exit 0 passed, 1 rejected)",
        description="Records the evaluation in registry.evaluations and writes its HTML report; never "
        "changes a version's status. Refusals exit 2.",
    )
    evl.add_argument("--candidate", required=True, metavar="V", help="the version to judge, e.g. v0007")
    evl.add_argument("--champion", default=None, metavar="V", help="default: the registry's champion")
    evl.add_argument("--format", choices=("table", "json"), default="table")
    evl.add_argument("--no-record", action="store_true", help="decide only: write no rows and no report")
    evl.set_defaults(func=_cmd_evaluate)

    tri = sub.add_parser(
        "triton",
        help="start, stop or show the local Triton server (FLYWHEEL_TRITON_URL, FLYWHEEL_MODEL_REPOSITORY)",
    )
    tri.add_argument("action", choices=("start", "stop", "status"))
    tri.set_defaults(func=_cmd_triton)

    srv = sub.add_parser("serve", help="run the inference gateway (POST /v1/rank) until Ctrl-C")
    srv.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    srv.add_argument("--port", type=_port, default=8100, help="port to bind (default 8100)")
    srv.set_defaults(func=_cmd_serve)

    trf = sub.add_parser(
        "traffic",
        help="send simulated users to the gateway; their clicks on what it served land as events",
    )
    from flywheel.simulate.traffic import add_traffic_arguments

    add_traffic_arguments(trf)
    trf.set_defaults(func=_cmd_traffic)
    return parser


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per poll drowns the progress
    args = build_parser().parse_args(argv)
    from flywheel.config import SettingsError, get_settings

    try:
        get_settings()  # every FLYWHEEL_* value is checked before any command starts work
        return args.func(args)
    except (SettingsError, Refusal) as exc:
        print(f"flywheel {args.command}: {exc}", file=sys.stderr)
        return REFUSED


if __name__ == "__main__":
    sys.exit(main())
