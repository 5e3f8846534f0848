"""The demo's findings as people read them: the windows it plans, the summary table, and the HTML page
(self-contained: no script, nothing fetched, every name escaped)."""

from __future__ import annotations

import re

import pytest

from flywheel.local.demo import plan_windows
from flywheel.local.story import Progress, summary_lines, write_outputs


def _summary(closed: bool = True) -> dict:
    return {
        "world_line": "72 simulated hours, interest_shift from hour 48",
        "psi_threshold": 0.2,
        "closed": closed,
        "outcome": "drift detected, v0002 retrained and blessed against v0001" if closed else "failed: boom",
        "seconds": 512.3,
        "stages": [
            {"stage": "simulate the marketplace", "seconds": 6.1, "ok": True},
            {"stage": "retrain (v2) and judge it against v1", "seconds": 140.0, "ok": closed},
        ],
        "scores": [
            {
                "model": "v1 v0001",
                "window": "before the drift",
                "start": "2026-01-02T18:00:00",
                "end": "2026-01-03T00:00:00",
                "impressions": 12000,
                "auc": 0.72,
                "ctr_at_5": 0.13,
            },
            {
                "model": "v1 v0001",
                "window": "after the drift",
                "start": "2026-01-03T18:00:00",
                "end": "2026-01-04T00:00:00",
                "impressions": 12500,
                "auc": 0.68,
                "ctr_at_5": 0.11,
            },
            {
                "model": "v2 v0002",
                "window": "after the drift",
                "start": "2026-01-03T18:00:00",
                "end": "2026-01-04T00:00:00",
                "impressions": 12500,
                "auc": 0.71,
                "ctr_at_5": 0.125,
            },
        ],
        "comparison_lines": ["after the drift, v2 against v1 on the same hours: AUC +0.0300"],
        "drift": {
            "onset_hour": 48.0,
            "psi": {"category": [[47, 0.01], [49, 0.9], [50, 0.8]], "<b>price</b>": [[47, 0.02], [49, 0.3]]},
            "psi_peaks": {
                "category": {"psi": 0.9, "window_end_hour": 49},
                "<b>price</b>": {"psi": 0.3, "window_end_hour": 49},
            },
            "retrain_requests": [{"window_end": "2026-01-03T01:00:00", "hours_after_onset": 1.0}],
            "alert_psi": 0.2,
            "detection_delay_hours": 1.0,
            "request_delay_hours": 18.0,
        },
        "drift_rule": "retrain when PSI >= 0.2 in 18 consecutive hourly windows",
        "retrains": [
            {
                "hour": 49,
                "version": "v0002",
                "window_start": "2026-01-01T01:00:00",
                "window_end": "2026-01-03T01:00:00",
                "val_auc": 0.70,
                "warm_start_from": "v0001",
                "status": "rejected",
            },
            {
                "hour": 55,
                "version": "v0003",
                "window_start": "2026-01-01T07:00:00",
                "window_end": "2026-01-03T07:00:00",
                "val_auc": 0.72,
                "warm_start_from": None,
                "status": "blessed",
            },
        ],
        "verdicts": [
            {"version": "v0001", "status": "blessed", "baseline": None, "report": "file:///tmp/r1.html"},
            {"version": "v0002", "status": "blessed", "baseline": "v0001", "failed": []},
        ],
        "deployments": [
            {"version": "v0001", "champion": None, "run_id": "r1", "state": "success"},
            {"version": "v0003", "champion": "v0001", "run_id": "r2", "state": "success"},
        ],
        "canary_steps": [
            {"version": "v0001", "step": 0, "traffic_share": 1.0, "decision": "promote", "reason": "first"},
            {"version": "v0003", "step": 0, "traffic_share": 0.2, "decision": "advance", "reason": "DID ok"},
            {"version": "v0003", "step": 1, "traffic_share": 1.0, "decision": "promote", "reason": None},
        ],
        "traffic": {
            "requests": 9000,
            "failures": 0,
            "seconds": 300.0,
            "p99_ms": 41.0,
            "versions": {
                "v0001": {
                    "requests": 6000,
                    "impressions": 30000,
                    "clicks": 3000,
                    "ctr": 0.1,
                    "ctr_se": 0.002,
                },
                "<i>v0003</i>": {
                    "requests": 3000,
                    "impressions": 15000,
                    "clicks": 1800,
                    "ctr": 0.12,
                    "ctr_se": 0.003,
                },
            },
        },
    }


def test_the_windows_keep_scoring_hours_out_of_the_first_model_s_training() -> None:
    windows = plan_windows(72, 48, 6)
    assert windows == {"first_training": (18, 42), "before_drift": (42, 48), "after_drift": (66, 72)}
    assert plan_windows(40, 18, 6)["first_training"] == (0, 12)


