"""A simulated recommender marketplace that writes impression, click and order events as hourly Parquet.

It stands in for a real-time event stream; see docs/simulator.md for the model and its drift scenarios.
"""

from __future__ import annotations

from flywheel.simulate.config import SimulationConfig
from flywheel.simulate.writer import simulate

__all__ = ["SimulationConfig", "simulate"]
