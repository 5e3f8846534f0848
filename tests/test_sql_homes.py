"""SQL has two homes: ``sql/`` holds only the templates analysts edit, and plumbing SQL sits in a ``sql/``
folder beside the module that runs it. No SQL is assembled in Python, and an analyst's template stays short
enough to read, with its contract (Identifiers / Parameters / Output) on top."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "plugins" / "flywheel"
ANALYST_SQL = ROOT / "sql"

#: The templates analysts edit, each documented in its stage's page, docs/<stage>.md (monitoring's in its
#: "The templates" table). A file under sql/ that is neither one of these nor included by one is plumbing:
#: it belongs beside its module.
ANALYST_TEMPLATES = {
    "evaluation/did.sql",
    "monitoring/drift_decision.sql",
    "monitoring/feature_histogram.sql",
    "monitoring/online_performance.sql",
    "monitoring/psi.sql",
    "monitoring/reference_counts.sql",
    "monitoring/reference_order_statistics.sql",
    "monitoring/reference_profile.sql",
}
#: Split templates stay readable: about 100 lines each, a little slack for a longer contract comment.
MAX_TEMPLATE_LINES = 110

#: The shape of a SQL statement in the literal text of an f-string (interpolations read as ``{}``). A
#: keyword alone is not enough: error messages say "from" and "a select query" in prose, and flagging those
#: would only teach people to reword messages, so the test looks for the statement, as a reviewer would.
_STATEMENT = re.compile(
    r"""\bselect\b.*\bfrom\b
    | \binsert\s+into\b
    | \bdelete\s+from\b
    | \bupdate\s+(\S+\s+)?set\b
    | \b(create|alter|drop)\s+(or\s+replace\s+)?(table|schema|view|index|sequence)\b
    | \bcopy\s+\S+\s+(\(.*\)\s+)?(from|to)\b
    | \bmerge\s+into\b""",
    re.IGNORECASE | re.VERBOSE | re.DOTALL,
)
#: A plain string that opens like a statement: SQL text kept in Python instead of a .sql file.
_OPENS_STATEMENT = re.compile(
    r"^\s*(select\s|insert\s+into|delete\s+from|update\s+\S+\s+set|(create|alter|drop)\s+table|"
    r"copy\s+[\w.]+\s*\(|with\s+\w+\s+as\s*\()",
    re.IGNORECASE,
)
#: Inline statements outside the packages' sql/ folders that are knowingly left in Python, and why.
KNOWN_INLINE_STATEMENTS: dict[str, str] = {}


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _literal_text(node: ast.JoinedStr) -> str:
    return "".join(
        part.value if isinstance(part, ast.Constant) and isinstance(part.value, str) else "{}"
        for part in node.values
    )


def _f_string_statements(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.JoinedStr):
            text = _literal_text(node)
            if _STATEMENT.search(text):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: f{text!r}")
    return found


def test_the_statement_detector_tells_sql_from_prose() -> None:
    # The detector itself: every way the code base once built SQL, and messages that merely use the words.
    for sql in (
        "f\"select * from {table} where event_ts >= timestamp '{start}'\"",
        'f"delete from {table} where run_id = :run_id"',
        'f"insert into {table} ({columns}) select {columns} from _incoming"',
        'f"update {table} set status = :s where version = :v"',
        'f"copy {table} ({columns}) from stdin with (format csv)"',
        'f"alter table {table} add column {name} varchar"',
    ):
        assert _STATEMENT.search(_literal_text(ast.parse(sql, mode="eval").body)), sql
    for prose in (
        'f"{role} is empty: give a table name or a select query"',
        'f"cannot move {version} from {old} to {new}"',
        'f"bins must be a whole number from 2 to {limit}, got {bins!r}"',
        'f"say which mart it is exported from in {path}, where it is defined"',
    ):
        assert not _STATEMENT.search(_literal_text(ast.parse(prose, mode="eval").body)), prose


def test_no_module_builds_sql_from_values_with_an_f_string() -> None:
    # Identifiers go through render_sql (validated), values are bound parameters: an f-string can do neither.
    found = [hit for path in _modules() for hit in _f_string_statements(path)]
    assert not found, "SQL built with an f-string; move it to a .sql file beside the module:\n" + "\n".join(
        found
    )


def test_no_module_keeps_a_statement_inline() -> None:
    found = []
    for path in _modules():
        name = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), filename=name)):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and _OPENS_STATEMENT.match(node.value)
                and KNOWN_INLINE_STATEMENTS.get(name) != node.value
            ):
                found.append(f"{name}:{node.lineno}: {node.value[:70]!r}")
    assert not found, "SQL kept in Python; move it to a .sql file beside the module:\n" + "\n".join(found)


ANALYST_FILES = sorted(ANALYST_SQL.rglob("*.sql"))


@pytest.mark.parametrize("path", ANALYST_FILES, ids=lambda p: str(p.relative_to(ANALYST_SQL)))
def test_an_analyst_template_is_short_and_opens_with_its_contract(path: Path) -> None:
    text = path.read_text()
    lines = text.count("\n") + (not text.endswith("\n"))
    assert lines <= MAX_TEMPLATE_LINES, (
        f"{path.relative_to(ROOT)} has {lines} lines: split it into parts an analyst can read "
        f"(Jinja includes, as reference_profile.sql includes profile/*.sql), at most {MAX_TEMPLATE_LINES}"
    )
    assert text.startswith("{#"), f"{path.relative_to(ROOT)} must open with its {{# contract #}} comment"
    contract = text[: text.index("#}")]
    if str(path.relative_to(ANALYST_SQL)) in ANALYST_TEMPLATES:
        for heading in ("Identifiers:", "Parameters:", "Output:"):
            assert heading in contract, f"{path.relative_to(ROOT)}: its contract has no {heading!r}"


def _included(name: str) -> set[str]:
    text = (ANALYST_SQL / name).read_text()
    direct = set(re.findall(r"""{%-?\s*include\s+["']([^"']+)["']""", text))
    return direct.union(*(_included(child) for child in direct)) if direct else set()


def test_the_analysts_tree_holds_no_plumbing() -> None:
    reachable = set(ANALYST_TEMPLATES).union(*(_included(name) for name in ANALYST_TEMPLATES))
    present = {str(p.relative_to(ANALYST_SQL)) for p in ANALYST_FILES}
    missing = set(ANALYST_TEMPLATES) - present
    assert not missing, f"listed as analyst templates but not under sql/: {sorted(missing)}"
    stray = sorted(present - reachable)
    assert not stray, (
        f"{stray} under sql/ are neither analyst templates (ANALYST_TEMPLATES, documented in "
        "docs/<stage>.md) nor included by one: plumbing belongs in plugins/flywheel/<package>/sql/"
    )


def test_every_analyst_template_is_documented() -> None:
    # sql/<stage>/x.sql is described in docs/<stage>.md.
    def page(name: str) -> Path:
        return ROOT / "docs" / f"{Path(name).parts[0]}.md"

    undocumented = [
        f"{name} in {page(name).relative_to(ROOT)}"
        for name in sorted(ANALYST_TEMPLATES)
        if not page(name).exists() or f"`{Path(name).name}`" not in page(name).read_text()
    ]
    assert not undocumented, f"describe each template in its stage's page: {undocumented}"
