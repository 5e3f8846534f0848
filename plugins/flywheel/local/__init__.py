"""Running the loop on one machine: Airflow's components as a process group, driven over its REST API."""

from __future__ import annotations
