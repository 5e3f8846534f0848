"""What ``make demo`` found: progress lines with wall time per stage while it runs, then a summary table,
``summary.json`` and a self-contained HTML page with plots (inline SVG, no script, nothing fetched).

The figures come from the warehouse and the registry the loop wrote, never from the demo's own bookkeeping:
models are scored on held-out hours (AUC, and CTR@5 by replaying the logged requests), PSI per feature from
``monitoring.feature_drift`` (with the detection delay: the first window over the drift alert's level), the
retraining requests from ``monitoring.retrain_requests``.
"""

from __future__ import annotations

import html
import json
import math
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from flywheel.config import DriftRule, Settings
from flywheel.events import naive_utc
from flywheel.warehouse import open_warehouse
from flywheel.warehouse.templates import render_sql

SQL_DIR = Path(__file__).parent / "sql"
#: PSI at which the FlywheelFeatureDrift alert fires (rules.yml is held to the rule's default).
ALERT_PSI = DriftRule.psi_threshold
#: The replayed ranking cut-off the summary reports (the gate reports 1, 3 and 5).
CTR_AT = 5
#: Colour per series, in order; blue and orange stay apart for the common colour blindnesses.
PALETTE = ("#1f6fb4", "#d95f02", "#2e7d32", "#7b3294", "#b3261e", "#008080", "#8c6d31", "#555555")


@dataclass
class Progress:
    """Prints what the demo is doing with the time since it started, and records wall time per stage."""

    started: float = field(default_factory=time.monotonic)
    stages: list[dict[str, Any]] = field(default_factory=list)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, message: str) -> None:
        minutes, seconds = divmod(int(self.elapsed()), 60)
        print(f"[flywheel demo {minutes:02d}:{seconds:02d}] {message}", flush=True)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """A named stage: announced, timed, and recorded as done or failed."""
        self.say(f"== {name}")
        began = time.monotonic()
        entry = {"stage": name, "seconds": None, "ok": False}
        self.stages.append(entry)
        try:
            yield
            entry["ok"] = True
        finally:
            entry["seconds"] = round(time.monotonic() - began, 1)
            self.say(f"   {name}: {'done' if entry['ok'] else 'FAILED'} in {entry['seconds']:.0f}s")


def model_scores(
    settings: Settings, models: Mapping[str, str], windows: Mapping[str, tuple[datetime, datetime]]
) -> list[dict[str, Any]]:
    """AUC and replayed CTR@5 of each registered model (label -> version) on each window (label -> hours),
    all models on the same impressions of a window."""
    from flywheel.evaluation.heldout import load_held_out, requests_for_replay
    from flywheel.evaluation.metrics import auc
    from flywheel.evaluation.ranking import per_request
    from flywheel.evaluation.scoring import score_version

    rows = []
    for window, (start, end) in windows.items():
        frame = load_held_out(start, end, settings)
        labels = frame["label"].to_numpy()
        codes, clicked, order_value = requests_for_replay(frame)
        requests = int(codes.max()) + 1
        for model, version in models.items():
            scores = score_version(version, frame, settings)
            top = per_request(codes, requests, scores, clicked, order_value, ks=(CTR_AT,))
            rows.append(
                {
                    "model": model,
                    "version": version,
                    "window": window,
                    "start": start.isoformat(),
                    "end": end.isoformat(),
                    "impressions": len(frame),
                    "requests": requests,
                    "auc": float(auc(labels, scores)),
                    f"ctr_at_{CTR_AT}": float(top[f"clicks@{CTR_AT}"].sum() / top[f"slots@{CTR_AT}"].sum()),
                }
            )
    return rows


