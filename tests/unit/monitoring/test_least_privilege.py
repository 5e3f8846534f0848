"""Analysts' relations run with least privilege: the engine refuses files and writes, a slow statement is
cancelled, and no refusal quotes a row's values."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from flywheel.config import Settings
from flywheel.monitoring.psi_cli import run_psi
from flywheel.monitoring.relations import safe_message
from flywheel.warehouse import Warehouse

SECRET = "TOPSECRET-4242"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    """A CSV whose first line (what DuckDB would take as column names) is a secret."""
    path = tmp_path / "secret.csv"
    path.write_text(f"{SECRET},other\n1,2\n")
    return path


@pytest.fixture
def tables(load) -> None:
    load("features.reference", {"x": (pa.float64(), [float(i) for i in range(40)])})
    # A text column whose last row is a secret that no cast to a number accepts.
    load("features.secrets", {"s": (pa.string(), ["1.5", "2.5", "3.5", SECRET])})


def psi(settings: Settings, current: str, capsys: pytest.CaptureFixture[str], **kwargs) -> tuple[int, str]:
    code = run_psi(settings.warehouse_url, "features.reference", current, ["x"], **kwargs)
    return code, capsys.readouterr().err


def test_duckdb_engine_refuses_files_even_past_the_parser(
    tables, warehouse: Warehouse, secret_file: Path
) -> None:
    if warehouse.dialect != "duckdb":
        pytest.skip("DuckDB's external access; PostgreSQL reads no files for a select")
    statements = [
        f"select * from read_csv('{secret_file}')",
        f"select * from read_csv_auto('{secret_file}', header = true)",
        f"select * from read_parquet('{secret_file.parent}/*.parquet')",
        f"select * from glob('{secret_file.parent}/*')",
        f"select * from read_text('{secret_file}')",
        f"attach '{secret_file.parent / 'other.duckdb'}' as other",
        f"copy features.reference to '{secret_file.parent / 'out.csv'}'",
        "install httpfs",
        "set enable_external_access = true",
    ]
    with warehouse.reader() as conn:
        for sql in statements:  # sent straight to the connection: no parser stands in between
            with pytest.raises(Exception, match="(?i)disabled|locked") as refused:
                conn.read_arrow(sql)
            assert SECRET not in str(refused.value), sql
        assert conn.read_arrow("select count(*) as n from features.reference").column("n")[0].as_py() == 40
    assert not (secret_file.parent / "out.csv").exists()
    assert not (secret_file.parent / "other.duckdb").exists()


def test_reader_refuses_writes_in_the_engine(tables, warehouse: Warehouse) -> None:
    with warehouse.reader() as conn:
        with pytest.raises(Exception, match="(?i)read-only|read only"):
            conn.execute("insert into features.reference (x) values (1.0)")
    with warehouse.reader() as conn:
        with pytest.raises(Exception, match="(?i)read-only|read only"):
            conn.execute("create table features.copied as select * from features.reference")
    assert warehouse.read_arrow("select count(*) as n from features.reference").column("n")[0].as_py() == 40
    assert not warehouse.table_exists("features.copied")


def test_postgres_cancels_a_statement_past_its_timeout(tables, warehouse: Warehouse) -> None:
    if warehouse.dialect != "postgres":
        pytest.skip("the statement timeout is PostgreSQL's")
    with warehouse.reader(statement_timeout_s=0.2) as conn:
        with pytest.raises(Exception, match="statement timeout") as cancelled:
            conn.read_arrow("select pg_sleep(3)")
    assert getattr(cancelled.value, "pgcode", None) == "57014"
    with warehouse.reader(statement_timeout_s=5) as conn:  # under the limit, the same sleep runs
        assert conn.read_arrow("select 1 as one from pg_sleep(0.1)").num_rows == 1


def test_the_psi_command_reports_a_timeout_as_refused(
    tables, warehouse: Warehouse, warehouse_home: Settings, capsys
) -> None:
    if warehouse.dialect != "postgres":
        pytest.skip("the statement timeout is PostgreSQL's")
    slow = "select r.x from features.reference as r cross join pg_sleep(2)"
    code, err = psi(warehouse_home, slow, capsys, statement_timeout_s=0.3)
    assert code == 2, err
    assert "statement timeout" in err and "Traceback" not in err


def test_a_file_in_the_query_is_refused_without_its_content(
    tables, warehouse: Warehouse, warehouse_home: Settings, secret_file: Path, capsys
) -> None:
    if warehouse.dialect != "duckdb":
        pytest.skip("DuckDB's file readers")
    code, err = psi(warehouse_home, f"select * from read_csv('{secret_file}')", capsys)
    assert code == 2, err
    assert "file system operations are disabled" in err
    assert SECRET not in err


@pytest.mark.parametrize(
    "current",
    [
        # Fails on the first rows read (the emptiness probe) on one engine or the other.
        "select cast(s as double precision) as x from features.secrets",
        # Fails only on the secret row, deep in the comparison itself.
        "select cast(s as double precision) as x from features.secrets where s <> '1.5' or s is null",
    ],
)
def test_a_failing_query_never_echoes_row_values(
    tables, warehouse: Warehouse, warehouse_home: Settings, current: str, capsys
) -> None:
    code, err = psi(warehouse_home, current, capsys)
    assert code in (1, 2), err
    assert "withheld" in err, err  # the database's message quoted the value; only its kind is shown
    assert SECRET not in err


def test_the_reference_side_never_echoes_row_values_either(
    tables, warehouse: Warehouse, warehouse_home: Settings, capsys
) -> None:
    code = run_psi(
        warehouse_home.warehouse_url,
        "select cast(s as double precision) as x from features.secrets",
        "features.reference",
        ["x"],
    )
    err = capsys.readouterr().err
    assert code == 2 and "withheld" in err, err
    assert SECRET not in err


def test_messages_naming_only_identifiers_are_kept(tables, warehouse: Warehouse) -> None:
    with warehouse.reader() as conn:
        with pytest.raises(Exception) as missing:
            conn.read_arrow("select * from features.nothing_here")
    assert "nothing_here" in safe_message(missing.value)
