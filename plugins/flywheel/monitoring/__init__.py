"""Drift monitoring: PSI per feature and online CTR/AUC computed in SQL, the retrain rule, Prometheus export.

The SQL analysts edit lives in ``sql/monitoring/``, the plumbing (probes, deletes, inserts) in this
package's ``sql/``; these modules render it, store its results in ``monitoring.*`` tables and publish them.
``reference.py`` is the NumPy statement of the same semantics.
"""

from __future__ import annotations

from flywheel.monitoring.decision import Decision, drift_decision
from flywheel.monitoring.drift import FeatureDrift, compare_relations, compute_window_drift
from flywheel.monitoring.metrics import export_metrics
from flywheel.monitoring.performance import OnlinePerformance, online_performance
from flywheel.monitoring.profiles import profile_reference
from flywheel.monitoring.relations import Relation, RelationError, parse_relation

__all__ = [
    "Decision",
    "FeatureDrift",
    "OnlinePerformance",
    "Relation",
    "RelationError",
    "compare_relations",
    "compute_window_drift",
    "drift_decision",
    "export_metrics",
    "online_performance",
    "parse_relation",
    "profile_reference",
]
