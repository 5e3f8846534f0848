"""Twenty rollbacks under load: how fast a canary that breaks a guard is taken out, and whether any user
request fails meanwhile.

One run in a temporary home (a small simulated world, a champion and a slow canary), the gateway under a
steady 50 requests/s from simulated users. Each round, as ``deploy_model``'s canary task does it:
a new version of the slow model (exported for a drill: it sleeps ``--delay-ms`` per batch) is loaded beside
the champion, the first step routes ``--weight`` of users to it (``start_step``), the canary's trigger
(``CanaryStepTrigger``, the code the triggerer runs) polls the gateway's ``/v1/stats`` every 2 s until the
p99 guard fires, then ``judge_step`` records the rollback and ``rollback`` takes it out (weight 0, unload,
registry ``rolled_back``, metric). Printed per round and in total: seconds from the step's start to the
breach seen, from the breach seen to the rollback done (target: each under 60 s), and failed requests over
the whole run (target 0). Airflow itself is not started: its share (the task resumed after the trigger
fires) is measured by tests/integration/test_deploy_scheduler.py.

Run: ``.venv/bin/python benchmarks/rollback_drill.py`` (about 6 minutes).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

TARGET_S = 60.0


async def _first_event(trigger) -> dict:
    async for event in trigger.run():
        return event.payload
    raise RuntimeError("the trigger ended without an event")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rps", type=float, default=50.0)
    parser.add_argument("--weight", type=int, default=10, help="the canary's share of users in percent (10)")
    parser.add_argument("--delay-ms", type=float, default=300.0, help="the slow canary's sleep per batch")
    parser.add_argument("--keep-home", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from flywheel.local.processes import free_port

    home = Path(tempfile.mkdtemp(prefix="flywheel-bench-rollback-"))
    os.environ.update(
        {
            "FLYWHEEL_HOME": str(home),
            "FLYWHEEL_TRITON_URL": f"127.0.0.1:{free_port()}",
            "FLYWHEEL_GATEWAY_URL": f"http://127.0.0.1:{free_port()}",
            "FLYWHEEL_CANARY_STEPS": f"{args.weight},100",
            "FLYWHEEL_CANARY_P99_MS": "100",
            # Only a breach (or the deadline) ends a drill's step: it is not judged on clicks.
            "FLYWHEEL_CANARY_MIN_REQUESTS": "1000000",
            "FLYWHEEL_CANARY_MAX_SECONDS": "120",
        }
    )
    from dataclasses import replace

    from flywheel.config import get_settings
    from flywheel.local.serving import ServingStack, serving_world
    from flywheel.registry import get_version, register_candidate, set_status
    from flywheel.serving.repository import export_version
    from flywheel.serving.state import open_state
    from flywheel.serving.tasks import judge_step, rollback, start_step, trigger_arguments
    from flywheel.serving.triggers import CanaryStepTrigger
    from flywheel.serving.triton import Triton
    from flywheel.simulate.traffic import run_traffic
    from flywheel.warehouse import open_warehouse

    settings = get_settings()
    rounds: list[dict] = []
    try:
        versions = serving_world(settings, {"champion": {}}, export=True)
        champion = versions["champion"]
        warehouse = open_warehouse(settings.warehouse_url)
        folder = Path(get_version(champion, warehouse).artifact_uri)
        with ServingStack(settings) as stack:
            triton = Triton(settings.serving.triton_url)
            triton.load(champion)
            store = open_state(settings)
            store.write(replace(store.read(), champion=champion, canary=None, weight=0.0))
            stop, reports = threading.Event(), []
            load = threading.Thread(
                target=lambda: reports.append(
                    run_traffic(
                        url=stack.gateway_url, rps=args.rps, seconds=24 * 3600, settings=settings, stop=stop
                    )
                )
            )
            load.start()
            time.sleep(30)  # the gateway's feature cache warms up: the champion's p99 is then its steady one
            for i in range(args.rounds):
                version = register_candidate(
                    data_version=f"drill-{i}",
                    artifact_uri=str(folder),
                    params={"drill": i},
                    metrics={},
                    window=None,
                    warehouse=warehouse,
                )
                set_status(version, "blessed", warehouse, reason="rollback drill")
                export_version(
                    version, folder, settings.serving.model_repository, drill_delay_ms=args.delay_ms
                )
                triton.load(version)
                plan = {
                    "version": version,
                    "champion": champion,
                    "deployment_id": f"drill-{i}",
                    "artifact_uri": str(folder),
                }
                info = start_step(plan, 0, settings)
                event = asyncio.run(
                    _first_event(CanaryStepTrigger(**trigger_arguments(info, plan, settings)))
                )
                if event["status"] != "breach":
                    raise RuntimeError(f"round {i}: the guard did not fire: {event}")
                judge_step(plan, info, event, f"drill-{i}", settings)
                rollback(plan, event["reason"], f"drill-{i}", settings)
                done = time.time()
                state = store.read()
                assert state.canary is None and state.weight == 0.0, state
                assert get_version(version, warehouse).status == "rolled_back"
                rounds.append(
                    {
                        "to_breach": event["at"] - info["step_started"],
                        "breach_to_rollback": done - event["at"],
                        "reason": event["reason"],
                    }
                )
                print(
                    f"round {i + 1:2d}: breach seen {rounds[-1]['to_breach']:.1f} s after the step began, "
                    f"rolled back {rounds[-1]['breach_to_rollback']:.2f} s later ({event['reason']})",
                    flush=True,
                )
                time.sleep(2)
            stop.set()
            load.join(timeout=120)
        traffic = reports[0]
    finally:
        if args.keep_home:
            print(f"home kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)
    print()
    print(traffic.summary())
    worst = max(r["to_breach"] + r["breach_to_rollback"] for r in rounds)
    after = [r["breach_to_rollback"] for r in rounds]
    print()
    print(
        f"rollbacks: {len(rounds)}; breach seen -> rolled back: median {statistics.median(after):.2f} s, "
        f"max {max(after):.2f} s; step start -> rolled back: max {worst:.1f} s (each < {TARGET_S:g} s: "
        f"{'met' if worst < TARGET_S else 'MISSED'})"
    )
    print(
        f"failed requests over {traffic.requests}: {traffic.failures} (target 0: "
        f"{'met' if traffic.failures == 0 else 'MISSED'})"
    )
    return 0 if worst < TARGET_S and traffic.failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