def drift_findings(settings: Settings, start: datetime, onset: datetime) -> dict[str, Any]:
    """PSI per feature per hourly window (hours since ``start``), each feature's peak after ``onset``, the
    detection delay (hours from the onset to the end of the first window with a PSI at or over the
    FlywheelFeatureDrift alert's level, the rule's default single-window threshold), and the retraining
    requests with the request delay (hours from the onset to the end of the first window that asked)."""
    warehouse = open_warehouse(settings.warehouse_url)
    series: dict[str, list[tuple[float, float]]] = {}
    if warehouse.table_exists("monitoring.feature_drift"):
        for row in warehouse.read_arrow(render_sql(SQL_DIR / "demo_feature_psi.sql")).to_pylist():
            hour = (naive_utc(row["window_end"]) - start).total_seconds() / 3600
            series.setdefault(row["feature"], []).append((hour, float(row["psi"])))
    onset_hour = (onset - start).total_seconds() / 3600
    peaks = {}
    for feature, points in sorted(series.items()):
        after = [p for p in points if p[0] > onset_hour]
        if after:
            hour, psi = max(after, key=lambda p: p[1])
            peaks[feature] = {"psi": psi, "window_end_hour": hour}
    requests = []
    if warehouse.table_exists("monitoring.retrain_requests"):
        for row in warehouse.read_arrow(render_sql(SQL_DIR / "demo_retrain_requests.sql")).to_pylist():
            end = naive_utc(row["window_end"])
            features = row["features"]
            requests.append(
                {
                    "window_end": end.isoformat(),
                    "hours_after_onset": (end - onset).total_seconds() / 3600,
                    "features": json.loads(features) if isinstance(features, str) else features,
                    "run_id": row["run_id"],
                }
            )
    after_onset = [r for r in requests if r["hours_after_onset"] > 0]
    alerts = sorted(
        hour for points in series.values() for hour, psi in points if hour > onset_hour and psi >= ALERT_PSI
    )
    return {
        "onset_hour": onset_hour,
        "alert_psi": ALERT_PSI,
        "psi": {f: [[h, round(v, 5)] for h, v in points] for f, points in sorted(series.items())},
        "psi_peaks": peaks,
        "retrain_requests": requests,
        "detection_delay_hours": alerts[0] - onset_hour if alerts else None,
        "request_delay_hours": after_onset[0]["hours_after_onset"] if after_onset else None,
    }


def canary_steps(settings: Settings, versions: Sequence[str]) -> list[dict[str, Any]]:
    """Every rollout step the registry recorded for ``versions``: share of traffic, decision and why."""
    from flywheel.registry import deployments

    warehouse = open_warehouse(settings.warehouse_url)
    if not warehouse.table_exists("registry.deployments"):
        return []
    steps = [step for step in deployments(None, warehouse) if step.version in set(versions)]
    return [
        {
            "version": step.version,
            "step": step.step,
            "traffic_share": step.traffic_share,
            "decision": step.decision,
            "reason": step.reason,
            "run_id": step.run_id,
            "decided_at": step.decided_at.isoformat() if step.decided_at else None,
        }
        for step in steps
    ]


def ctr_text(row: Mapping[str, Any]) -> str:
    """``0.1234 +- 0.0021 (12,345 shown)``: a served CTR with its standard error."""
    return f"{row['ctr']:.4f} +- {row['ctr_se']:.4f} ({row['impressions']:,} shown)"


def serving_lines(summary: Mapping[str, Any]) -> list[str]:
    """The deployments, the canary's steps and what the live users were served."""
    lines = []
    for deployed in summary.get("deployments") or []:
        how = f"canary beside {deployed['champion']}" if deployed.get("champion") else "first model"
        lines.append(f"deploy_model {deployed['version']} ({how}): run {deployed['state']}")
    for step in summary.get("canary_steps") or []:
        reason = f": {step['reason']}" if step.get("reason") else ""
        lines.append(
            f"  {step['version']} step {step['step']} at {100 * step['traffic_share']:.0f}% of users: "
            f"{step['decision']}{reason}"
        )
    traffic = summary.get("traffic") or {}
    if traffic.get("versions"):
        served = ", ".join(f"{version} {row['requests']:,}" for version, row in traffic["versions"].items())
        lines.append(
            f"live users: {traffic['requests']:,} requests in {traffic['seconds']:.0f} s, "
            f"{traffic['failures']} failed, p99 {_number(traffic.get('p99_ms'), 0)} ms; served by {served}"
        )
    elif traffic.get("error"):
        lines.append(f"live users: {traffic['error']}")
    return lines


