// The dashboard: plain browser JavaScript, no build step. It talks to the gateway's own API with
// the key kept in localStorage (seed 004's `aigw_api_key`), and shows loading, empty and error
// states for every panel.
"use strict";

const KEY = "aigw_api_key";
const DEMO_KEY = "demo-key";
const $ = (sel) => document.querySelector(sel);

function key() { return localStorage.getItem(KEY) || ""; }

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (key()) headers["Authorization"] = `Bearer ${key()}`;
  const response = await fetch(path, Object.assign({}, options, { headers }));
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (_) { body = text; }
  if (!response.ok) {
    const message = body && body.error ? body.error.message : `HTTP ${response.status}`;
    const err = new Error(message);
    err.status = response.status;
    throw err;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child === null || child === undefined ? "" : child);
  return node;
}

function badge(text, cls) { return el("span", { class: `badge ${cls || text}` }, text); }

function setState(id, message, isError) {
  const node = $(id);
  node.textContent = message || "";
  node.className = isError ? "hint error" : "hint";
}

function explain(err) {
  if (err.status === 401) return `${err.message} — enter a valid API key above.`;
  if (err.status === 403) return `${err.message}`;
  return err.message;
}

// --- API key helper ------------------------------------------------------------------------
function initKey() {
  $("#api-key").value = key();
  $("#save-key").addEventListener("click", () => {
    localStorage.setItem(KEY, $("#api-key").value.trim());
    setState("#key-hint", "Key saved.", false);
    refreshAll();
  });
  $("#demo-key").addEventListener("click", () => {
    $("#api-key").value = DEMO_KEY;
    localStorage.setItem(KEY, DEMO_KEY);
    setState("#key-hint", `Demo key "${DEMO_KEY}" saved (start the gateway with API_KEYS=${DEMO_KEY}).`, false);
    refreshAll();
  });
}

// --- Task ------------------------------------------------------------------------------------
function renderDecision(decision) {
  return el("div", {},
    el("p", {}, "Decision: ", badge(decision.decision, decision.decision)),
    el("p", {}, "Reasons: ", (decision.reasons || []).join("; ") || "none"),
    el("p", {}, "Evidence: ", (decision.evidence || []).join(", ") || "none"));
}

function initTask() {
  $("#task-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const out = $("#task-result");
    const button = $("#submit");
    button.disabled = true;
    out.className = "result";
    out.replaceChildren("Running…");
    try {
      const body = await api("/ai/task", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ task: $("#task").value, text: $("#text").value, provider: $("#provider").value }),
      });
      const parts = [
        el("p", {}, "Provider used: ", el("strong", { id: "provider-used" }, body.provider_used),
          ` · confidence ${body.confidence} · ${body.latency_ms} ms`),
        el("p", { id: "result-text" }, body.result),
      ];
      if (body.decision) parts.push(renderDecision(body.decision));
      out.replaceChildren(...parts);
      loadHistory();
      loadProviders();
    } catch (err) {
      out.className = "result error";
      out.replaceChildren(explain(err));
    } finally {
      button.disabled = false;
    }
  });
}

// --- Providers and nodes ---------------------------------------------------------------------
async function loadProviders() {
  try {
    const body = await api("/provider/status");
    const rows = body.providers.map((p) => el("tr", {},
      el("td", {}, p.id), el("td", {}, p.kind), el("td", {}, p.enabled ? "yes" : "no"),
      el("td", {}, p.key_configured ? "yes" : "no"), el("td", {}, badge(p.breaker)),
      el("td", {}, p.latency_ms_p50 ?? "–"), el("td", {}, p.last_error || "")));
    $("#providers tbody").replaceChildren(...rows);
    const select = $("#provider");
    const chosen = select.value;
    select.replaceChildren(el("option", { value: "auto" }, "auto (priority fallback)"),
      ...body.providers.filter((p) => p.enabled).map((p) => el("option", { value: p.id }, p.id)));
    select.value = [...select.options].some((o) => o.value === chosen) ? chosen : "auto";
    const enabled = body.providers.filter((p) => p.enabled).length;
    setState("#providers-state", enabled ? "" : "No provider is enabled: set a provider key or declare providers in the config.", false);
  } catch (err) {
    setState("#providers-state", explain(err), true);
  }
}

async function loadNodes() {
  try {
    const health = await api("/health");
    const nodes = health.nodes || [];
    $("#nodes tbody").replaceChildren(...nodes.map((n) => el("tr", {},
      el("td", {}, n.url), el("td", {}, badge(n.online ? "online" : "offline", n.online ? "closed" : "open")),
      el("td", {}, n.busy ? "yes" : "no"), el("td", {}, n.model || "–"))));
    setState("#nodes-state", nodes.length ? "" : "No GPU nodes registered.", false);
  } catch (err) {
    setState("#nodes-state", explain(err), true);
  }
}

// --- History ---------------------------------------------------------------------------------
// Sessions whose requests are shown (kept across refreshes).
const openSessions = new Set();

function tokens(r) {
  if (r.total_tokens === null || r.total_tokens === undefined) return "–";
  const parts = [];
  if (r.cached_tokens) parts.push(`${r.cached_tokens} cached`);
  if (r.reasoning_tokens) parts.push(`${r.reasoning_tokens} reasoning`);
  return parts.length ? `${r.total_tokens} (${parts.join(", ")})` : String(r.total_tokens);
}

