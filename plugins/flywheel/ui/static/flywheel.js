// The Flywheel page: reads api/overview and draws it, the PSI chart as inline SVG. Every URL is relative to
// the page (<base>/flywheel/), so a path prefix in front of Airflow changes nothing; nothing is loaded from
// outside the machine.

const SVG_NS = "http://www.w3.org/2000/svg"; // the SVG namespace: a name, never fetched
const REFRESH_MS = 30000;
const RETRY_MS = 5000;
const HOUR = 3600e3;
const COLORS = 8; // .c0 ... .c7 in flywheel.css
const CHART = { width: 960, height: 320, left: 52, right: 110, top: 14, bottom: 30 };

function html(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function when(iso) {
  if (!iso) return "–";
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
    `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

function number(value, digits = 3) {
  return typeof value === "number" ? value.toFixed(digits) : "–";
}

// Airflow shows this page in a sandboxed frame that may not navigate the top window (its sandbox has no
// allow-top-navigation), so a plain link to a DAG run would open a second Airflow inside the frame. The
// frame is same-origin: ask the UI's router to show the run, as its own back button would.
function openInAirflow(event) {
  if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
  const url = new URL(event.currentTarget.getAttribute("href"), document.baseURI);
  let top = null;
  try {
    if (window.parent !== window && window.parent.location.origin === url.origin) top = window.parent;
  } catch {
    top = null; // not framed by Airflow: the link navigates as any link does
  }
  if (top === null) return;
  event.preventDefault();
  top.history.pushState(null, "", url.pathname + url.search + url.hash);
  top.dispatchEvent(new PopStateEvent("popstate", { state: null }));
}

function runLink(href, text) {
  if (!href) return html("span", {}, text);
  const link = html("a", { href, class: "run" }, text);
  link.addEventListener("click", openInAirflow);
  return link;
}

function badge(text, kind) {
  return html("span", { class: `badge ${kind}` }, text);
}

function showMessage(section, text) {
  const node = document.querySelector(`#${section} .message`);
  node.textContent = text || "";
  node.hidden = !text;
}

function renderFreshness(data) {
  const node = document.getElementById("freshness");
  node.textContent = data.stale ? data.stale : `read ${when(data.as_of)}`;
  node.classList.toggle("warn", Boolean(data.stale));
}

function renderDecision(decision) {
  const body = document.querySelector("#decision .body");
  const parts = [];
  if (!decision.window_end) {
    parts.push(html("p", { class: "message" }, decision.message || "no drift window recorded yet"));
  } else {
    parts.push(
      html("p", { class: "verdict" },
        decision.fire ? badge("retrain", "bad") : badge("no retrain", "good")),
      html("p", {}, `window ending ${when(decision.window_end)}, model ${decision.model}`),
    );
    const fired = Object.entries(decision.fired);
    if (fired.length) {
      const items = fired.map(([feature, psi]) => html("li", {}, `${feature}: PSI ${number(psi)}`));
      parts.push(html("ul", { class: "fired" }, ...items));
    }
    parts.push(html("p", { class: "rule" }, `rule: ${decision.rule}`));
  }
  const request = decision.request;
  parts.push(
    request
      ? html(
          "p",
          {},
          `last retraining request: window ending ${when(request.window_end)} (` +
            `${Object.keys(request.features).join(", ") || "no feature named"}) `,
          runLink(request.run, "detect_drift run"),
        )
      : html("p", {}, "no retraining requested yet"),
  );
  body.replaceChildren(...parts);
}

function renderCanary(canary, deployment) {
  const body = document.querySelector("#canary .body");
  const parts = [];
  if (canary.message) parts.push(html("p", { class: "message" }, canary.message));
  if (canary.champion) parts.push(html("p", {}, "champion ", html("strong", {}, canary.champion)));
  if (canary.canary) {
    const percent = Math.round(canary.weight * 100);
    parts.push(
      html("p", {}, "canary ", html("strong", {}, canary.canary), ` serves ${percent}% of users, ` +
        `step ${canary.step + 1} of ${canary.steps.length} (${canary.steps.join("% → ")}%)`),
      html("progress", { max: "100", value: String(percent), "aria-label": "canary weight" }),
    );
  } else if (canary.champion) {
    parts.push(html("p", {}, "no canary: the champion serves every user"));
  }
  if (deployment.steps.length) {
    const rows = deployment.steps.map((s) =>
      html("tr", {},
        html("td", {}, String(s.step + 1)),
        html("td", {}, `${Math.round(s.share * 100)}%`),
        html("td", {}, badge(s.decision, s.decision === "rollback" ? "bad" : "neutral")),
        html("td", {}, s.reason || ""),
        html("td", {}, runLink(s.run, "run")),
      ));
    parts.push(
      html("p", {}, `rollout ${deployment.steps[0].deployment_id}`),
      html("table", { class: "steps" },
        html("thead", {}, html("tr", {},
          ...["step", "share", "decision", "why", "deploy_model"].map((t) => html("th", {}, t)))),
        html("tbody", {}, ...rows)),
    );
  } else if (deployment.message) {
    parts.push(html("p", { class: "message" }, deployment.message));
  }
  body.replaceChildren(...parts);
}

function niceStep(span) {
  const raw = span / 5;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

function renderChart(drift) {
  const chart = document.getElementById("psi-chart");
  const legend = document.getElementById("psi-legend");
  showMessage("drift", drift.message || (drift.series.length ? "" : "no PSI recorded yet"));
  if (!drift.series.length) {
    chart.replaceChildren();
    legend.replaceChildren();
    return;
  }
  const times = drift.series.flatMap((s) => s.points.map((p) => Date.parse(p[0])));
  let [x0, x1] = [Math.min(...times), Math.max(...times)];
  if (x0 === x1) [x0, x1] = [x0 - HOUR, x1 + HOUR];
  const values = drift.series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null));
  const top = Math.max(drift.thresholds.psi, ...values) * 1.1;
  const { width, height, left, right, bottom } = CHART;
  const x = (t) => left + ((t - x0) / (x1 - x0)) * (width - left - right);
  const y = (v) => CHART.top + (1 - v / top) * (height - CHART.top - bottom);
  const axes = svg("g", { class: "axes" });
  const step = niceStep(top);
  for (let v = 0; v <= top; v += step) {
    axes.append(
      svg("line", { class: "grid", x1: left, x2: width - right, y1: y(v), y2: y(v) }),
      svg("text", { x: left - 6, y: y(v) + 4, "text-anchor": "end" }, v.toFixed(2)),
    );
  }
  // Time ticks on whole hours (UTC), at most about six of them.
  const every = HOUR * ([1, 2, 3, 6, 12, 24, 48, 168].find((h) => (x1 - x0) / (h * HOUR) <= 6) || 336);
  for (let t = Math.ceil(x0 / every) * every; t <= x1; t += every) {
    const label = when(new Date(t).toISOString()).slice(5, 16);
    axes.append(svg("text", { x: x(t), y: height - 8, "text-anchor": "middle" }, label));
  }
  const thresholds = [["retrain", drift.thresholds.psi], ["sustained", drift.thresholds.sustained]];
  for (const [name, value] of thresholds) {
    axes.append(
      svg("line", { class: `threshold ${name}`, x1: left, x2: width - right, y1: y(value), y2: y(value) }),
      svg("text", { class: "threshold-label", x: width - right + 4, y: y(value) + 4 }, `${name} ${value}`),
    );
  }
  const series = drift.series.map((s, i) => {
    const color = `c${i % COLORS}`;
    let d = "";
    let pen = "M";
    const points = [];
    for (const [iso, psi, model] of s.points) {
      if (psi === null) {
        pen = "M"; // a window without data breaks the line
        continue;
      }
      const [px, py] = [x(Date.parse(iso)), y(psi)];
      d += `${pen}${px.toFixed(1)},${py.toFixed(1)} `;
      pen = "L";
      points.push(svg("circle", { class: "point", cx: px.toFixed(1), cy: py.toFixed(1), r: "2.5" },
        svg("title", {}, `${s.feature} · ${when(iso)} · PSI ${number(psi)} · model ${model}`)));
    }
    return svg("g", { class: `series ${color}`, "data-feature": s.feature },
      svg("path", { class: "line", d: d.trim() }), ...points);
  });
  chart.replaceChildren(axes, ...series);
  legend.replaceChildren(...drift.series.map((s, i) =>
    html("li", {}, html("span", { class: `swatch c${i % COLORS}` }), s.feature)));
}

