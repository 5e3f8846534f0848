"""Run one suite against one warehouse partition with Great Expectations, in the warehouse, offline.

The GX context is ephemeral (datasources and credentials are never written to disk); only validation
results (``<FLYWHEEL_HOME>/gx/validations``) and Data Docs (``<FLYWHEEL_HOME>/data_docs``) persist.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.config import Settings
from flywheel.quality.errors import DataQualityError
from flywheel.quality.suites import GatedTable, build_suite
from flywheel.warehouse.templates import render_sql

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).parent / "sql"
#: The Data Docs site's name in the GX context.
DATA_DOCS_SITE = "flywheel"
#: The Data Docs index lists this many of the latest validation results (older pages stay on disk).
DATA_DOCS_INDEX_LIMIT = 500


@dataclass(frozen=True)
class Validation:
    """What GX found: overall success, per-expectation results, its statistics, the Data Docs page."""

    success: bool
    results: list[Any]  # ExpectationValidationResult, in suite order
    statistics: dict[str, Any]
    data_docs_page: Path | None


def data_docs_dir(settings: Settings) -> Path:
    return settings.home / "data_docs"


def gx_dir(settings: Settings) -> Path:
    return settings.home / "gx"


def validate_partition(
    gated: GatedTable,
    start: datetime,
    end: datetime,
    parameters: dict[str, Any],
    *,
    settings: Settings,
    run_id: str,
) -> Validation:
    """Validate ``gated.table`` rows with ``start <= partition_column < end``; GX's engine is disposed after.

    Everything GX computes runs as SQL in the warehouse (aggregates, and samples of unexpected values
    capped by the ``SUMMARY`` result format); no table is loaded into memory.
    """
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        raise TypeError("start and end must be datetime objects")  # they are rendered into the batch SQL
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    # GX logs one INFO line per registered factory method: thousands of lines drowning the task log.
    logging.getLogger("great_expectations").setLevel(logging.WARNING)
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = gx.get_context(mode="ephemeral", project_config=_project_config(settings))
    datasource = _add_datasource(context, settings.warehouse_url)
    try:
        query = render_sql(
            SQL_DIR / "partition.sql", table=gated.table, column=gated.partition_column, start=start, end=end
        )
        batch = datasource.add_query_asset(gated.suite, query=query).add_batch_definition_whole_table(
            "partition"
        )
        suite = context.suites.add(build_suite(gated))
        definition = context.validation_definitions.add(
            gx.ValidationDefinition(name=gated.suite, data=batch, suite=suite)
        )
        checkpoint = context.checkpoints.add(
            gx.Checkpoint(
                name=gated.suite,
                validation_definitions=[definition],
                # Data Docs are rebuilt for failures only: rendering the site took ~0.85 s of a 1.5 s
                # gate, which a 72-hour backfill pays hundreds of times. Passing results are still
                # stored, so the next failure's index lists them.
                actions=[],
                result_format="SUMMARY",
            )
        )
        outcome = checkpoint.run(expectation_parameters=parameters, run_id=RunIdentifier(run_name=run_id))
    finally:
        _dispose(datasource)
    (key, result), *_ = outcome.run_results.items()
    page = None
    if not result.success:
        context.build_data_docs(site_names=[DATA_DOCS_SITE], resource_identifiers=[key])
        page = _page(context, key)
    return Validation(
        success=bool(result.success),
        results=list(result.results),
        statistics=dict(result.statistics),
        data_docs_page=page,
    )


def _add_datasource(context: Any, warehouse_url: str) -> Any:
    scheme = warehouse_url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme == "duckdb":
        from flywheel.quality.duckdb_adapter import gx_connection_string

        return context.data_sources.add_sql(
            name="warehouse", connection_string=gx_connection_string(warehouse_url)
        )
    if scheme in ("postgresql", "postgres"):
        return context.data_sources.add_postgres(name="warehouse", connection_string=warehouse_url)
    raise DataQualityError(f"no Great Expectations datasource for warehouse URL {warehouse_url!r}")


def _dispose(datasource: Any) -> None:
    # DuckDB lets one process hold the file: close every pooled connection before the gate returns.
    datasource.get_execution_engine().close()
    datasource.get_engine().dispose()


def _page(context: Any, key: Any) -> Path | None:
    for site in context.get_docs_sites_urls(resource_identifier=key, site_name=DATA_DOCS_SITE):
        url = site.get("site_url") or ""
        if url.startswith("file://"):
            return Path(url.removeprefix("file://"))
    return None


def _project_config(settings: Settings) -> Any:
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    config = DataContextConfig(
        store_backend_defaults=InMemoryStoreBackendDefaults(init_temp_docs_sites=False),
        analytics_enabled=False,
        progress_bars=ProgressBarsConfig(globally=False),
        data_docs_sites={
            DATA_DOCS_SITE: {
                "class_name": "SiteBuilder",
                "show_how_to_buttons": False,
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(data_docs_dir(settings)),
                },
                "site_index_builder": {
                    "class_name": "DefaultSiteIndexBuilder",
                    "validation_results_limit": DATA_DOCS_INDEX_LIMIT,
                },
            }
        },
    )
    # Validation results outlive the process so the Data Docs index lists past runs, not only this one.
    config.stores[config.validation_results_store_name] = {
        "class_name": "ValidationResultsStore",
        "store_backend": {
            "class_name": "TupleFilesystemStoreBackend",
            "base_directory": str(gx_dir(settings) / "validations"),
        },
    }
    return config
