"""The tables stages share: one stage writes each, others read it. Named once here, so a reader needs no
import of the stage that writes it (stages meet in the warehouse, never in each other's code)."""

from __future__ import annotations

#: Written by ingest: one row per table and hour, what the latest load of that partition did.
LOADS_TABLE = "raw.loads"
#: Written by ingest: the files it refused, against the hour they were filed under.
FILE_QUARANTINE_TABLE = "quarantine.files"
#: Written by features: the hours whose features passed every gate (training and drift read only these).
PUBLISHED_HOURS_TABLE = "features.published_hours"
#: Written by monitoring: the retraining requests it made (for its cooldown).
RETRAIN_REQUESTS_TABLE = "monitoring.retrain_requests"
