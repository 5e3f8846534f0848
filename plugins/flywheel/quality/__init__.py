"""Great Expectations quality gates: validate a table's data interval in the warehouse before use.

A failing raw partition is moved to ``quarantine.<suite>`` so it never reaches training; see docs/quality.md.
"""

from __future__ import annotations

from flywheel.quality.errors import DataQualityError, GateFailed, GatesFailed
from flywheel.quality.gate import GateResult, run_gate
from flywheel.quality.suites import EXPECTATIONS_DIR, suite_names

__all__ = [
    "EXPECTATIONS_DIR",
    "DataQualityError",
    "GateFailed",
    "GateResult",
    "GatesFailed",
    "run_gate",
    "suite_names",
]