def _number(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    return f"{value:.{digits}f}"


def detection_lines(summary: Mapping[str, Any]) -> list[str]:
    """When the drift was seen (the alert's level crossed) and when the rule asked for retraining."""
    drift = summary.get("drift") or {}
    seen, asked = drift.get("detection_delay_hours"), drift.get("request_delay_hours")
    level = drift.get("alert_psi", ALERT_PSI)
    lines = [
        f"detection delay: {seen:.0f} simulated hour(s) from the onset to the first window with PSI >= "
        f"{level:g}"
        if seen is not None
        else f"detection delay: no window after the onset reached PSI {level:g}"
    ]
    rule = f" ({summary['drift_rule']})" if summary.get("drift_rule") else ""
    lines.append(
        f"retraining requested {asked:.0f} simulated hour(s) after the onset{rule}"
        if asked is not None
        else f"no retraining request after the onset{rule}"
    )
    return lines


def summary_lines(summary: Mapping[str, Any]) -> list[str]:
    """The table the demo prints at the end."""
    ctr = f"ctr_at_{CTR_AT}"
    lines = ["", "flywheel demo: summary", ""]
    scores = summary.get("scores") or []
    if scores:
        lines.append(f"  {'model':<16} {'held-out hours':<40} {'AUC':>7} {'CTR@' + str(CTR_AT):>7}")
        for row in scores:
            window = f"{row['window']} [{row['start'][5:13]}, {row['end'][5:13]})"
            lines.append(f"  {row['model']:<16} {window:<40} {_number(row['auc']):>7} {_number(row[ctr]):>7}")
        for line in summary.get("comparison_lines", []):
            lines.append(f"  {line}")
        lines.append("")
    drift = summary.get("drift") or {}
    if drift.get("psi_peaks"):
        lines.append("  PSI peak per feature after the onset (hour of the window's end):")
        for feature, peak in sorted(drift["psi_peaks"].items(), key=lambda kv: -kv[1]["psi"]):
            lines.append(f"    {feature:<28} {peak['psi']:>7.3f}  (hour {peak['window_end_hour']:.0f})")
    lines += [f"  {line}" for line in detection_lines(summary)]
    for verdict in summary.get("verdicts", []):
        against = f"against {verdict['baseline']}" if verdict.get("baseline") else "as the first model"
        failed = f" (failed: {', '.join(verdict['failed'])})" if verdict.get("failed") else ""
        lines.append(f"  gate: {verdict['version']} {verdict['status']} {against}{failed}")
    lines += [f"  {line}" for line in retrain_lines(summary)]
    lines += [f"  {line}" for line in serving_lines(summary)]
    lines.append("")
    lines.append("  wall time per stage:")
    for stage in summary.get("stages", []):
        state = "" if stage["ok"] else "  FAILED"
        lines.append(f"    {stage['stage']:<64} {stage['seconds'] or 0:>6.0f} s{state}")
    lines.append(f"    {'total':<64} {summary.get('seconds', 0):>6.0f} s")
    lines.append("")
    lines.append(f"  loop closed: {'yes' if summary.get('closed') else 'NO'} ({summary.get('outcome', '')})")
    return lines


def retrain_lines(summary: Mapping[str, Any]) -> list[str]:
    """One line per retraining the drift requested: when, on which hours, from which model, the verdict."""
    lines = []
    for r in summary.get("retrains", []):
        start, end = (str(r.get(k) or "?")[:13].replace("T", " ") for k in ("window_start", "window_end"))
        warm = f"fine-tuned from {r['warm_start_from']}" if r.get("warm_start_from") else "cold search"
        lines.append(
            f"retrain requested at hour {r['hour']}: {r['version']} on [{start}, {end}) ({warm}), "
            f"validation AUC {_number(r.get('val_auc'))}: {r['status']}"
        )
    return lines


# --- the HTML page --------------------------------------------------------------------------------------


def _text(x: float, y: float, label: object, anchor: str = "start") -> str:
    return (
        f'<text x="{x:.1f}" y="{y:.1f}" class="tick" text-anchor="{anchor}">{html.escape(str(label))}</text>'
    )


def _svg_lines(
    series: Mapping[str, Sequence[Sequence[float]]],
    *,
    title: str,
    xlabel: str,
    rules: Sequence[tuple[float, str]] = (),
    marks: Sequence[tuple[float, str]] = (),
    width: int = 760,
    height: int = 320,
) -> str:
    """Lines per series over x, with horizontal rules (y, label) and vertical marks (x, label)."""
    left, right, top, bottom = 52, 170, 30, 40
    points = [p for s in series.values() for p in s]
    if not points:
        return f"<p>{html.escape(title)}: nothing recorded.</p>"
    xs = [p[0] for p in points] + [m[0] for m in marks]
    x0, x1 = min(xs), max(xs)
    y1 = max([p[1] for p in points] + [r[0] for r in rules]) * 1.1 or 1.0
    x1 = x1 if x1 > x0 else x0 + 1

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (width - left - right)

    def py(y: float) -> float:
        return height - bottom - y / y1 * (height - top - bottom)

    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    out.append(f'<text x="{left}" y="18" class="title">{html.escape(title)}</text>')
    out.append(
        f'<line x1="{left}" y1="{py(0):.1f}" x2="{width - right}" y2="{py(0):.1f}" class="axis"/>'
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{py(0):.1f}" class="axis"/>'
    )
    for k in range(5):
        y = y1 * k / 4
        out.append(_text(left - 6, py(y) + 4, f"{y:.2f}", "end"))
    step = max(1, math.ceil((x1 - x0) / 6))  # whole hours, no label twice
    for x in range(math.ceil(x0), math.floor(x1) + 1, step):
        out.append(_text(px(x), height - bottom + 16, x, "middle"))
    out.append(_text((left + width - right) / 2, height - 6, xlabel, "middle"))
    for y, label in rules:
        out.append(
            f'<line x1="{left}" y1="{py(y):.1f}" x2="{width - right}" y2="{py(y):.1f}" class="rule"/>'
            + _text(width - right + 4, py(y) + 4, label)
        )
    for x, label in marks:
        out.append(
            f'<line x1="{px(x):.1f}" y1="{top}" x2="{px(x):.1f}" y2="{py(0):.1f}" class="mark"/>'
            + _text(px(x) + 4, top + 10, label)
        )
    for index, (name, pts) in enumerate(series.items()):
        colour = PALETTE[index % len(PALETTE)]
        path = " ".join(f"{'M' if i == 0 else 'L'}{px(x):.1f},{py(y):.1f}" for i, (x, y) in enumerate(pts))
        out.append(f'<path d="{path}" fill="none" stroke="{colour}" stroke-width="1.6">')
        out.append(f"<title>{html.escape(name)}</title></path>")
        ly = top + 14 * index + 6
        out.append(
            f'<rect x="{width - right + 10}" y="{ly - 8}" width="10" height="10" fill="{colour}"/>'
            f'<text x="{width - right + 24}" y="{ly + 1}" class="tick">{html.escape(name)}</text>'
        )
    out.append("</svg>")
    return "".join(out)


def _svg_bars(rows: Sequence[tuple[str, float | None]], *, title: str, unit: str, width: int = 760) -> str:
    """Horizontal bars, one per (label, value); a missing value is drawn as a dash."""
    left, bar, gap = 390, 18, 8
    height = 30 + len(rows) * (bar + gap)
    values = [v for _, v in rows if v is not None and math.isfinite(v)]
    most = max(values) if values else 1.0
    out = [f'<svg width="{width}" height="{height}" role="img" aria-label="{html.escape(title)}">']
    out.append(f'<text x="0" y="16" class="title">{html.escape(title)}</text>')
    for index, (label, value) in enumerate(rows):
        y = 28 + index * (bar + gap)
        out.append(
            f'<text x="{left - 8}" y="{y + 13}" class="tick" text-anchor="end">{html.escape(label)}</text>'
        )
        if value is None or not math.isfinite(value):
            out.append(f'<text x="{left}" y="{y + 13}" class="tick">-</text>')
            continue
        length = max(1.0, value / most * (width - left - 90))
        colour = PALETTE[index % len(PALETTE)]
        out.append(
            f'<rect x="{left}" y="{y}" width="{length:.1f}" height="{bar}" fill="{colour}"/>'
            + _text(left + length + 6, y + 13, f"{value:.4g} {unit}")
        )
    out.append("</svg>")
    return "".join(out)


_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
h1 { font-size: 22px; } h2 { font-size: 17px; margin-top: 28px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { padding: 3px 10px; border-bottom: 1px solid #ddd; }
th { text-align: left; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.title { font-weight: 600; font-size: 13px; } .tick { font-size: 11px; fill: #444; }
.axis { stroke: #888; } .rule { stroke: #b3261e; stroke-dasharray: 5 4; }
.mark { stroke: #555; stroke-dasharray: 2 3; }
.closed { color: #2e7d32; font-weight: 600; } .open { color: #b3261e; font-weight: 600; }
"""


def render_html(summary: Mapping[str, Any]) -> str:
    """The demo's page: the outcome, the models' scores, PSI over time, the gate's verdicts, stage times."""
    e = html.escape
    ctr = f"ctr_at_{CTR_AT}"
    drift = summary.get("drift") or {}
    parts = [
        "<!doctype html><html lang=en><head><meta charset=utf-8>",
        f"<title>flywheel demo {e(summary.get('finished_at', ''))}</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>flywheel demo</h1>",
        f"<p class={'closed' if summary.get('closed') else 'open'}>loop closed: "
        f"{'yes' if summary.get('closed') else 'no'} — {e(summary.get('outcome', ''))}</p>",
        f"<p>{e(summary.get('world_line', ''))}</p>",
        "<h2>Models on held-out hours</h2><table><tr><th>model</th><th>window</th>"
        f"<th>impressions</th><th>AUC</th><th>CTR@{CTR_AT}</th></tr>",
    ]
    for row in summary.get("scores") or []:
        parts.append(
            f"<tr><td>{e(row['model'])}</td><td>{e(row['window'])} [{e(row['start'])}, {e(row['end'])})</td>"
            f"<td class=n>{row['impressions']:,}</td><td class=n>{_number(row['auc'])}</td>"
            f"<td class=n>{_number(row[ctr])}</td></tr>"
        )
    parts.append("</table>")
    parts += [f"<p>{e(line)}</p>" for line in summary.get("comparison_lines", [])]
    bars = [(f"{r['model']} · {r['window']}", r["auc"]) for r in summary.get("scores") or []]
    if bars:
        parts.append(_svg_bars(bars, title="AUC on held-out hours", unit=""))
        ctr_bars = [(f"{r['model']} · {r['window']}", r[ctr]) for r in summary["scores"]]
        parts.append(_svg_bars(ctr_bars, title=f"CTR@{CTR_AT} of the replayed rankings", unit=""))
    parts.append("<h2>Drift</h2>")
    marks = [(drift["onset_hour"], "onset")] if drift.get("onset_hour") is not None else []
    marks += [
        (r["hours_after_onset"] + drift.get("onset_hour", 0), "request")
        for r in drift.get("retrain_requests", [])[:1]
    ]
    rules = [(drift.get("alert_psi", ALERT_PSI), "drift alert")]
    parts.append(
        _svg_lines(
            drift.get("psi") or {},
            title="PSI per feature, hourly windows",
            xlabel="simulated hour",
            rules=rules,
            marks=marks,
        )
    )
    parts += [f"<p>{e(line[0].upper() + line[1:])}.</p>" for line in detection_lines(summary)]
    parts.append("<h2>The gate</h2><ul>")
    for verdict in summary.get("verdicts", []):
        against = f"against {verdict['baseline']}" if verdict.get("baseline") else "as the first model"
        failed = f" (failed: {', '.join(verdict['failed'])})" if verdict.get("failed") else ""
        report = verdict.get("report")
        link = f' — <a href="{e(report)}">report</a>' if report else ""
        parts.append(f"<li>{e(verdict['version'])} {e(verdict['status'])} {e(against)}{e(failed)}{link}</li>")
    parts.append("</ul>")
    if summary.get("retrains"):
        parts.append("<h2>Retraining</h2><ul>")
        parts += [f"<li>{e(line)}</li>" for line in retrain_lines(summary)]
        parts.append("</ul>")
    if summary.get("deployments"):
        parts.append("<h2>Deployment and the canary</h2><ul>")
        parts += [f"<li>{e(line.strip())}</li>" for line in serving_lines(summary)]
        parts.append("</ul>")
        served = (summary.get("traffic") or {}).get("versions") or {}
        bars = [(f"{version} served CTR", row["ctr"]) for version, row in served.items()]
        if bars:
            parts.append(
                _svg_bars(bars, title="CTR served to the live users (clicks per shown item)", unit="")
            )
    parts.append("<h2>Wall time per stage</h2>")
    parts.append(
        _svg_bars([(s["stage"], s["seconds"]) for s in summary.get("stages", [])], title="seconds", unit="s")
    )
    parts.append("</body></html>")
    return "\n".join(parts)


def write_outputs(summary: Mapping[str, Any], folder: Path) -> tuple[Path, Path]:
    """``summary.json`` and ``report.html`` in ``folder`` (written whole, then renamed into place)."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in (
        ("summary.json", json.dumps(summary, indent=2, default=str)),
        ("report.html", render_html(summary)),
    ):
        partial = folder / f".{name}.tmp"
        partial.write_text(text)
        partial.replace(folder / name)
        written.append(folder / name)
    return written[0], written[1]
