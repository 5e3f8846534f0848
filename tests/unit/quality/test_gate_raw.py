"""The raw gates: bad batches fail by name and leave ``raw.*`` for quarantine; repaired batches pass."""

from __future__ import annotations

import dataclasses
import json
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest
from gate_world import GATED, GATED_END, RawWorld, set_values

from flywheel.config import Settings, get_settings
from flywheel.quality import EXPECTATIONS_DIR, DataQualityError, GateFailed, run_gate


def _gate(world: RawWorld, suite: str = "raw_impressions", run_id: str = "gate-1"):
    return run_gate(suite, start=GATED, end=GATED_END, settings=world.settings, run_id=run_id)


def _null_user_id(data: pa.Table) -> pa.Table:
    return set_values(data, "user_id", range(0, 120, 10), None)  # 12 rows


def _duplicate_impression_id(data: pa.Table) -> pa.Table:
    return set_values(data, "impression_id", range(1, 4), data.column("impression_id")[0].as_py())


def _negative_price(data: pa.Table) -> pa.Table:
    return set_values(data, "price", range(5), -4.5)


def _dropped_column(data: pa.Table) -> pa.Table:
    return data.drop_columns(["user_id"])  # ingest refuses the file: the partition arrives empty


def _ninety_percent_smaller(data: pa.Table) -> pa.Table:
    return data.slice(0, data.num_rows // 10)


BAD_BATCHES = {
    "null user_id": (_null_user_id, "expect_column_values_to_not_be_null(user_id): 12 of {n} rows null"),
    "duplicate impression_id": (
        _duplicate_impression_id,
        "expect_column_values_to_be_unique(impression_id): 4 of {n} rows duplicated",
    ),
    "negative price": (
        _negative_price,
        "expect_column_values_to_be_between(price): 5 of {n} rows not > 0, e.g. -4.5",
    ),
    "dropped column": (_dropped_column, "expect_table_row_count_to_be_between: observed 0, expected "),
    "90% smaller batch": (
        _ninety_percent_smaller,
        "expect_table_row_count_to_be_between: observed {n}, expected ",
    ),
}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list:
    """Refuse (and record) any connection or name lookup beyond this machine."""
    attempts: list = []
    local = {"127.0.0.1", "::1", "localhost"}
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock: socket.socket, address) -> None:
        if sock.family == socket.AF_UNIX or address[0] in local:
            return real_connect(sock, address)
        attempts.append(address)
        raise OSError(f"network access in a test: {address}")

    def getaddrinfo(host, *args, **kwargs):
        if host not in local and host is not None:
            attempts.append(host)
            raise OSError(f"name lookup in a test: {host}")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return attempts


def test_a_good_simulated_batch_passes_every_raw_gate(raw_world: RawWorld, no_network: list) -> None:
    for suite, table in [("raw_impressions", "raw.impressions"), ("raw_clicks", "raw.clicks")]:
        result = _gate(raw_world, suite)
        assert result.success and not result.failures
        assert result.row_count == raw_world.count(table) > 0
        assert result.bounds.history_hours == 6 and result.bounds.hourly_average > 0
        assert result.statistics["unsuccessful_expectations"] == 0
        assert result.data_docs_page is None  # Data Docs are rendered for failures only (speed)
    orders = _gate(raw_world, "raw_orders")  # a few orders an hour: too few to judge volume, still checked
    assert orders.success and orders.bounds.max_value is None
    assert raw_world.count("quarantine.raw_impressions") == 0
    assert [v["success"] for v in raw_world.validations("raw_impressions")] == [True]
    assert no_network == []  # no usage statistics, no version check: the gate never leaves the machine


@pytest.mark.parametrize("case", list(BAD_BATCHES))
def test_a_bad_batch_is_quarantined_and_the_repaired_batch_passes(raw_world: RawWorld, case: str) -> None:
    corrupt, expected_message = BAD_BATCHES[case]
    good = raw_world.landed()
    received = raw_world.reland(corrupt(good))
    raw_world.ingest(GATED, GATED_END)
    loaded = raw_world.count("raw.impressions")

    with pytest.raises(GateFailed) as failed:
        _gate(raw_world, run_id="gate-bad")

    message = str(failed.value)
    assert message.startswith("raw_impressions [2026-01-01 06:00, 07:00): ")
    assert expected_message.format(n=loaded) in message
    assert isinstance(failed.value, DataQualityError)
    # Moved, not copied: nothing of the batch is left for dbt, and every received row is accounted for.
    assert raw_world.count("raw.impressions") == 0
    quarantined = raw_world.count("quarantine.raw_impressions")
    assert quarantined == loaded
    assert 0 + quarantined + raw_world.rows_in_files_quarantined_by_ingest() == received
    (record,) = raw_world.validations("raw_impressions")
    assert record["success"] is False and record["rows_quarantined"] == loaded
    assert json.loads(record["failed_expectations"])[0]["message"] in message
    assert failed.value.result.data_docs_page.is_file()
    assert message.endswith(
        "To recover: re-land corrected files for the interval, re-run ingest_events, then this gate"
    )
    if case == "dropped column":
        assert "ingest refused 1 file(s) of it (quarantine.files)" in message

    raw_world.reland(good)
    raw_world.ingest(GATED, GATED_END)
    repaired = _gate(raw_world, run_id="gate-repaired")
    assert repaired.success and repaired.row_count == good.num_rows == raw_world.count("raw.impressions")
    assert raw_world.count("quarantine.raw_impressions") == quarantined  # the evidence stays