function gateCell(gate) {
  if (!gate) return html("td", {}, badge("not evaluated", "neutral"));
  const kind = { passed: "good", failed: "bad" }[gate.verdict] || "neutral";
  return html("td", {},
    badge(gate.verdict, kind),
    html("span", { class: "detail" }, gate.baseline ? ` vs ${gate.baseline}` : " first model"),
    gate.failed ? html("div", { class: "detail" }, `failed: ${gate.failed}`) : null);
}

function renderVersions(versions) {
  const empty = versions.rows.length ? "" : "no model version registered yet";
  showMessage("versions", versions.message || empty);
  const rows = versions.rows.map((v) => {
    const metrics = Object.entries(v.metrics).map(([k, m]) => `${k} ${m}`).join("\n");
    const runs = v.history.map((h) => html("li", { title: h.reason || "" }, runLink(h.run, h.status)));
    const href = v.gate && v.gate.report;
    const report = href ? html("a", { href, class: "report" }, "report") : "–";
    return html("tr", { "data-version": v.version },
      html("td", {}, html("strong", {}, v.version),
        v.parent ? html("div", { class: "detail" }, `parent ${v.parent}`) : null),
      html("td", {}, badge(v.status, `status-${v.status}`)),
      html("td", {}, when(v.registered)),
      html("td", { title: metrics }, number(v.metrics.val_auc, 4)),
      gateCell(v.gate),
      html("td", {}, report),
      html("td", {}, html("ol", { class: "history" }, ...runs)));
  });
  document.querySelector("#versions-table tbody").replaceChildren(...rows);
}

function render(data) {
  renderFreshness(data);
  renderDecision(data.decision);
  renderCanary(data.canary, data.deployment);
  renderChart(data.drift);
  renderVersions(data.versions);
  document.body.dataset.loaded = "true";
}

function warn(text) {
  const node = document.getElementById("freshness");
  node.textContent = text;
  node.classList.add("warn");
}

async function load() {
  let response;
  try {
    response = await fetch("api/overview", { headers: { Accept: "application/json" }, cache: "no-store" });
  } catch (error) {
    warn(`cannot reach Airflow (${error.message}): retrying`);
    setTimeout(load, RETRY_MS);
    return;
  }
  if (response.status === 401 || response.status === 403) {
    warn("your Airflow login has expired: reload the page to log in again");
    return;
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    warn(body.detail || `the page could not read its data (HTTP ${response.status}): retrying`);
    setTimeout(load, RETRY_MS);
    return;
  }
  render(body);
  setTimeout(load, REFRESH_MS);
}

load();
