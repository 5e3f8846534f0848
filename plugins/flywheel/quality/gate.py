"""``run_gate``: validate one table's data interval in the warehouse; quarantine it and raise if it fails."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.config import Settings, get_settings
from flywheel.events import naive_utc
from flywheel.quality.errors import DataQualityError, GateFailed
from flywheel.quality.messages import EXAMPLES, Failure, describe_failures
from flywheel.quality.quarantine import VALIDATIONS_TABLE, record_validation
from flywheel.quality.row_count import RowCountBounds, row_count_bounds
from flywheel.quality.suites import GatedTable, load_gated_table
from flywheel.quality.validate import validate_partition
from flywheel.warehouse.base import Warehouse
from flywheel.warehouse.connect import open_warehouse
from flywheel.warehouse.tables import FILE_QUARANTINE_TABLE as INGEST_QUARANTINE_TABLE
from flywheel.warehouse.tables import LOADS_TABLE
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"


@dataclass(frozen=True)
class GateResult:
    """The outcome of one gate: what was checked, what was seen, what was set aside, where the report is."""

    suite: str
    table: str
    start: datetime
    end: datetime
    run_id: str
    success: bool
    row_count: int | None
    bounds: RowCountBounds
    statistics: dict[str, Any]  # GX's: evaluated / successful / unsuccessful expectations, success_percent
    failures: tuple[Failure, ...] = ()
    rows_quarantined: int = 0
    quarantine_table: str | None = None
    data_docs_page: Path | None = None
    files_quarantined_by_ingest: int = 0
    parameters: dict[str, Any] = field(default_factory=dict)

    @property
    def interval(self) -> str:
        """``[2026-01-01 05:00, 06:00)``, with the end's date only when it differs."""
        end = self.end.strftime("%H:%M" if self.end.date() == self.start.date() else "%Y-%m-%d %H:%M")
        return f"[{self.start:%Y-%m-%d %H:%M}, {end})"

    def summary(self) -> str:
        """One line naming each failed expectation with its column and observed value."""
        head = f"{self.suite} {self.interval}"
        if self.success:
            checked = self.statistics.get("evaluated_expectations")
            return f"{head}: passed {checked} expectations on {self.row_count} rows"
        lines = "; ".join(str(f) for f in self.failures)
        raw = self.table.startswith("raw.")
        tail = []
        if self.rows_quarantined:
            tail.append(
                f"{self.rows_quarantined} row(s) {'moved' if raw else 'copied'} to {self.quarantine_table}"
            )
        if self.files_quarantined_by_ingest:
            tail.append(f"ingest refused {self.files_quarantined_by_ingest} file(s) of it (quarantine.files)")
        if self.data_docs_page:
            tail.append(f"report: {self.data_docs_page}")
        fix = (
            "re-land corrected files for the interval, re-run ingest_events, then this gate"
            if raw
            else "fix the inputs or the dbt model, rebuild the partition, then re-run this gate"
        )
        return f"{head}: {lines}" + (f" [{'; '.join(tail)}]" if tail else "") + f". To recover: {fix}"

    def as_extra(self) -> dict[str, Any]:
        """A small JSON-able pointer for an asset event or XCom."""
        return {
            "suite": self.suite,
            "interval_start": self.start.isoformat(),
            "interval_end": self.end.isoformat(),
            "success": self.success,
            "row_count": self.row_count,
            "rows_quarantined": self.rows_quarantined,
        }


