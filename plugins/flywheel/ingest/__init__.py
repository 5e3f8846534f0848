"""Ingest, the loop's first stage: landed event files into ``raw.*``, a refused file into quarantine."""
