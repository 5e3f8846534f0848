"""The alert rules load, pass their promtool unit tests, and only use metrics the drift check exports."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
PROMETHEUS = ROOT / "monitoring" / "prometheus"
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None,
    reason="promtool is not installed: run scripts/system-deps.sh (Debian package prometheus)",
)


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


@needs_promtool
def test_rules_are_valid() -> None:
    done = promtool("check", "rules", str(PROMETHEUS / "rules.yml"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


@needs_promtool
def test_rules_behave_as_their_unit_tests_say() -> None:
    done = promtool("test", "rules", str(PROMETHEUS / "rules_test.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_scrape_config_is_valid() -> None:
    done = promtool("check", "config", str(PROMETHEUS / "prometheus.yml"))
    assert done.returncode == 0, done.stdout + done.stderr


def test_rules_use_only_exported_metrics(exported_metric_names: set[str], metric_names_of) -> None:
    rules = yaml.safe_load((PROMETHEUS / "rules.yml").read_text())
    used = {
        name for group in rules["groups"] for rule in group["rules"] for name in metric_names_of(rule["expr"])
    }
    assert used, "no metric found in the rules"
    assert used <= exported_metric_names, f"rules use metrics nobody exports: {used - exported_metric_names}"