function historyRow(r, cls) {
  return el("tr", cls ? { class: cls } : {},
    el("td", {}, new Date(r.timestamp).toLocaleTimeString()), el("td", {}, r.task || "–"),
    el("td", {}, r.endpoint), el("td", {}, r.provider || "–"),
    el("td", {}, badge(r.status, r.status === "error" ? "error-status" : r.status)),
    el("td", {}, r.latency_ms), el("td", {}, tokens(r)), el("td", {}, r.result_summary || r.error_message || ""));
}

// Rows (newest first) grouped by `session_id`, the most recently active session first.
function bySession(rows) {
  const groups = new Map();
  for (const r of rows) {
    const id = r.session_id || "";
    if (!groups.has(id)) groups.set(id, []);
    groups.get(id).push(r);
  }
  return [...groups.entries()].map(([id, items]) => ({
    id,
    items,
    tokens: items.reduce((n, r) => n + (r.total_tokens || 0), 0),
    cached: items.reduce((n, r) => n + (r.cached_tokens || 0), 0),
    reasoning: items.reduce((n, r) => n + (r.reasoning_tokens || 0), 0),
    first: items[items.length - 1].timestamp,
    last: items[0].timestamp,
  }));
}

function renderSessions(rows) {
  const body = [];
  for (const s of bySession(rows)) {
    const open = openSessions.has(s.id);
    const head = el("tr", { class: open ? "session-row open" : "session-row", "data-session": s.id },
      el("td", {}, s.id || "(no session)"), el("td", { class: "count" }, s.items.length), el("td", {}, s.tokens),
      el("td", {}, s.cached), el("td", {}, s.reasoning),
      el("td", {}, new Date(s.first).toLocaleString()), el("td", {}, new Date(s.last).toLocaleString()));
    head.addEventListener("click", () => {
      if (openSessions.has(s.id)) openSessions.delete(s.id); else openSessions.add(s.id);
      renderSessions(rows);
    });
    body.push(head);
    if (open) {
      for (const r of s.items) {
        body.push(el("tr", { class: "session-request" },
          el("td", {}, new Date(r.timestamp).toLocaleTimeString()),
          el("td", { colspan: "6" }, `${r.endpoint} · ${r.model || "–"} → ${r.provider || "–"} · ${r.status} · ${r.latency_ms} ms · ${tokens(r)}`)));
      }
    }
  }
  $("#sessions tbody").replaceChildren(...body);
}

async function loadHistory() {
  const form = new FormData($("#history-filters"));
  const grouped = $("#group-session").checked;
  // Grouping needs more than one page's worth of requests to show whole sessions.
  const params = new URLSearchParams({ limit: grouped ? "500" : "25" });
  for (const [k, v] of form.entries()) if (v) params.set(k, v);
  try {
    const rows = await api(`/history?${params}`);
    $("#history").hidden = grouped;
    $("#sessions").hidden = !grouped;
    if (grouped) renderSessions(rows);
    else $("#history tbody").replaceChildren(...rows.map((r) => historyRow(r)));
    setState("#history-state", rows.length ? "" : "No requests recorded yet.", false);
  } catch (err) {
    setState("#history-state", explain(err), true);
  }
}

// --- Live charts from /metrics ---------------------------------------------------------------
const series = { rate: [], latency: [] };
let previous = null;

function sumMetric(text, name) {
  let total = 0;
  for (const line of text.split("\n")) {
    if (line.startsWith(name) && (line[name.length] === "{" || line[name.length] === " ")) {
      const value = parseFloat(line.slice(line.lastIndexOf(" ") + 1));
      if (!Number.isNaN(value)) total += value;
    }
  }
  return total;
}

function draw(canvas, values, color) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  if (values.length < 2) return;
  const max = Math.max(...values, 1e-9);
  ctx.strokeStyle = color;
  ctx.lineWidth = 2;
  ctx.beginPath();
  values.forEach((v, i) => {
    const x = (i / (values.length - 1)) * (canvas.width - 10) + 5;
    const y = canvas.height - 5 - (v / max) * (canvas.height - 20);
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  ctx.fillStyle = "#667085";
  ctx.fillText(`max ${max.toFixed(2)}`, 8, 12);
}

async function sampleMetrics() {
  try {
    const response = await fetch("/metrics");
    const text = await response.text();
    const now = {
      t: Date.now() / 1000,
      requests: sumMetric(text, "gateway_http_requests_total"),
      durationSum: sumMetric(text, "gateway_http_request_duration_seconds_sum"),
      durationCount: sumMetric(text, "gateway_http_request_duration_seconds_count"),
    };
    if (previous) {
      const dt = now.t - previous.t;
      const dn = now.durationCount - previous.durationCount;
      series.rate.push((now.requests - previous.requests) / dt);
      series.latency.push(dn > 0 ? ((now.durationSum - previous.durationSum) / dn) * 1000 : 0);
      for (const s of Object.values(series)) if (s.length > 60) s.shift();
      draw($("#rate-chart"), series.rate, "#3538cd");
      draw($("#latency-chart"), series.latency, "#b54708");
      const last = series.rate[series.rate.length - 1];
      setState("#traffic-state", `${last.toFixed(2)} req/s now`, false);
    }
    previous = now;
  } catch (err) {
    setState("#traffic-state", `metrics unavailable: ${err.message}`, true);
  }
}

function refreshAll() { loadProviders(); loadNodes(); loadHistory(); }

initKey();
initTask();
$("#history-filters").addEventListener("submit", (e) => { e.preventDefault(); loadHistory(); });
$("#group-session").addEventListener("change", loadHistory);
refreshAll();
sampleMetrics();
setInterval(sampleMetrics, 2000);
setInterval(refreshAll, 10000);
