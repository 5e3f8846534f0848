"""DAG files import the training API at parse time: that must not pull in torch or Ray."""

from __future__ import annotations

import subprocess
import sys

CHECK = """
import sys
import flywheel.training
from flywheel.training import build_training_pod_operator, train_and_register, prepare_training_set
from flywheel.training.runs import register_candidate
heavy = sorted(m for m in ("torch", "ray", "optuna") if m in sys.modules)
print(",".join(heavy))
"""


def test_training_api_imports_without_torch_or_ray() -> None:
    result = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
