"""The drift rule's numbers are written once, in flywheel.config.DriftRule: the decision, ``flywheel psi`` and
the detect_drift DAG's doc take them from there, and the Prometheus alerts, which cannot, are held to them."""

from __future__ import annotations

import importlib.util
import inspect
import math
import re
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from flywheel.config import DriftRule
from flywheel.monitoring.decision import drift_decision
from flywheel.monitoring.psi_cli import level

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
WHERE = RULES.relative_to(ROOT)
DEFAULT = DriftRule()
PSI_METRIC = "flywheel_feature_psi"
COMPARISON = re.compile(r"(>=|<=|==|!=|>|<)\s*(\d+(?:\.\d+)?)")
RANGE_HOURS = re.compile(r"\[(\d+)h\]")  # e.g. min_over_time(flywheel_feature_psi[2h]) >= 0.1
FOR_HOURS = re.compile(r"^(\d+)h$")
DECIMAL = re.compile(r"(?<![\w.%])\d+\.\d+")  # 0.2 in prose; not printf's %.3f


def _psi_alerts() -> list[dict[str, Any]]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"] if PSI_METRIC in rule.get("expr", "")]


def _threshold(alert: dict[str, Any]) -> tuple[str, float]:
    comparisons = COMPARISON.findall(alert["expr"])
    assert len(comparisons) == 1, (
        f"{WHERE}: alert {alert['alert']} should compare {PSI_METRIC} with one threshold, "
        f"found {comparisons} in {alert['expr']!r}"
    )
    op, number = comparisons[0]
    return op, float(number)


def _hours(alert: dict[str, Any]) -> int:
    """The hourly windows an alert needs: its range vector's hours, else its ``for:``, else 1 (the latest)."""
    ranged = RANGE_HOURS.findall(alert["expr"])
    held = FOR_HOURS.match(str(alert.get("for", "")))
    return int(ranged[0]) if ranged else int(held.group(1)) if held else 1


def test_rules_alert_when_the_latest_window_crosses_the_psi_threshold() -> None:
    latest = [
        a["alert"] for a in _psi_alerts() if _threshold(a)[1] == DEFAULT.psi_threshold and _hours(a) == 1
    ]
    assert latest, (
        f"{WHERE}: no alert fires on {PSI_METRIC} >= {DEFAULT.psi_threshold:g} in the latest window, the "
        f"threshold of flywheel.config.DriftRule.psi_threshold: change the two together"
    )


@pytest.mark.parametrize("alert", _psi_alerts(), ids=lambda a: a["alert"])
def test_each_psi_alert_uses_a_threshold_of_the_drift_rule(alert: dict[str, Any]) -> None:
    name = alert["alert"]
    op, value = _threshold(alert)
    hours = _hours(alert)
    rule = (
        f"flywheel.config.DriftRule has psi_threshold={DEFAULT.psi_threshold:g} (latest window) and "
        f"sustained_threshold={DEFAULT.sustained_threshold:g} for "
        f"sustained_windows={DEFAULT.sustained_windows} hours: change the file and the config together"
    )
    assert op == ">=", f"{WHERE}: alert {name} compares PSI with {op!r}; the drift rule fires at >="
    expected = {1: DEFAULT.psi_threshold, DEFAULT.sustained_windows: DEFAULT.sustained_threshold}
    assert expected.get(hours) == value, (
        f"{WHERE}: alert {name} fires at PSI >= {value:g} held for {hours} hour(s), but {rule}"
    )
    for key, text in alert.get("annotations", {}).items():
        said = {float(number) for number in DECIMAL.findall(text)}
        assert said <= {value}, (
            f"{WHERE}: alert {name}'s {key} speaks of PSI {sorted(said)}; its expression fires at {value:g}"
        )


def test_the_decision_defaults_to_the_configured_rule() -> None:
    params = inspect.signature(drift_decision).parameters
    defaults = {
        name: params[name].default for name in ("psi_threshold", "sustained_threshold", "sustained_windows")
    }
    assert defaults == {
        "psi_threshold": DEFAULT.psi_threshold,
        "sustained_threshold": DEFAULT.sustained_threshold,
        "sustained_windows": DEFAULT.sustained_windows,
    }, "flywheel.monitoring.decision.drift_decision must take its defaults from flywheel.config.DriftRule"


@pytest.mark.parametrize(
    ("psi", "reading"),
    [
        (DEFAULT.psi_threshold, "major shift"),  # what requests retraining on its own
        (math.nextafter(DEFAULT.psi_threshold, 0.0), "moderate shift"),
        (DEFAULT.sustained_threshold, "moderate shift"),  # what requests it when held
        (math.nextafter(DEFAULT.sustained_threshold, 0.0), "stable"),
        (0.0, "stable"),
        (None, "no data"),
    ],
)
def test_flywheel_psi_reads_a_shift_where_the_drift_rule_draws_it(psi: float | None, reading: str) -> None:
    assert level(psi) == reading


def _detect_drift_doc() -> str:
    """The doc of dags/detect_drift.py, imported afresh as the dag-processor does on each parse."""
    name = f"detect_drift_{uuid.uuid4().hex}"
    spec = importlib.util.spec_from_file_location(name, ROOT / "dags" / "detect_drift.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
        return " ".join(module.detect_drift().doc_md.split())
    finally:
        sys.modules.pop(name, None)


@pytest.mark.parametrize(
    ("environment", "rule", "cooldown"),
    [
        ({}, "PSI >= 0.2 in the latest window, or >= 0.1 in each of the last 2 hours", "within 6 hours"),
        (
            {
                "FLYWHEEL_DRIFT_PSI": "0.3",
                "FLYWHEEL_DRIFT_SUSTAINED_PSI": "0.15",
                "FLYWHEEL_DRIFT_SUSTAINED_WINDOWS": "3",
                "FLYWHEEL_DRIFT_COOLDOWN_HOURS": "12",
            },
            "PSI >= 0.3 in the latest window, or >= 0.15 in each of the last 3 hours",
            "within 12 hours",
        ),
    ],
    ids=["defaults", "overridden"],
)
def test_the_detect_drift_doc_states_the_rule_in_force(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], rule: str, cooldown: str
) -> None:
    for name in ("PSI", "SUSTAINED_PSI", "SUSTAINED_WINDOWS", "COOLDOWN_HOURS"):
        monkeypatch.delenv(f"FLYWHEEL_DRIFT_{name}", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    doc = _detect_drift_doc()
    assert rule in doc and cooldown in doc, f"dags/detect_drift.py's doc does not say {rule!r}: {doc}"
    assert "{" not in doc, f"dags/detect_drift.py's doc has a placeholder left: {doc}"
