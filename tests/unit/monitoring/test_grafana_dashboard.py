"""The Grafana dashboard queries only metrics the drift check exports, and shows every one of them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

DASHBOARD = Path(__file__).resolve().parents[3] / "monitoring" / "grafana" / "flywheel.json"


def expressions(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "expr" and isinstance(value, str):
                yield value
            else:
                yield from expressions(value)
    elif isinstance(node, list):
        for item in node:
            yield from expressions(item)


def test_every_promql_metric_is_exported(exported_metric_names: set[str], metric_names_of) -> None:
    exprs = list(expressions(json.loads(DASHBOARD.read_text())))
    used = {name for expr in exprs for name in metric_names_of(expr)}
    assert len(exprs) >= 5
    assert used <= exported_metric_names, (
        f"dashboard queries metrics nobody exports: {used - exported_metric_names}"
    )
    assert used == exported_metric_names, f"exported but not shown: {exported_metric_names - used}"


def test_metric_name_parser_sees_through_promql(metric_names_of) -> None:
    expr = 'count(max by (feature) (flywheel_feature_psi{job="x"}[5m]) >= 0.2) or vector(0) and on (a) b_c'
    assert metric_names_of(expr) == {"flywheel_feature_psi", "b_c"}