@pytest.mark.parametrize(
    ("hours", "drift_at", "flag"), [(72, 17, "--drift-at 17"), (60, 48, "--hours 60"), (47, 30, "--hours 47")]
)
def test_a_world_too_short_for_the_story_is_refused_naming_the_flag(hours, drift_at, flag) -> None:
    with pytest.raises(ValueError, match=re.escape(flag)) as refused:
        plan_windows(hours, drift_at, 6)
    assert "; use --" in str(refused.value)  # the fix, as the CLI prints it


def test_the_table_reads_peaks_delay_verdicts_and_stage_times() -> None:
    text = "\n".join(summary_lines(_summary()))
    assert text.index("category") < text.index("<b>price</b>")  # highest peak first
    assert "detection delay: 1 simulated hour(s) from the onset to the first window with PSI >= 0.2" in text
    assert (
        "retraining requested 18 simulated hour(s) after the onset "
        "(retrain when PSI >= 0.2 in 18 consecutive hourly windows)" in text
    )
    assert "gate: v0002 blessed against v0001" in text
    assert re.search(r"retrain \(v2\) and judge it against v1\s+140 s", text)
    assert "loop closed: yes" in text
    assert "v2 v0002" in text and "0.7100" in text and "0.1250" in text
    assert (
        "retrain requested at hour 49: v0002 on [2026-01-01 01, 2026-01-03 01) (fine-tuned from v0001)"
        in text
    )
    assert "retrain requested at hour 55: v0003 on [2026-01-01 07, 2026-01-03 07) (cold search)" in text
    assert "deploy_model v0003 (canary beside v0001): run success" in text
    assert "v0003 step 0 at 20% of users: advance: DID ok" in text
    assert "live users: 9,000 requests in 300 s, 0 failed, p99 41 ms; served by v0001 6,000" in text


def test_an_open_loop_says_so_and_names_the_failed_stage() -> None:
    text = "\n".join(summary_lines(_summary(closed=False)))
    assert "loop closed: NO (failed: boom)" in text
    assert re.search(r"retrain \(v2\) and judge it against v1\s+140 s  FAILED", text)


def test_the_page_is_self_contained_and_escapes_names(tmp_path) -> None:
    json_path, html_path = write_outputs(_summary(), tmp_path / "demo")
    page = html_path.read_text()
    assert json_path.read_text().startswith("{")
    assert "<script" not in page
    assert not re.search(r'(src|href)="https?:', page)  # nothing fetched
    assert "<b>price</b>" not in page and "&lt;b&gt;price&lt;/b&gt;" in page
    # One line per feature in the PSI chart, the threshold rule, and bars for the models and the stages.
    assert len(re.findall(r'<path d="M', page)) == 2
    assert "drift alert" in page and "Retraining requested 18 simulated hour(s) after the onset" in page
    assert page.count("<rect") >= 2 * 3 + 2 + 2 + 2  # AUC and CTR bars, legend, stage bars, served CTR
    assert "<i>v0003</i>" not in page and "&lt;i&gt;v0003&lt;/i&gt;" in page
    assert "v0003 step 0 at 20% of users: advance" in page
    assert 'href="file:///tmp/r1.html"' in page


def test_a_failing_stage_is_recorded_with_its_time() -> None:
    progress = Progress()
    with pytest.raises(RuntimeError), progress.stage("train"):
        raise RuntimeError("no")
    assert progress.stages == [{"stage": "train", "seconds": progress.stages[0]["seconds"], "ok": False}]
    assert progress.stages[0]["seconds"] >= 0


def test_the_outcome_names_the_detection_hour_and_which_retrain_won() -> None:
    from flywheel.local.demo import _closed, _outcome

    summary = _summary()
    assert _outcome(summary) == (
        "retraining first requested at hour 49; 2 retrain(s) judged: v0003 (requested at hour 55) blessed, "
        "canaried and promoted: it serves every user"
    )
    assert _closed(summary)
    summary["deployments"][1]["state"] = "failed"
    assert _outcome(summary).endswith("rolled back by the canary: v1 still serves") and not _closed(summary)
    summary["deployments"].pop()
    assert _outcome(summary).endswith("blessed, not deployed") and not _closed(summary)
    summary["retrains"][1]["status"] = "rejected"
    assert _outcome(summary).endswith("the gate kept v1 (no retrained model was good enough)")
    assert not _closed(summary)
    assert _outcome({"retrains": []}).startswith("no retraining request after the onset")


def test_the_world_ends_at_the_current_hour() -> None:
    from datetime import UTC, datetime

    from flywheel.local.demo import world_start

    now = datetime(2026, 12, 1, 13, 42, 7, tzinfo=UTC)
    assert world_start(72, now) == datetime(2026, 11, 28, 13, 0)  # naive UTC, 72 hours before 13:00
