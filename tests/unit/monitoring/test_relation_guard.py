"""What a relation may be: a table name or one read-only select, judged before anything reaches a database."""

from __future__ import annotations

import pytest

from flywheel.monitoring.relations import RelationError, parse_relation, validate_features

ACCEPTED = [
    "raw.impressions",
    "impressions",
    "select * from raw.impressions where price > 10",
    "  WITH recent AS (SELECT * FROM raw.impressions) SELECT price FROM recent",
    "(select 1 as x) union all (select 2)",
    "select price from raw.impressions -- a trailing comment",
    "select replace(category, 'a', 'b') as category, \"update\" from t",
]

REFUSED = {
    "raw.impressions; drop table raw.impressions": "neither a table name nor a select",
    "raw.impressions;drop": "unsafe SQL identifier",
    "a.b.c": "unsafe SQL identifier",
    "drop table raw.impressions": "nor a select query",
    "update raw.impressions set price = 0": "nor a select query",
    "select 1; select 2": "';'",
    "select 1;": "';'",
    "select * into t2 from t": "INTO",
    "with d as (delete from t returning *) select * from d": "DELETE",
    "select nextval('seq')": "NEXTVAL",
    "select pg_read_file('/etc/passwd') as x": "reads the server's files",
    "select * from pg_ls_dir('.') as d": "pg_ls_dir",
    "select * from t where id = :id": "placeholder",
    "select from where": "does not parse",
    "": "empty",
}


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("text", ACCEPTED)
def test_accepted(text: str, dialect: str) -> None:
    relation = parse_relation(text, dialect)
    assert relation.is_query == (" " in text.strip())
    # A query goes in parentheses on lines of its own, so a trailing "-- comment" cannot swallow them.
    assert relation.sql == text.strip() or relation.sql == f"(\n{text.strip()}\n)"


@pytest.mark.parametrize("dialect", ["duckdb", "postgres"])
@pytest.mark.parametrize("text", sorted(REFUSED))
def test_refused_with_the_reason(text: str, dialect: str) -> None:
    with pytest.raises(RelationError, match="(?i)" + REFUSED[text].replace("(", r"\(")):
        parse_relation(text, dialect)


def test_feature_names_are_plain_columns() -> None:
    assert validate_features([" price", "position", "price"]) == ["price", "position"]
    for bad in ("raw.price", "price;", "1st", 'pri"ce'):
        with pytest.raises(RelationError, match="unsafe feature name"):
            validate_features([bad])