def run_gate(
    suite_name: str,
    *,
    start: datetime,
    end: datetime,
    settings: Settings | None = None,
    run_id: str,
) -> GateResult:
    """Validate ``[start, end)`` of the table ``expectations/<suite_name>.json`` guards.

    Passing returns a ``GateResult``. Failing sets the partition aside (moved out of ``raw.*``, copied out
    of ``marts.*``) and records the validation in one transaction, writes Data Docs, and raises
    ``GateFailed`` naming each failed expectation. Running it again on the same interval is safe.
    """
    settings = settings or get_settings()
    start, end = naive_utc(start), naive_utc(end)
    if end <= start:
        raise DataQualityError(
            f"empty interval [{start}, {end}) for suite {suite_name}: end must be after start"
        )
    gated = load_gated_table(suite_name, settings.project_root / "expectations")
    warehouse = open_warehouse(settings.warehouse_url)
    if not warehouse.table_exists(gated.table):
        raise DataQualityError(
            f"{gated.table} does not exist in {warehouse.url}: build it first "
            "(ingest_events for raw.*, dbt for marts.*) before gating it"
        )
    bounds = row_count_bounds(warehouse, gated.table, gated.partition_column, start, end)
    parameters = {
        **bounds.as_parameters(),
        "interval_start": start,
        "interval_end": end,
        "interval_start_hour": start.replace(minute=0, second=0, microsecond=0),
    }
    missing = gated.parameters - set(parameters)
    if missing:
        raise DataQualityError(
            f"{gated.path} uses suite parameter(s) {', '.join(sorted(missing))}; "
            f"the gate provides {', '.join(sorted(parameters))}"
        )
    # Verdicts GX cannot see in the partition: read before this run records its own validation.
    refused = _open_refusals(warehouse, gated.table, start, end)
    held = _failures_outside_the_partition(warehouse, gated, start, end, refused)
    validation = validate_partition(gated, start, end, parameters, settings=settings, run_id=run_id)
    failures = describe_failures(validation.results, bounds)
    row_count = _row_count(validation.results)
    # Only a verdict on the data moves data: when every failure is GX unable to evaluate (a query error),
    # the partition stays where it is and the gate errors instead.
    unevaluated = bool(failures) and all(f.error for f in failures) and not held
    failures = held + failures
    success = validation.success and not held
    moved = record_validation(
        warehouse,
        gated,
        start,
        end,
        run_id=run_id,
        success=success,
        row_count=row_count,
        failures=failures,
        set_aside=not success and not unevaluated,
    )
    result = GateResult(
        suite=gated.suite,
        table=gated.table,
        start=start,
        end=end,
        run_id=run_id,
        success=success,
        row_count=row_count,
        bounds=bounds,
        statistics=validation.statistics,
        failures=tuple(failures),
        rows_quarantined=moved,
        quarantine_table=None if success else gated.quarantine_table,
        data_docs_page=validation.data_docs_page,
        files_quarantined_by_ingest=len(refused),
        parameters=parameters,
    )
    if unevaluated:
        raise DataQualityError(
            f"{result.suite} {result.interval}: Great Expectations could not evaluate the suite, so nothing "
            f"was quarantined: {'; '.join(str(f) for f in failures)}. "
            "Check the warehouse and the columns the suite names"
        )
    if not result.success:
        log.error("quality gate failed: %s", result.summary())
        raise GateFailed(result)
    log.info("quality gate passed: %s", result.summary())
    return result


def _row_count(results: list[Any]) -> int | None:
    for result in results:
        if result.expectation_config.type == "expect_table_row_count_to_be_between":
            observed = (result.result or {}).get("observed_value")
            return int(observed) if observed is not None else None
    return None


def _failures_outside_the_partition(
    warehouse: Warehouse, gated: GatedTable, start: datetime, end: datetime, refused: list[dict[str, Any]]
) -> list[Failure]:
    """What fails a raw hour whatever its rows say: files ingest refused, or rows a gate set aside.

    Without these a partition could pass by being empty: a low-volume table accepts 0 rows (its bounds
    start at 0), so a refused file, or a retry after the partition was moved out, would pass the hour.
    """
    failures = []
    if refused:
        files = "; ".join(f"{r['file_path']} ({r['reason']})" for r in refused[:EXAMPLES])
        more = f"; and {len(refused) - EXAMPLES} more" if len(refused) > EXAMPLES else ""
        failures.append(
            Failure(
                "refused_by_ingest",
                None,
                len(refused),
                f"{len(refused)} file(s) of this hour refused by ingest: {files}{more}; re-land each "
                "repaired under the same name (or, to accept the loss, set its resolved_at in "
                "quarantine.files)",
            )
        )
    set_aside = _set_aside_since_last_load(warehouse, gated, start, end)
    if set_aside:
        failures.append(
            Failure(
                "set_aside_since_last_load",
                None,
                set_aside["rows_quarantined"],
                f"run {set_aside['run_id']} moved {set_aside['rows_quarantined']} row(s) of this interval to "
                f"{gated.quarantine_table} at {set_aside['validated_at']:%Y-%m-%d %H:%M:%S} and "
                "ingest_events has not loaded it since",
            )
        )
    return failures


def _open_refusals(warehouse: Warehouse, table: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    schema, _, name = table.partition(".")
    if schema != "raw" or not warehouse.table_exists(INGEST_QUARANTINE_TABLE):
        return []
    return warehouse.read_arrow(
        render_sql(SQL_DIR / "ingest_quarantined_files.sql"), {"table_name": name, "start": start, "end": end}
    ).to_pylist()


def _set_aside_since_last_load(
    warehouse: Warehouse, gated: GatedTable, start: datetime, end: datetime
) -> dict[str, Any] | None:
    if gated.on_failure != "move" or not warehouse.table_exists(VALIDATIONS_TABLE):
        return None
    # Without raw.loads (a warehouse ingested before it existed) a set-aside counts until ingest reloads.
    rows = warehouse.read_arrow(
        render_sql(SQL_DIR / "set_aside_since_last_load.sql", with_loads=warehouse.table_exists(LOADS_TABLE)),
        {
            "suite": gated.suite,
            "table_name": gated.table.partition(".")[2],
            "start": start,
            "end": end,
        },
    ).to_pylist()
    return rows[0] if rows else None
