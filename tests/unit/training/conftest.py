"""Training sets for the training tests, simulated once per session (the label depends on the features)."""

from __future__ import annotations

import pandas as pd
import pytest

from flywheel.training.sample import simulated_training_set


@pytest.fixture(scope="session")
def training_frame() -> pd.DataFrame:
    """24 simulated hours, 48,000 impressions with their clicks: enough to learn position and affinity."""
    return simulated_training_set(hours=24, impressions_per_hour=2000, seed=7)


@pytest.fixture(scope="session")
def small_frame() -> pd.DataFrame:
    """12 simulated hours, about 10,000 impressions: a Ray search over it takes seconds per trial."""
    return simulated_training_set(hours=12, impressions_per_hour=1000, seed=11)
