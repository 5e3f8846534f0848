"""The gate suites: ``expectations/<suite>.json`` as GX serialises them, plus the table each one guards.

Each file's ``meta.flywheel`` names the gated table, its partition column and what a failure does
(``move`` the partition out of a raw table, or ``copy`` it out of a mart), so one file says it all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flywheel.config import PROJECT_ROOT
from flywheel.quality.errors import DataQualityError
from flywheel.warehouse.base import WarehouseError, validate_identifier

#: Where analysts edit the suites; one file per gated table.
EXPECTATIONS_DIR = PROJECT_ROOT / "expectations"

#: What a failure does to the partition: raw rows leave the table, mart rows are only copied aside.
ON_FAILURE = ("move", "copy")


@dataclass(frozen=True)
class GatedTable:
    """One suite and the table partition it validates."""

    suite: str
    table: str  # schema.table in the warehouse
    partition_column: str
    on_failure: str  # "move" or "copy"
    path: Path
    definition: dict[str, Any]  # the suite as GX serialises it

    @property
    def quarantine_table(self) -> str:
        """``quarantine.<suite>``, e.g. ``quarantine.raw_impressions`` for ``raw.impressions``."""
        return f"quarantine.{self.suite}"

    @property
    def parameters(self) -> set[str]:
        """The ``$PARAMETER`` names the suite's expectations use."""
        return set(_parameter_names(self.definition["expectations"]))


def suite_names(directory: Path = EXPECTATIONS_DIR) -> list[str]:
    """Every suite in ``directory``, by file stem."""
    return sorted(p.stem for p in directory.glob("*.json"))


def load_gated_table(suite: str, directory: Path = EXPECTATIONS_DIR) -> GatedTable:
    """Read and check ``<directory>/<suite>.json``; raise ``DataQualityError`` saying what to fix."""
    path = directory / f"{suite}.json"
    if not path.is_file():
        raise DataQualityError(
            f"no expectation suite {suite!r}: expected {path} (known: {', '.join(suite_names(directory))})"
        )
    try:
        definition = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise DataQualityError(f"{path} is not valid JSON: {exc}") from exc
    if definition.get("name") != suite:
        raise DataQualityError(f"{path} names suite {definition.get('name')!r}; rename it to {suite!r}")
    spec = definition.get("meta", {}).get("flywheel", {})
    try:
        table = validate_identifier(spec["table"])
        column = validate_identifier(spec["partition_column"])
        validate_identifier(suite)
    except (KeyError, WarehouseError) as exc:
        raise DataQualityError(
            f"{path}: meta.flywheel needs a valid 'table' (schema.table) and 'partition_column': {exc}"
        ) from exc
    on_failure = spec.get("on_failure")
    if on_failure not in ON_FAILURE or (on_failure == "move" and not table.startswith("raw.")):
        raise DataQualityError(
            f"{path}: meta.flywheel.on_failure is {on_failure!r}; use 'move' for raw.* tables "
            "(the rows are re-landed and re-ingested) or 'copy' for dbt-built tables"
        )
    if not definition.get("expectations"):
        raise DataQualityError(f"{path} has no expectations")
    return GatedTable(suite, table, column, on_failure, path, definition)


def build_suite(gated: GatedTable) -> Any:
    """The ``great_expectations.ExpectationSuite`` of a gated table, refusing expectations GX would drop."""
    import great_expectations as gx

    definition = {k: v for k, v in gated.definition.items() if k != "id"}
    try:
        suite = gx.ExpectationSuite(**definition)
    except Exception as exc:  # pydantic and GX raise several types for a malformed expectation
        raise DataQualityError(f"{gated.path}: Great Expectations rejected the suite: {exc}") from exc
    # GX logs and skips an invalid expectation; a gate that silently checks less is worse than none.
    if len(suite.expectations) != len(definition["expectations"]):
        loaded = {e.expectation_type for e in suite.expectations}
        rejected = [e["type"] for e in definition["expectations"] if e["type"] not in loaded]
        raise DataQualityError(
            f"{gated.path}: Great Expectations rejected expectation(s) "
            f"{', '.join(rejected) or '(see the log)'}; fix their kwargs"
        )
    return suite


def _parameter_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        if set(value) == {"$PARAMETER"}:
            return [value["$PARAMETER"]]
        return [name for item in value.values() for name in _parameter_names(item)]
    if isinstance(value, list):
        return [name for item in value for name in _parameter_names(item)]
    return []
