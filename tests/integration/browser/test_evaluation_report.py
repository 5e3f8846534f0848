"""The evaluation report in headless Chromium: every plot the page has is visible and drawn, the gate's
table and the models' names are shown, and the page logs nothing, throws nothing and fetches nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from flywheel.config import EvaluationSettings
from flywheel.evaluation.bootstrap import compare_models
from flywheel.evaluation.gate import decide
from flywheel.evaluation.report import STATUS_TEXT, ordered, write_report

# Slow as the other tests of real binaries are (Chromium, like Prometheus, comes from `make system-deps`):
# about 2 s a page. The timeout bounds a browser that never starts.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

#: Per <svg>: its box, its text, and its shapes that the template gives a class (curve, mark, bar,
#: interval; reference and margin lines), each with its box in page pixels. Every <svg> on the page is
#: measured, so a plot added to the template is checked without changing this test.
MEASURE = """() => [...document.querySelectorAll("svg")].map(svg => {
    const box = e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; };
    const kind = e => e.closest("[class]");
    const shapes = [...svg.querySelectorAll("polyline, path, rect, circle, line")]
        .filter(e => kind(e) && svg.contains(kind(e)));
    return {
        id: svg.id,
        box: box(svg),
        shapes: shapes.map(e => ({tag: e.tagName, kind: kind(e).getAttribute("class"), box: box(e)})),
        texts: [...svg.querySelectorAll("text")].map(e => ({text: e.textContent, box: box(e)})),
    };
})"""


#: Shape classes that frame the data rather than show it: a plot of only these is empty.
DECORATION = {"reference", "margin"}


def _world(n: int = 20_000, seed: int = 0) -> dict[str, np.ndarray]:
    """Clicks from a true logit; the candidate sees it through less noise than the champion (as the unit
    tests of the report build it), sliced as the held-out window is, with one category too small to judge."""
    rng = np.random.default_rng(seed)
    logit = rng.normal(-2.0, 1.2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    good, fair = (1 / (1 + np.exp(-(logit + sd * rng.normal(size=n)))) for sd in (0.3, 0.8))
    row = np.arange(n)
    slices = {
        "user_tenure": np.where(row % 2 == 0, "new", "returning"),
        "price_band": np.array(["low", "mid", "high"])[row % 3],
        "item_category": np.where(row < 200, "cat_49", np.where(row % 5 < 2, "cat_00", "cat_01")),
    }
    return {"y": y, "good": good, "fair": fair, "slices": slices}


def _report(folder: Path, *, first_model: bool) -> tuple[Path, dict]:
    """The page for candidate v2 against champion v1 (or v2 alone, the first model), written as the
    evaluation stage writes it."""
    w = _world()
    champion = None if first_model else w["fair"]
    comparisons = compare_models(
        w["y"], w["good"], champion, slices=w["slices"], min_slice_rows=1000, resamples=200
    )
    inputs = dict(
        candidate="v2",
        champion=None if first_model else "v1",
        labels=w["y"],
        candidate_scores=w["good"],
        champion_scores=champion,
        decision=decide(comparisons, EvaluationSettings(resamples=200, min_slice_rows=1000)),
        resamples=200,
        seed=0,
        window=(datetime(2026, 3, 1, 6, tzinfo=UTC), datetime(2026, 3, 1, 12, tzinfo=UTC)),
        candidate_attribution={"price": 0.30, "user_tenure_days": 0.10, "item_category": 0.05},
        champion_attribution=None if first_model else {"price": 0.25, "user_tenure_days": 0.12},
    )
    path = folder / "report.html"
    write_report(path, **inputs)
    return path, inputs


def _area(box: list[float]) -> tuple[float, float]:
    return box[2] - box[0], box[3] - box[1]


def _inside(inner: list[float], outer: list[float], slack: float = 1.0) -> bool:
    return (
        inner[0] >= outer[0] - slack
        and inner[1] >= outer[1] - slack
        and inner[2] <= outer[2] + slack
        and inner[3] <= outer[3] + slack
    )


@pytest.mark.parametrize("first_model", [False, True], ids=["candidate-and-champion", "first-model"])
def test_every_plot_is_visible_and_drawn_and_the_page_is_clean(
    browser_page, tmp_path: Path, first_model: bool
) -> None:
    path, inputs = _report(tmp_path, first_model=first_model)
    page = browser_page.page
    page.goto(path.as_uri(), wait_until="load")

    html = path.read_text(encoding="utf-8")
    plots = page.evaluate(MEASURE)
    # Every <svg> written is one the browser built (none lost to a parse error), and the curves at least.
    assert len(plots) == html.count("<svg") and {"plot-roc", "plot-calibration"} <= {p["id"] for p in plots}
    for index, plot in enumerate(plots):
        name = plot["id"] or f"<svg> number {index + 1}"
        assert page.locator("svg").nth(index).is_visible(), f"{name} is not visible"
        width, height = _area(plot["box"])
        assert width > 100 and height > 50, f"{name} is drawn {width:.0f} x {height:.0f} px"
        drawn = [s for s in plot["shapes"] if max(_area(s["box"])) > 0]
        assert {s["kind"] for s in drawn} - DECORATION, f"{name} draws no data, only {drawn}"
        outside = [s for s in drawn if not _inside(s["box"], plot["box"])]
        assert not outside, f"{name} draws outside its box {plot['box']}: {outside}"
        clipped = [t for t in plot["texts"] if not _inside(t["box"], plot["box"])]
        assert not clipped, f"{name} cuts off text at its edge {plot['box']}: {clipped}"
    no_scroll = page.evaluate("document.documentElement.scrollWidth <= document.documentElement.clientWidth")
    assert no_scroll, "the page scrolls sideways at 1280 px"

    heading = page.locator("h1").inner_text()
    assert "candidate v2" in heading
    if first_model:
        assert "first model" in heading and "champion" not in heading, heading
    else:
        assert "champion v1" in heading, heading
    expected = [
        [STATUS_TEXT.get(c.status, c.status), c.name, c.slice] for c in ordered(inputs["decision"].checks)
    ]
    rows = page.locator("#gate table tbody tr")
    assert rows.count() == len(expected) > 0
    assert [row.locator("td").all_inner_texts()[:3] for row in rows.all()] == expected
    assert rows.first.is_visible()

    browser_page.assert_clean()
