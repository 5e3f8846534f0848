"""`flywheel psi`: numbers match the NumPy reference; bad requests are refused (exit 2), nothing touched."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from flywheel.cli import main
from flywheel.config import Settings
from flywheel.monitoring import reference as ref
from flywheel.warehouse import Warehouse
from flywheel.warehouse.duckdb import DuckDBConnection
from flywheel.warehouse.postgres import PostgresConnection

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def tables(load, warehouse: Warehouse) -> dict[str, list]:
    rng = np.random.default_rng(11)
    reference = {
        "x": rng.normal(size=800).tolist(),
        "seg": [None if i % 17 == 0 else f"s{int(v) % 60}" for i, v in enumerate(rng.zipf(1.5, 800))],
    }
    current = {
        "x": [None if i % 9 == 0 else v for i, v in enumerate(rng.normal(0.5, 1, 500).tolist())],
        "seg": [f"s{int(v) % 70}" for v in rng.zipf(1.3, 500)],
    }
    load("features.reference", {"x": (pa.float64(), reference["x"]), "seg": (pa.string(), reference["seg"])})
    load("features.current", {"x": (pa.float64(), current["x"]), "seg": (pa.string(), current["seg"])})
    return {"reference": reference, "current": current}


@pytest.fixture
def executed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every statement sent through ``Connection.execute`` (writes go there; reads go through read_arrow)."""
    statements: list[str] = []
    for cls in (DuckDBConnection, PostgresConnection):
        original = cls.execute

        def spy(self, sql, params=None, _original=original):
            statements.append(sql)
            return _original(self, sql, params)

        monkeypatch.setattr(cls, "execute", spy)
    return statements


def psi_args(settings: Settings, **overrides: str) -> list[str]:
    options = {
        "--warehouse": settings.warehouse_url,
        "--reference": "features.reference",
        "--current": "select * from features.current where seg is not null or x > -100",
        "--features": "x,seg",
        "--categorical": "seg",
        **overrides,
    }
    return ["psi", *[part for pair in options.items() for part in pair]]


def test_json_output_matches_numpy(
    tables, warehouse_home: Settings, executed: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(psi_args(warehouse_home, **{"--format": "json", "--bins": "8"}))

    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result["features"]) == {"x", "seg"}
    for name, kind in (("x", "numeric"), ("seg", "categorical")):
        expected = ref.feature_psi(tables["reference"][name], tables["current"][name], kind, bins=8)
        feature = result["features"][name]
        assert feature["psi"] == pytest.approx(expected.psi, abs=1e-9)
        assert [b["bin"] for b in feature["bins"]] == expected.bins
        assert feature["rows"] == 500
    assert executed == []  # the comparison only reads


def test_table_output_names_each_feature(tables, warehouse_home: Settings, capsys) -> None:
    assert main(psi_args(warehouse_home)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["feature", "kind", "bins", "psi", "reading"]
    assert {line.split()[0] for line in lines[1:]} == {"x", "seg"}


REFUSALS = {
    "unknown column": ({"--features": "x,nope"}, "unknown column(s) nope"),
    "unsafe identifier": ({"--reference": "features.reference;drop"}, "unsafe SQL identifier"),
    "unsafe feature": ({"--features": "x,seg)--"}, "unsafe feature name"),
    "empty relation": ({"--current": "select * from features.current where 1 = 0"}, "has no rows"),
    "missing table": ({"--reference": "features.nothing"}, "cannot read table features.nothing"),
    "delete": ({"--current": "delete from features.current"}, "nor a select query"),
    "two statements": ({"--current": "select * from features.current; drop table features.reference"}, "';'"),
    "data-changing cte": (
        {"--current": "with gone as (delete from features.current returning *) select * from gone"},
        "DELETE",
    ),
    "select into": ({"--current": "select * into features.copy from features.current"}, "INTO"),
    "one bin": ({"--bins": "1"}, "bins must be"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_refusals_exit_2_and_change_nothing(
    case: str, tables, warehouse: Warehouse, warehouse_home: Settings, executed: list[str], capsys
) -> None:
    overrides, message = REFUSALS[case]

    code = main(psi_args(warehouse_home, **overrides))

    err = capsys.readouterr().err
    assert code == 2, err
    assert "flywheel psi: refused:" in err and message in err
    assert executed == []
    assert warehouse.read_arrow("select count(*) as n from features.current").column("n")[0].as_py() == 500
    assert warehouse.read_arrow("select count(*) as n from features.reference").column("n")[0].as_py() == 800
    assert not warehouse.table_exists("features.copy")
    assert not warehouse.table_exists("monitoring.reference_profiles")


def test_missing_duckdb_file_is_refused_not_created(tmp_path: Path, capsys) -> None:
    path = tmp_path / "typo.duckdb"
    code = main(
        ["psi", "--warehouse", f"duckdb:///{path}", "--reference", "a", "--current", "b", "--features", "x"]
    )
    assert code == 2
    assert "no DuckDB warehouse at" in capsys.readouterr().err
    assert not path.exists()


def test_the_installed_command_refuses_with_status_2(tables, warehouse_home: Settings) -> None:
    command = [sys.executable, "-m", "flywheel.cli", *psi_args(warehouse_home, **{"--features": "x,missing"})]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 2
    assert "unknown column(s) missing in table features.reference" in done.stderr
    assert "Traceback" not in done.stderr
