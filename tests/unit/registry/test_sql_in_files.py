"""The registry keeps its SQL in ``registry/sql/*.sql``: no module builds a statement with an f-string, and
every template opens with its contract and renders under StrictUndefined."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import flywheel.registry
from flywheel.registry.store import SQL_DIR, statement

PACKAGE = Path(flywheel.registry.__file__).parent
SQL_WORD = re.compile(r"\b(select|insert|update|delete|create)\b", re.IGNORECASE)


def _sql_fstrings(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.JoinedStr):
            text = "".join(part.value for part in node.values if isinstance(part, ast.Constant))
            if SQL_WORD.search(text):
                found.append(f"{path.name}:{node.lineno}: {text!r}")
    return found


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_builds_sql_with_an_f_string(path: Path) -> None:
    assert _sql_fstrings(path) == [], "move the statement into registry/sql/ and bind its values"


def test_the_check_catches_an_f_string_statement(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text('TABLE = "t"\nSQL = f"SELECT * from {TABLE}"\n')
    assert _sql_fstrings(sample) == ["sample.py:2: 'SELECT * from '"]


@pytest.mark.parametrize("path", sorted(SQL_DIR.glob("*.sql")), ids=lambda p: p.name)
def test_every_template_states_its_contract_and_renders(path: Path) -> None:
    text = path.read_text()
    assert text.startswith("{#") and "Parameters:" in text and "Output:" in text
    assert statement(path.name).strip()