def test_rerunning_a_failed_gate_never_doubles_the_quarantine(raw_world: RawWorld) -> None:
    raw_world.reland(_null_user_id(raw_world.landed()))
    raw_world.ingest(GATED, GATED_END)
    loaded = raw_world.count("raw.impressions")
    with pytest.raises(GateFailed):
        _gate(raw_world, run_id="first")

    # A retry finds the partition already moved: it fails on volume and leaves the quarantine alone.
    with pytest.raises(GateFailed, match="observed 0"):
        _gate(raw_world, run_id="first")
    assert raw_world.count("quarantine.raw_impressions") == loaded

    # Ingest rerun on the same files, then a new gate run: the interval's copy is replaced, not appended.
    raw_world.ingest(GATED, GATED_END)
    with pytest.raises(GateFailed, match="user_id"):
        _gate(raw_world, run_id="second")
    assert raw_world.count("quarantine.raw_impressions") == loaded
    assert raw_world.quarantine_run_ids() == ["second"]
    assert [v["run_id"] for v in raw_world.validations("raw_impressions")] == ["first", "second"]


@pytest.mark.parametrize("outcome", ["passes", "fails"])
def test_the_duckdb_file_is_free_when_the_gate_returns(raw_world: RawWorld, outcome: str) -> None:
    if outcome == "fails":
        raw_world.reland(_negative_price(raw_world.landed()))
        raw_world.ingest(GATED, GATED_END)
    try:
        _gate(raw_world)
    except GateFailed:
        assert outcome == "fails"
    # Another process (dbt, the next Airflow task) must be able to open the file right away.
    path = raw_world.settings.warehouse_url.split(":///", 1)[1]
    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; duckdb.connect({path!r}).close()"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert opened.returncode == 0, opened.stderr


def test_an_unknown_suite_or_missing_table_is_a_clear_error(home: Settings) -> None:
    with pytest.raises(DataQualityError, match="no expectation suite 'raw_nope'.*raw_impressions"):
        run_gate("raw_nope", start=GATED, end=GATED_END, settings=home, run_id="r")
    with pytest.raises(DataQualityError, match="raw.impressions does not exist"):
        run_gate("raw_impressions", start=GATED, end=GATED_END, settings=home, run_id="r")


def test_a_suite_that_cannot_be_evaluated_quarantines_nothing(raw_world: RawWorld, tmp_path: Path) -> None:
    definition = json.loads((EXPECTATIONS_DIR / "raw_clicks.json").read_text())
    definition["expectations"].append(
        {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "clicked_at"}}
    )
    (tmp_path / "expectations").mkdir()
    (tmp_path / "expectations" / "raw_clicks.json").write_text(json.dumps(definition))
    before = raw_world.count("raw.clicks")

    with pytest.raises(DataQualityError, match="could not evaluate.*clicked_at") as error:
        run_gate(
            "raw_clicks",
            start=GATED,
            end=GATED_END,
            settings=dataclasses.replace(raw_world.settings, project_root=tmp_path),
            run_id="typo",
        )
    assert not isinstance(error.value, GateFailed)  # a broken suite is not bad data
    assert raw_world.count("raw.clicks") == before > 0
    assert raw_world.count("quarantine.raw_clicks") == 0


@pytest.mark.postgres
def test_the_same_gate_runs_on_postgres(
    postgres_url: str,
    home: Settings,
    monkeypatch: pytest.MonkeyPatch,
    make_raw_world: Callable[[Settings], RawWorld],
) -> None:
    monkeypatch.setenv("FLYWHEEL_WAREHOUSE_URL", postgres_url)
    world = make_raw_world(get_settings())
    assert _gate(world, "raw_clicks").success

    good = world.landed()
    received = world.reland(_null_user_id(good))
    world.ingest(GATED, GATED_END)
    with pytest.raises(GateFailed, match=r"expect_column_values_to_not_be_null\(user_id\): 12 of"):
        _gate(world)
    assert world.count("raw.impressions") == 0
    assert world.count("quarantine.raw_impressions") == received

    world.reland(good)
    world.ingest(GATED, GATED_END)
    assert _gate(world, run_id="repaired").row_count == good.num_rows
