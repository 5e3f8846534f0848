"""The evaluation report: a well-formed page with one SVG per plot and the expected curves and bars, the
gate's failed checks first, every data value escaped, a first model drawn alone, written atomically to a
path or an object store, and 100k rows rendered small and fast."""

from __future__ import annotations

import re
import time
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import fsspec
import numpy as np
import pytest

from flywheel.config import EvaluationSettings
from flywheel.evaluation.bootstrap import compare_models
from flywheel.evaluation.gate import FAILED, Check, GateDecision, decide
from flywheel.evaluation.metrics import auc
from flywheel.evaluation.report import (
    MAX_ROC_POINTS,
    calibration_bins,
    render_report,
    roc_points,
    write_report,
)

SVG = "{http://www.w3.org/2000/svg}"
VOID = {"meta", "link", "br", "hr", "img", "input"}
SETTINGS = EvaluationSettings(resamples=200, min_slice_rows=1000)


def _world(n: int = 20_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Clicks from a true logit; the candidate sees it through less noise than the champion."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-2.0, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    noisy = lambda sd: 1 / (1 + np.exp(-(logit + sd * rng.normal(size=n))))  # noqa: E731
    segment = np.where(np.arange(n) % 2 == 0, "new", "returning")
    tiny = np.where(np.arange(n) < 200, "rare", "common")
    return {"y": y, "good": noisy(0.3), "fair": noisy(0.8), "segment": segment, "tiny": tiny}


def _inputs(w: dict, candidate: np.ndarray, champion: np.ndarray | None, **extra) -> dict:
    slices = {"segment": w["segment"], "tiny": w["tiny"]}
    comparisons = compare_models(
        w["y"], candidate, champion, slices=slices, min_slice_rows=1000, resamples=200
    )
    return dict(
        candidate="v2",
        champion="v1" if champion is not None else None,
        labels=w["y"],
        candidate_scores=candidate,
        champion_scores=champion,
        decision=decide(comparisons, SETTINGS),
        resamples=200,
        seed=0,
        **extra,
    )


class _Tags(HTMLParser):
    """Checks that every tag opened is closed in order, and collects the text of the gate table's rows."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.rows: list[list[str]] = []

    def handle_starttag(self, tag, attrs) -> None:
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "tr":
            self.rows.append([])

    def handle_startendtag(self, tag, attrs) -> None:
        pass  # <rect .../> in SVG: opened and closed at once

    def handle_endtag(self, tag) -> None:
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1:]}>"
        self.stack.pop()

    def handle_data(self, data) -> None:
        if "td" in self.stack and self.rows:
            self.rows[-1].append(data)


def _parse(page: str) -> tuple[_Tags, dict[str, ET.Element]]:
    tags = _Tags()
    tags.feed(page)
    tags.close()
    assert tags.stack == [], f"left open: {tags.stack}"
    svgs = {}
    for fragment in re.findall(r"<svg\b.*?</svg>", page, re.S):
        root = ET.fromstring(fragment)  # each plot is well-formed XML
        assert root.get("role") == "img" and root.get("aria-label")
        assert root[0].tag == f"{SVG}title" and root[0].text == root.get("aria-label")
        svgs[root.get("id").removeprefix("plot-")] = root
    return tags, svgs


def _curves(svg: ET.Element) -> list[ET.Element]:
    return [e for e in svg.iter(f"{SVG}polyline") if e.get("class") == "curve"]


def _bars(svg: ET.Element) -> list[ET.Element]:
    return [e for e in svg.iter(f"{SVG}rect") if e.get("class") == "bar"]


def test_the_page_is_well_formed_with_one_svg_per_plot_and_every_curve_and_bar() -> None:
    w = _world()
    attribution = {"price": 0.30, "age": 0.10, "category": 0.05}
    page = render_report(
        **_inputs(w, w["good"], w["fair"]),
        window=(datetime(2024, 5, 1, 6, tzinfo=UTC), datetime(2024, 5, 1, 12, tzinfo=UTC)),
        candidate_attribution=attribution,
        champion_attribution={"price": 0.25, "age": 0.12},
    )
    tags, svgs = _parse(page)
    assert set(svgs) == {"roc", "calibration", "slices-auc", "slices-log-loss", "slices-ece", "attribution"}
    assert [c.get("data-name") for c in _curves(svgs["roc"])] == ["candidate v2", "champion v1"]
    assert f"candidate v2 (AUC {auc(w['y'], w['good']):.3f})" in svgs["roc"].get("aria-label")
    assert len(_curves(svgs["calibration"])) == 2
    marks = [g for g in svgs["calibration"].iter(f"{SVG}g") if g.get("class") == "mark"]
    bins = [len(calibration_bins(w["y"], scores)[0]) for scores in (w["good"], w["fair"])]
    assert len(marks) == sum(bins)
    # Two slices judged per metric (segment=new, segment=returning, tiny=common): tiny=rare is too small.
    for metric in ("auc", "log-loss", "ece"):
        plot = svgs[f"slices-{metric}"]
        assert len(_bars(plot)) == 3 and len([e for e in plot.iter() if e.get("class") == "interval"]) == 3
        assert len([e for e in plot.iter() if e.get("class") == "margin"]) == 1
    assert "tiny=rare" in page.split('id="slices"')[1].split("<table")[0]  # listed apart
    assert "tiny=rare" not in ET.tostring(svgs["slices-auc"], encoding="unicode")
    assert len(_bars(svgs["attribution"])) == 3 + 2  # one bar per model and feature it has
    assert "champion absent" in ET.tostring(svgs["attribution"], encoding="unicode")
    assert "<title>Evaluation of v2 against v1: blessed</title>" in page
    assert page.count("<h1>") == 1 and page.count("<h2>") == 4
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "200 paired resamples, seed 0" in page and "20,000" in page
    assert "2024-05-01 06:00 UTC to 2024-05-01 12:00 UTC" in page


def test_the_roc_curve_of_perfect_scores_passes_through_the_top_left_corner() -> None:
    y = np.array([0, 1, 0, 1, 1, 0, 0, 1])
    fpr, tpr = roc_points(y, y * 0.9 + 0.05)
    assert list(zip(fpr, tpr, strict=True)) == [(0, 0), (0, 1), (1, 1)]
    decision = GateDecision(passed=True, checks=[])
    page = render_report(
        candidate="v1",
        champion=None,
        labels=y,
        candidate_scores=y * 0.9 + 0.05,
        champion_scores=None,
        decision=decision,
        resamples=1,
        seed=0,
    )
    _, svgs = _parse(page)
    frame = next(svgs["roc"].iter(f"{SVG}rect"))
    corner = f"{float(frame.get('x')):.1f},{float(frame.get('y')):.1f}"
    assert corner in _curves(svgs["roc"])[0].get("points").split()


def test_roc_points_are_thinned_along_the_curve_and_keep_its_area() -> None:
    w = _world(100_000)
    fpr, tpr = roc_points(w["y"], w["fair"])
    assert fpr.size <= MAX_ROC_POINTS and (fpr[0], tpr[0], fpr[-1], tpr[-1]) == (0, 0, 1, 1)
    assert (np.diff(fpr) >= 0).all() and (np.diff(tpr) >= 0).all()
    trapezoid = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
    assert trapezoid == pytest.approx(auc(w["y"], w["fair"]), abs=2e-3)


def test_calibration_bins_are_the_ece_bins() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.05, 0.08, 0.55, 0.59, 1.0])
    predicted, observed, rows = calibration_bins(y, p)
    assert rows.tolist() == [2, 2, 1]  # 1.0 falls in the last bin
    assert predicted.tolist() == pytest.approx([0.065, 0.57, 1.0]) and observed.tolist() == [0.5, 0.5, 1.0]


def test_the_gate_table_lists_failed_checks_first_in_text_not_only_colour() -> None:
    w = _world()
    inputs = _inputs(w, w["fair"], w["good"])  # the worse model as candidate
    assert not inputs["decision"].passed
    tags, _ = _parse(render_report(**inputs))
    statuses = [row[0] for row in tags.rows if row]
    failed = [s == "✗ FAILED" for s in statuses]
    assert any(failed) and failed == sorted(failed, reverse=True), statuses
    first = next(c for c in inputs["decision"].checks if c.status == FAILED and c.slice == "all")
    page = render_report(**inputs)
    assert "is REJECTED against champion v1: " in page and "more failed check" in page
    assert tags.rows[1][1:3] == [first.name, "all"]  # tags.rows[0] is the header row


def test_every_value_from_the_data_is_escaped() -> None:
    evil = "<script>alert(1)</script>"
    values = dict(candidate=0.7, champion=0.8, difference=-0.1, lower=-0.2, upper=-0.05, margin=0.01)
    check = Check("auc", f"user={evil}", **values, passed=False, reason=f"worse {evil}", status=FAILED)
    y = np.array([0, 1, 0, 1])
    page = render_report(
        candidate=f"v{evil}",
        champion="v1",
        labels=y,
        candidate_scores=y * 0.5,
        champion_scores=y * 0.6,
        decision=GateDecision(passed=False, checks=[check]),
        resamples=10,
        seed=0,
        candidate_attribution={evil: 0.3},
        champion_attribution={evil: 0.2},
    )
    assert "<script" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 6  # version, slice, reason, feature
    _parse(page)


def test_a_first_model_renders_alone_on_its_own_values() -> None:
    w = _world()
    inputs = _inputs(w, w["good"], None)
    page = render_report(**inputs)
    _, svgs = _parse(page)
    assert [c.get("data-name") for c in _curves(svgs["roc"])] == ["candidate v2"]
    assert len(_curves(svgs["calibration"])) == 1
    assert not any("champion" in ET.tostring(svg, encoding="unicode") for svg in svgs.values())
    assert "first model" in page and "Attribution was not computed" in page
    assert not [e for e in svgs["slices-auc"].iter() if e.get("class") == "margin"]  # no champion margin


def test_write_report_writes_the_page_atomically_locally_and_to_an_object_store(tmp_path: Path) -> None:
    w = _world(5_000)
    inputs = _inputs(w, w["good"], w["fair"])
    page = render_report(**inputs)
    target = tmp_path / "reports" / "v2.html"
    assert write_report(target, **inputs) == str(target)
    assert target.read_text(encoding="utf-8") == page
    assert [p.name for p in target.parent.iterdir()] == ["v2.html"]  # no scratch file left behind
    uri = write_report("memory://artifacts/v2/report.html", **inputs)
    with fsspec.open(uri, "rb") as handle:
        assert handle.read().decode("utf-8") == page


def test_a_100k_row_evaluation_renders_in_seconds_into_a_small_page() -> None:
    w = _world(100_000)
    inputs = _inputs(w, w["good"], w["fair"], candidate_attribution={f"f{i}": i / 40 for i in range(40)})
    start = time.perf_counter()
    page = render_report(**inputs)
    elapsed = time.perf_counter() - start
    size = len(page.encode("utf-8"))
    print(f"\n100k rows: {size / 1000:.0f} kB in {elapsed:.2f} s")
    assert elapsed < 3 and size < 1_000_000
    _, svgs = _parse(page)
    assert all(len(c.get("points").split()) <= MAX_ROC_POINTS for c in _curves(svgs["roc"]))
    assert len(_bars(svgs["attribution"])) == 25  # the 25 largest features, the candidate's only


def test_the_attribution_shift_and_the_decision_notes_are_on_the_page() -> None:
    w = _world(5_000)
    inputs = _inputs(w, w["good"], w["fair"])
    note = "attribution shifted: total variation distance 0.412 >= 0.2 <between> the profiles"
    inputs["decision"] = replace(inputs["decision"], notes=[note])
    page = render_report(
        **inputs,
        candidate_attribution={"item_price": 0.5, "user_id": 0.1},
        champion_attribution={"item_price": 0.1, "user_id": 0.5},
        attribution_rows=2000,
        attribution_shift=0.412,
        attribution_threshold=0.2,
    )
    tags, svgs = _parse(page)
    header = page.split("<main>")[0]
    assert "Note (reported, not gated): attribution shifted" in header and "&lt;between&gt;" in header
    section = page.split('id="attribution"')[1].split("</section>")[0]
    assert "on 2,000 held-out rows, the same for both models" in section
    assert 'class="shifted">' in section and "total variation distance <strong>0.412</strong>" in section
    assert "a large shift (reported, not gated)" in section
    assert len(_bars(svgs["attribution"])) == 4 and page.count("<h2>") == 4
    assert "mean |Shapley value| of the click logit" in ET.tostring(svgs["attribution"], encoding="unicode")
    small = render_report(
        **inputs, candidate_attribution={"item_price": 0.5}, attribution_shift=0.05, attribution_threshold=0.2
    )
    assert "no large shift" in small and 'class="shifted"' not in small
    first = _inputs(w, w["good"], None)
    page = render_report(**first, candidate_attribution={"item_price": 0.5}, attribution_rows=2000)
    assert "No champion's attribution to compare with" in page and "same for both" not in page
