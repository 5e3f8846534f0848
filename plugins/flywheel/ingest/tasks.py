"""What the ``ingest_events`` DAG calls: load one data interval of landed files into ``raw.*``."""

from __future__ import annotations

from datetime import datetime
from typing import Any


def load_events(interval_start: datetime, interval_end: datetime, run_id: str) -> dict[str, Any]:
    """Load ``[interval_start, interval_end)`` and describe it for the ``raw_events`` asset event."""
    from flywheel.ingest.load import load_events

    return load_events(interval_start, interval_end, run_id=run_id).as_extra()
