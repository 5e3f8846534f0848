"""The warehouse interface behaves the same on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from flywheel.config import Settings
from flywheel.warehouse import WarehouseError, open_warehouse

SCHEMA = pa.schema([("id", pa.int64()), ("ts", pa.timestamp("us")), ("label", pa.string())])
H0, H1, H2 = datetime(2026, 1, 1, 0), datetime(2026, 1, 1, 1), datetime(2026, 1, 1, 2)


def _rows(ids: list[int], ts: datetime, label: str | None = "x") -> pa.Table:
    return pa.table({"id": ids, "ts": [ts] * len(ids), "label": [label] * len(ids)}, schema=SCHEMA)


def test_replace_partition_swaps_only_its_interval(warehouse_home: Settings) -> None:
    wh = open_warehouse(warehouse_home.warehouse_url)
    wh.replace_partition("raw.things", _rows([1, 2], H0), "ts", H0, H1)
    wh.replace_partition("raw.things", _rows([3], H1), "ts", H1, H2)
    wh.replace_partition("raw.things", _rows([10, 11, 12], H0), "ts", H0, H1)
    ids = wh.read_arrow("select id from raw.things order by id").column("id").to_pylist()
    assert ids == [3, 10, 11, 12]


def test_bound_parameters_and_text_round_trip(warehouse_home: Settings) -> None:
    wh = open_warehouse(warehouse_home.warehouse_url)
    # Quotes, percent signs, colons and empty strings must survive as data, never as SQL.
    labels = ["it's", "100%", "a:b", "", None]
    data = pa.table({"id": list(range(5)), "ts": [H0] * 5, "label": labels}, schema=SCHEMA)
    wh.replace_partition("raw.things", data, "ts", H0, H1)
    got = wh.read_arrow(
        "select label from raw.things where id >= :low and label like '%' order by id", {"low": 0}
    )
    assert got.column("label").to_pylist() == labels[:4]
    nulls = wh.read_arrow("select count(*) as n from raw.things where label is null")
    assert nulls.column("n")[0].as_py() == 1
    evil = wh.read_arrow("select count(*) as n from raw.things where label = :v", {"v": "x' or '1'='1"})
    assert evil.column("n")[0].as_py() == 0


def test_failed_transaction_leaves_previous_partition(warehouse_home: Settings) -> None:
    wh = open_warehouse(warehouse_home.warehouse_url)
    wh.replace_partition("raw.things", _rows([1, 2], H0), "ts", H0, H1)
    with pytest.raises(RuntimeError, match="crash"):
        with wh.transaction() as conn:
            conn.replace_partition("raw.things", _rows([7], H0), "ts", H0, H1)
            raise RuntimeError("crash mid-load")
    ids = wh.read_arrow("select id from raw.things order by id").column("id").to_pylist()
    assert ids == [1, 2]


def test_rows_outside_the_partition_are_refused(warehouse_home: Settings) -> None:
    wh = open_warehouse(warehouse_home.warehouse_url)
    with pytest.raises(WarehouseError, match="outside"):
        wh.replace_partition("raw.things", _rows([1], H1), "ts", H0, H1)


@pytest.mark.parametrize("name", ["raw.things; drop table x", "a.b.c", "1abc", "raw.th-ings", ""])
def test_unsafe_identifiers_are_refused(home: Settings, name: str) -> None:
    wh = open_warehouse(home.warehouse_url)
    with pytest.raises(WarehouseError, match="unsafe SQL identifier"):
        wh.replace_partition(name, _rows([1], H0), "ts", H0, H1)


def test_unknown_url_names_the_fix() -> None:
    with pytest.raises(WarehouseError, match="FLYWHEEL_WAREHOUSE_URL"):
        open_warehouse("mysql://localhost/x")
