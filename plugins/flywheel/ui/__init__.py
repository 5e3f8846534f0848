"""The Flywheel page in Airflow's UI: model versions and their gates, PSI per feature over time, the last
drift decision and the canary, read from the warehouse read-only, behind Airflow's login (docs/ui.md)."""
