"""Why the DuckDB adapter exists: GX reads rows after closing the connection; duckdb_engine empties them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from flywheel.quality.duckdb_adapter import gx_connection_string

# 400 rows: every 40th user_id is null (10 rows) and two ids appear twice (4 rows): a gate must see both.
BAD_ROWS = """
create schema raw;
create table raw.events as
select
    case when i = 7 then 'id-1' when i = 9 then 'id-3' else 'id-' || i end as event_id,
    case when i % 40 = 0 then null else i % 17 end as user_id
from range(400) as t(i)
"""


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    con = duckdb.connect(str(path))
    con.execute(BAD_ROWS)
    con.close()
    return path


def _validate_with_gx(connection_string: str) -> dict[str, int | None]:
    """Unexpected counts GX reports for not-null(user_id) and unique(event_id) over this URL."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    import great_expectations as gx
    import great_expectations.expectations as gxe

    context = gx.get_context(mode="ephemeral")
    datasource = context.data_sources.add_sql("warehouse", connection_string=connection_string)
    try:
        batch = datasource.add_query_asset("events", query="select * from raw.events")
        suite = gx.ExpectationSuite(
            "events",
            expectations=[
                gxe.ExpectColumnValuesToNotBeNull(column="user_id"),
                gxe.ExpectColumnValuesToBeUnique(column="event_id"),
            ],
        )
        result = batch.add_batch_definition_whole_table("all").get_batch().validate(suite)
    finally:
        datasource.get_execution_engine().close()
        datasource.get_engine().dispose()
    return {r.expectation_config.kwargs["column"]: r.result.get("unexpected_count") for r in result.results}


def test_the_adapter_makes_gx_catch_nulls_and_duplicates(bad_file: Path) -> None:
    counts = _validate_with_gx(gx_connection_string(f"duckdb:///{bad_file}"))
    assert counts == {"user_id": 10, "event_id": 4}


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="upstream: GX fetches rows after closing the connection; duckdb_engine's rollback empties "
    "them, so every metric raises IndexError and no count comes back (the reason for duckdb_adapter)",
)
def test_the_default_duckdb_engine_gives_gx_the_right_counts(bad_file: Path) -> None:
    counts = _validate_with_gx(f"duckdb:///{bad_file}")
    assert counts == {"user_id": 10, "event_id": 4}


def _count_after_close(url: str) -> list:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:  # what GX's execute_query does ...
            result = connection.execute(sa.text("select count(*) from raw.events where user_id is null"))
        return result.fetchall()  # ... and what its callers do afterwards
    finally:
        engine.dispose()


def test_rows_outlive_the_connection_with_the_adapter(bad_file: Path) -> None:
    assert _count_after_close(gx_connection_string(f"duckdb:///{bad_file}")) == [(10,)]


@pytest.mark.xfail(
    strict=True,
    raises=AssertionError,
    reason="upstream: the rollback on close replaces duckdb_engine's pending result with its own (empty)",
)
def test_rows_outlive_the_connection_with_the_default_engine(bad_file: Path) -> None:
    assert _count_after_close(f"duckdb:///{bad_file}") == [(10,)]


def test_a_disposed_engine_leaves_the_file_to_other_processes(bad_file: Path) -> None:
    _count_after_close(gx_connection_string(f"duckdb:///{bad_file}"))
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({str(bad_file)!r}).close()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr


def test_only_duckdb_urls_are_adapted() -> None:
    assert gx_connection_string("duckdb:////data/w.duckdb") == "duckdb+flywheel:////data/w.duckdb"
    with pytest.raises(ValueError, match="not a DuckDB warehouse URL"):
        gx_connection_string("postgresql://postgres@127.0.0.1/db")
