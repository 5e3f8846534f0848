"""Registers the Flywheel page with Airflow: its plugin loader imports each .py file of plugins/ by name
(plugins/.airflowignore keeps it out of the flywheel package), and finds the plugin class here."""

from __future__ import annotations

from flywheel.ui.plugin import FlywheelPlugin

__all__ = ["FlywheelPlugin"]
