"""Jinja rendering of SQL files: undefined names fail loudly and identifiers are validated first."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from flywheel.config import PROJECT_ROOT

#: Template folders, searched in order: the package's own SQL, then the analysts' ``sql/`` tree.
SEARCH_PATH = [Path(__file__).parent / "sql", PROJECT_ROOT / "sql"]


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(p) for p in SEARCH_PATH]),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        autoescape=False,  # SQL, not HTML; values never enter the text, they are bound parameters
    )


def render_sql(template: str | Path, **context: Any) -> str:
    """Render a template by name (relative to the search path) or by absolute path.

    String values in ``context`` are identifiers (tables, columns) and must pass ``validate_identifier``;
    values that vary per run belong in bound parameters, not here.
    """
    from flywheel.warehouse.base import validate_identifier

    for _key, value in context.items():
        if isinstance(value, str):
            validate_identifier(value)
    path = Path(template)
    if path.is_absolute():
        source = path.read_text()
        return _environment().from_string(source).render(**context)
    try:
        return _environment().get_template(str(template)).render(**context)
    except jinja2.UndefinedError as exc:
        raise jinja2.UndefinedError(f"{template}: {exc}") from exc
