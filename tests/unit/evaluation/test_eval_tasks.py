"""The ``evaluate_model`` tasks around the gate: which candidates a run owns, a verdict never judged twice,
the reason a status change records, the ``model_blessed`` extra, and the verdict's Prometheus metrics."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from flywheel.config import Settings
from flywheel.evaluation.gate import FAILED, PASSED, Check, GateDecision
from flywheel.evaluation.tasks import (
    announce_blessed,
    export_metrics,
    judge,
    pending_candidates,
    report_link,
    verdict_reason,
)
from flywheel.registry import RegistryError, register_candidate, set_status
from flywheel.warehouse import open_warehouse


def _register(settings: Settings, n: int) -> str:
    return register_candidate(
        data_version=f"data{n}",
        artifact_uri=f"/nowhere/run{n}/model",  # never scored: these tests stop before the gate
        params={},
        metrics={},
        warehouse=open_warehouse(settings.warehouse_url),
    )


def test_a_run_owns_every_unjudged_candidate_oldest_first(home: Settings) -> None:
    assert pending_candidates({}, home) == []
    v1, v2, v3 = (_register(home, n) for n in (1, 2, 3))
    set_status(v2, "rejected", open_warehouse(home.warehouse_url), reason="test")
    assert pending_candidates({}, home) == [v1, v3]
    assert pending_candidates({"candidate": v2}, home) == [v2]  # the form names one, judged or not
    with pytest.raises(RegistryError, match="no model version 'v0999'"):
        pending_candidates({"candidate": "v0999"}, home)


def test_a_version_already_judged_is_not_judged_again(home: Settings) -> None:
    v1, v2 = _register(home, 1), _register(home, 2)
    warehouse = open_warehouse(home.warehouse_url)
    set_status(v1, "blessed", warehouse, reason="gate passed")
    set_status(v2, "rejected", warehouse, reason="gate failed")
    # Its artifacts do not exist: judging it again would raise. A rerun returns the recorded verdict.
    assert judge(v1, {}, "rerun", home) == {"version": v1, "status": "blessed", "passed": True}
    assert judge(v2, {}, "rerun", home) == {"version": v2, "status": "rejected", "passed": False}


def test_a_candidate_without_its_model_files_is_rejected_with_the_reason(home: Settings) -> None:
    from flywheel.registry import get_version, history

    version = _register(home, 1)
    result = judge(version, {}, "run-1", home)
    assert result == {"version": version, "status": "rejected", "passed": False, "failed": ["artifacts"]}
    warehouse = open_warehouse(home.warehouse_url)
    assert get_version(version, warehouse).status == "rejected"
    last = history(version, warehouse)[-1]
    assert last.run_id == "run-1" and last.reason.startswith(
        f"not judged: version {version} has no artifacts"
    )
    assert (home.home / "metrics" / "flywheel_evaluation.prom").is_file()


def _check(name: str, slice_: str, passed: bool, reason: str) -> Check:
    return Check(
        name, slice_, 0.7, 0.72, -0.02, -0.03, -0.01, 0.01, passed, reason, PASSED if passed else FAILED
    )


def test_the_status_change_reason_names_the_baseline_and_every_failed_check() -> None:
    failed = GateDecision(
        False,
        [
            _check("auc", "all", True, "ok"),
            _check("auc", "item_category=books", False, "lower bound -0.030 below -0.010"),
            _check("ctr@5", "all", False, "lower bound -0.012 below -0.005"),
        ],
    )
    reason = verdict_reason(failed, "v0001")
    assert reason.startswith("gate failed against v0001: 2 of 3 check(s) failed: ")
    assert "auc on item_category=books: lower bound -0.030 below -0.010" in reason
    assert "ctr@5 on all: lower bound -0.012 below -0.005" in reason
    passed = GateDecision(True, [_check("auc", "all", True, "ok")])
    assert (
        verdict_reason(passed, None) == "gate passed on absolute thresholds (first model): 1 check(s) passed"
    )


def test_model_blessed_names_the_blessed_versions_or_nothing() -> None:
    results = [
        {"version": "v0002", "passed": False},
        {"version": "v0003", "passed": True},
        None,  # a mapped task that returned nothing
        {"version": "v0004", "passed": True},
    ]
    assert announce_blessed(results) == {"version": "v0004", "versions": ["v0003", "v0004"]}
    assert announce_blessed(results[:1]) is None
    assert announce_blessed([]) is None


def test_the_verdict_is_exported_for_prometheus(home: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    monkeypatch.delenv("FLYWHEEL_PUSHGATEWAY_URL", raising=False)
    when = datetime(2026, 1, 3, tzinfo=UTC)
    path = export_metrics("v0002", "v0001", False, 3, evaluated_at=when, settings=home)
    assert path == home.home / "metrics" / "flywheel_evaluation.prom"
    samples = {
        s.name: s for family in text_string_to_metric_families(path.read_text()) for s in family.samples
    }
    assert samples["flywheel_evaluation_passed"].value == 0
    assert samples["flywheel_evaluation_passed"].labels == {"candidate": "v0002", "baseline": "v0001"}
    assert samples["flywheel_evaluation_failed_checks"].value == 3
    assert math.isclose(samples["flywheel_evaluation_timestamp_seconds"].value, when.timestamp())
    # The next verdict replaces the last one: a blessed first model.
    export_metrics("v0003", None, True, 0, settings=home)
    passed = [
        s
        for family in text_string_to_metric_families(path.read_text())
        for s in family.samples
        if s.name == "flywheel_evaluation_passed"
    ]
    assert [(s.labels, s.value) for s in passed] == [({"candidate": "v0003", "baseline": "none"}, 1.0)]


def test_the_report_link_is_a_file_url_or_the_store_uri(tmp_path) -> None:
    assert report_link(str(tmp_path / "r.html")) == (tmp_path / "r.html").as_uri()
    assert report_link("s3://bucket/evaluations/r.html") == "s3://bucket/evaluations/r.html"
    assert report_link(None) == "not written"
