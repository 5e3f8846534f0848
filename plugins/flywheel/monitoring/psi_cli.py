"""``flywheel psi``: PSI of two relations for analysts, printed as a table or JSON; refusals exit with 2."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from flywheel.config import DriftRule
from flywheel.monitoring.drift import FeatureDrift, compare_relations
from flywheel.monitoring.relations import RelationError, safe_message
from flywheel.warehouse import Warehouse, WarehouseError, open_warehouse
from flywheel.warehouse.base import READER_STATEMENT_TIMEOUT_S

#: Exit status of a refused request (bad name, unknown column, empty relation, not a select), as argparse.
EXIT_REFUSED = 2
#: Reading of PSI printed beside the number: the drift rule's default thresholds (flywheel.config.DriftRule),
#: which are also the conventional ones, so "major shift" is what would request retraining on its own.
LEVELS: tuple[tuple[float, str], ...] = (
    (DriftRule.psi_threshold, "major shift"),
    (DriftRule.sustained_threshold, "moderate shift"),
    (0.0, "stable"),
)


def split_names(value: str | None) -> list[str]:
    """``"a, b,c"`` -> ``["a", "b", "c"]``."""
    return [name.strip() for name in (value or "").split(",") if name.strip()]


def run_psi(
    warehouse_url: str | None,
    reference: str,
    current: str,
    features: Sequence[str],
    categorical: Sequence[str] = (),
    bins: int = 10,
    output_format: str = "table",
    out: TextIO | None = None,
    err: TextIO | None = None,
    statement_timeout_s: float = READER_STATEMENT_TIMEOUT_S,
) -> int:
    """Compare ``current`` with ``reference`` and print the result; returns the exit status.

    The relations run with least privilege (``Warehouse.reader``); no message printed quotes row values.
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        warehouse = _open_existing(warehouse_url)
        drifts = compare_relations(
            warehouse,
            reference,
            current,
            features,
            categorical,
            bins,
            statement_timeout_s=statement_timeout_s,
        )
    except RelationError as exc:
        print(f"flywheel psi: refused: {exc}", file=err)
        return EXIT_REFUSED
    except WarehouseError as exc:
        print(f"flywheel psi: {exc}", file=err)
        return EXIT_REFUSED
    except Exception as exc:  # a database error mid-query: say which, not a traceback nor the rows
        print(f"flywheel psi: the warehouse failed: {safe_message(exc)}", file=err)
        return 1
    if output_format == "json":
        print(json.dumps(as_json(drifts), indent=2), file=out)
    else:
        print(as_table(drifts), file=out)
    return 0


def _open_existing(url: str | None) -> Warehouse:
    warehouse = open_warehouse(url)
    path = getattr(warehouse, "path", None)
    # Opening a DuckDB path that does not exist would create an empty database: a typo must not do that.
    if path and path != ":memory:" and not Path(path).exists():
        raise WarehouseError(f"no DuckDB warehouse at {path}: check --warehouse (or FLYWHEEL_WAREHOUSE_URL)")
    return warehouse


def level(psi: float | None) -> str:
    if psi is None:
        return "no data"
    return next(label for bound, label in LEVELS if psi >= bound)


def as_json(drifts: Sequence[FeatureDrift]) -> dict[str, object]:
    """``{"features": {name: {"psi": float, "kind": ..., "rows": n, "bins": [...]}}}``."""
    return {
        "features": {
            d.feature: {
                "psi": d.psi,
                "kind": d.kind,
                "level": level(d.psi),
                "rows": d.window_rows,
                "bins": d.bins,
            }
            for d in drifts
        }
    }


def as_table(drifts: Sequence[FeatureDrift]) -> str:
    header = ("feature", "kind", "bins", "psi", "reading")
    rows = [
        (d.feature, d.kind, str(len(d.bins)), "-" if d.psi is None else f"{d.psi:.6f}", level(d.psi))
        for d in drifts
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    return "\n".join(lines)
