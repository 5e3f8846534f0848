"""Parse time of each DAG file, measured the way the dag-processor pays it, against a 0.5 s budget.

Each file is parsed in a fresh interpreter (median of several), after ``airflow.sdk`` is imported,
since every DAG shares that cost once per parser process; the import itself is printed beside it.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

BUDGET_S = 0.5
REPEATS = 5
DAGS = Path(__file__).resolve().parents[1] / "dags"

PROBE = r"""
import json, runpy, sys, time
t0 = time.perf_counter()
import airflow.sdk  # noqa: F401
t1 = time.perf_counter()
runpy.run_path(sys.argv[1], run_name="dag_parse_probe")
t2 = time.perf_counter()
print(json.dumps({"sdk_import_s": t1 - t0, "parse_s": t2 - t1}))
"""


def measure(path: Path) -> dict[str, float]:
    samples = []
    for _ in range(REPEATS):
        out = subprocess.run(
            [sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True
        ).stdout
        samples.append(json.loads(out.strip().splitlines()[-1]))
    return {key: statistics.median(s[key] for s in samples) for key in samples[0]}


def main() -> int:
    from flywheel.features.dbt import DBT_PROJECT_DIR, run_dbt

    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():  # build_features reads it at parse
        run_dbt(["parse"])
    files = sorted(p for p in DAGS.glob("*.py") if not p.name.startswith("_"))
    print(f"{'dag file':<28} {'parse s':>8} {'/budget':>8} {'sdk import s':>13}")
    worst = 0.0
    for path in files:
        m = measure(path)
        worst = max(worst, m["parse_s"] / BUDGET_S)
        print(
            f"{path.name:<28} {m['parse_s']:>8.3f} {m['parse_s'] / BUDGET_S:>8.2f} {m['sdk_import_s']:>13.3f}"
        )
    print(
        f"worst parse time / {BUDGET_S} s budget = {worst:.2f} ({'within' if worst <= 1 else 'OVER'} budget)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
