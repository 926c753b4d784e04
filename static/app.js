// The dashboard: plain browser JavaScript, no build step. It talks to the gateway's own API with
// the key kept in localStorage (seed 004's `aigw_api_key`), and to the admin API (spend, keys,
// teams, budgets) with the admin token kept beside it (`aigw_admin_token`), sent only there so a
// client key and the admin token can both be in use. Every panel shows loading, empty and error
// states.
"use strict";

const KEY = "aigw_api_key";
const ADMIN = "aigw_admin_token";
const DEMO_KEY = "demo-key";
const $ = (sel) => document.querySelector(sel);

function key() { return localStorage.getItem(KEY) || ""; }
function adminToken() { return localStorage.getItem(ADMIN) || ""; }

async function api(path, options = {}, token = key()) {
  const headers = Object.assign({}, options.headers || {});
  if (token) headers["Authorization"] = `Bearer ${token}`;
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
  $("#admin-token").value = adminToken();
  $("#save-admin").addEventListener("click", () => {
    localStorage.setItem(ADMIN, $("#admin-token").value.trim());
    setState("#admin-hint", "Admin token saved.", false);
    refreshAdmin(true);
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
      el("td", {}, keysCell(p)), el("td", {}, badge(p.breaker)),
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

// "yes"/"no", or for a key pool how many keys it has and which rest (by index and hash prefix).
function keysCell(p) {
  if (!p.keys || !p.keys.length) return p.key_configured ? "yes" : "no";
  const resting = p.keys.filter((k) => k.resting_seconds > 0 || k.resting_models.length);
  const text = `${p.keys.length} keys`;
  if (!resting.length) return text;
  return el("span", { title: resting.map((k) => `#${k.index} ${k.hash}: ${k.resting_seconds > 0
    ? `resting ${Math.ceil(k.resting_seconds)} s` : `resting for ${k.resting_models.map((m) => m.model).join(", ")}`}`).join("\n") },
    `${text}, ${resting.length} resting`);
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

// --- Admin API: spend, virtual keys, teams, budgets --------------------------------------------
function adminApi(path, options = {}) {
  const headers = Object.assign(options.body ? { "content-type": "application/json" } : {}, options.headers || {});
  return api(path, Object.assign({}, options, { headers }), adminToken());
}

// Set when the admin API refused the token: the periodic refresh stops until the token is saved
// again, so a wrong token is not retried every few seconds (the gateway throttles such guesses,
// and would then refuse the right token from this address too for a while).
let adminPaused = false;

function explainAdmin(err) {
  if ([401, 403, 429].includes(err.status)) adminPaused = true;
  if (err.status === 401) return `${err.message} — enter the admin token above.`;
  return err.message;
}

// USD with enough decimals that a cent's fraction still shows.
function usd(v) {
  const n = Number(v) || 0;
  const digits = Math.abs(n) >= 1 || n === 0 ? 2 : Math.abs(n) >= 0.01 ? 4 : 6;
  return `$${n.toFixed(digits)}`;
}

function when(ms) { return ms === null || ms === undefined ? "–" : new Date(ms).toLocaleString(); }
function commaList(text) { return text.split(",").map((s) => s.trim()).filter(Boolean); }

// A destructive action: asks first, then reports in `stateId` and reloads the list either way.
function dangerButton(label, question, stateId, action, reload) {
  const button = el("button", { type: "button", class: "danger" }, label);
  button.addEventListener("click", async () => {
    if (!confirm(question)) return;
    button.disabled = true;
    try {
      setState(stateId, await action(), false);
    } catch (err) {
      setState(stateId, explainAdmin(err), true);
    } finally {
      button.disabled = false;
      reload(false);
    }
  });
  return button;
}

// Fills `tbody` with one row per item of an admin list (`{"data": [...]}`), or says why not.
async function loadAdminList(path, stateId, tbody, emptyText, row, loading) {
  if (loading) setState(stateId, "Loading…", false);
  try {
    const items = (await adminApi(path)).data || [];
    $(tbody).replaceChildren(...items.map(row));
    setState(stateId, items.length ? "" : emptyText, false);
    return items;
  } catch (err) {
    $(tbody).replaceChildren();
    setState(stateId, explainAdmin(err), true);
    return null;
  }
}

// Runs a form's change through the admin API with its button disabled, reporting in `stateId`.
function onAdminSubmit(formId, stateId, send) {
  $(formId).addEventListener("submit", async (event) => {
    event.preventDefault();
    const button = $(`${formId} button[type=submit]`);
    button.disabled = true;
    setState(stateId, "Saving…", false);
    try {
      setState(stateId, await send(new FormData($(formId))), false);
    } catch (err) {
      setState(stateId, explainAdmin(err), true);
    } finally {
      button.disabled = false;
    }
  });
}

// --- Spend -----------------------------------------------------------------------------------
function nextDay(date) {
  const d = new Date(`${date}T00:00:00Z`);
  d.setUTCDate(d.getUTCDate() + 1);
  return d.toISOString().slice(0, 10);
}

// Every UTC day of the answered range with its cost (days without requests cost 0).
function spendDays(answer) {
  const costs = new Map(answer.groups.map((g) => [g.group, g.cost_usd]));
  const days = [];
  let day = answer.since.slice(0, 10);
  const last = answer.until.slice(0, 10);
  while (day <= last && days.length < 400) {
    days.push({ day, cost: costs.get(day) || 0 });
    day = nextDay(day);
  }
  return days;
}

function drawBars(canvas, days) {
  const ctx = canvas.getContext("2d");
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  const priced = days.filter((d) => d.cost > 0);
  canvas.setAttribute("aria-label", `Cost per day: ${priced.map((d) => `${d.day} ${usd(d.cost)}`).join(", ") || "none"}`);
  if (!days.length) return;
  const max = Math.max(...days.map((d) => d.cost), 1e-9);
  const width = (canvas.width - 10) / days.length;
  ctx.fillStyle = "#3538cd";
  days.forEach((d, i) => {
    const h = (d.cost / max) * (canvas.height - 36);
    ctx.fillRect(5 + i * width + width * 0.1, canvas.height - 18 - h, Math.max(width * 0.8, 1), h);
  });
  ctx.fillStyle = "#667085";
  ctx.fillText(`max ${usd(max)}`, 8, 12);
  ctx.fillText(days[0].day, 5, canvas.height - 4);
  const last = days[days.length - 1].day;
  ctx.fillText(last, canvas.width - 5 - ctx.measureText(last).width, canvas.height - 4);
}

function spendQuery(form, groupBy) {
  const params = new URLSearchParams({ group_by: groupBy });
  // The gateway reads a date as a whole UTC day: `since` from its start, `until` to its end.
  for (const field of ["since", "until"]) if (form.get(field)) params.set(field, form.get(field));
  return `/api/v1/spend?${params}`;
}

// Only the latest spend query is drawn: an earlier, slower one must not overwrite newer filters.
let spendQueries = 0;

async function loadSpend(loading) {
  const form = new FormData($("#spend-filters"));
  const groupBy = form.get("group_by");
  const query = ++spendQueries;
  if (loading) setState("#spend-state", "Loading…", false);
  try {
    const [byDay, byGroup] = await Promise.all([adminApi(spendQuery(form, "day")), adminApi(spendQuery(form, groupBy))]);
    if (query !== spendQueries) return;
    const sum = (field) => byDay.groups.reduce((n, g) => n + (g[field] || 0), 0);
    const requests = sum("requests");
    $("#spend-total").replaceChildren(el("strong", { id: "spend-total-usd" }, usd(byDay.total_usd)),
      ` · ${requests} requests · ${sum("input_tokens")} input and ${sum("output_tokens")} output tokens · `,
      `${byDay.since.slice(0, 10)} to ${byDay.until.slice(0, 10)}`);
    drawBars($("#spend-chart"), spendDays(byDay));
    $("#spend-groups .group-head").textContent = groupBy;
    $("#spend-groups tbody").replaceChildren(...byGroup.groups.map((g) => {
      const share = byGroup.total_usd > 0 ? g.cost_usd / byGroup.total_usd : 0;
      return el("tr", { "data-group": g.group ?? "" },
        el("td", {}, g.group ?? "(none)"), el("td", { class: "cost" }, usd(g.cost_usd)),
        el("td", {}, meter(share, `${(share * 100).toFixed(1)}%`)), el("td", { class: "requests" }, g.requests),
        el("td", {}, g.input_tokens), el("td", {}, g.output_tokens));
    }));
    const empty = !requests ? "No requests in this range."
      : byDay.total_usd === 0 ? "No priced requests in this range (requests to models without a price cost nothing here)." : "";
    setState("#spend-state", empty, false);
  } catch (err) {
    if (query !== spendQueries) return;
    $("#spend-total").replaceChildren();
    $("#spend-groups tbody").replaceChildren();
    drawBars($("#spend-chart"), []);
    setState("#spend-state", explainAdmin(err), true);
  }
}

// A horizontal bar for a fraction (over 1 shows full, in the warning colour).
function meter(fraction, label) {
  const cls = fraction >= 1 ? "meter over" : fraction >= 0.8 ? "meter near" : "meter";
  const bar = el("span", { class: cls, role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
    "aria-valuenow": String(Math.round(Math.min(fraction, 1) * 100)) }, el("span", { class: "fill" }));
  bar.firstChild.style.width = `${Math.min(fraction, 1) * 100}%`;
  return el("span", { class: "metered" }, bar, " ", label);
}

// --- Virtual keys ----------------------------------------------------------------------------
function keyRow(k) {
  const active = k.state === "active";
  return el("tr", { "data-key": k.name },
    el("td", {}, k.name), el("td", {}, k.team || "–"), el("td", {}, k.priority || "–"), el("td", {}, k.user || "–"),
    el("td", {}, k.models || "any"), el("td", {}, el("code", {}, `${k.prefix}…`)), el("td", {}, when(k.created_at)),
    el("td", {}, k.expires_at ? when(k.expires_at) : "never"),
    el("td", {}, badge(k.state, active ? "closed" : k.state === "expired" ? "half_open" : "disabled")),
    el("td", { class: "actions" }, active ? dangerButton("Revoke",
      `Revoke key "${k.name}" (${k.prefix}…)? Requests with it are refused from then on.`, "#key-form-state", async () => {
        await adminApi(`/api/v1/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" });
        return `Key "${k.name}" revoked.`;
      }, loadKeys) : ""));
}

function loadKeys(loading) {
  return loadAdminList("/api/v1/keys", "#keys-state", "#keys tbody", "No virtual keys yet: create one above.", keyRow, loading);
}

function showNewKey(created) {
  const box = $("#new-key");
  const done = el("button", { type: "button", class: "secondary" }, "Done");
  done.addEventListener("click", () => { box.hidden = true; box.replaceChildren(); });
  box.replaceChildren(el("p", {}, `Key "${created.name}" — copy it now, it is not shown again:`),
    el("code", { id: "new-key-value" }, created.key), " ", done);
  box.hidden = false;
}

async function createKey(form) {
  const spec = { name: form.get("name").trim() };
  for (const field of ["team", "priority", "user", "models", "expires"]) {
    const value = form.get(field).trim();
    if (value) spec[field] = value;
  }
  const created = await adminApi("/api/v1/keys", { method: "POST", body: JSON.stringify(spec) });
  showNewKey(created);
  $("#key-form").reset();
  loadKeys(false);
  return `Key "${created.name}" created.`;
}

// --- Teams -----------------------------------------------------------------------------------
function editTeam(team) {
  const form = $("#team-form");
  form.elements.name.value = team.name;
  form.elements.rpm.value = team.rpm ?? "";
  form.elements.tpm.value = team.tpm ?? "";
  form.elements.models.value = (team.models || []).join(",");
  form.elements.priority.value = team.priority || "normal";
  form.elements.name.focus();
}

function teamRow(view) {
  const t = view.item;
  const edit = el("button", { type: "button", class: "secondary" }, "Edit");
  edit.addEventListener("click", () => editTeam(t));
  const fromFile = view.source === "config" ? " It comes from the config file: deleting it hides it on every replica." : "";
  return el("tr", { "data-team": view.name },
    el("td", {}, view.name), el("td", {}, t.rpm ?? "–"), el("td", {}, t.tpm ?? "–"),
    el("td", {}, t.models ? t.models.join(", ") : "any"), el("td", {}, t.priority || "normal"),
    el("td", {}, view.source), el("td", {}, when(view.updated_at)),
    el("td", { class: "actions" }, edit, " ", dangerButton("Delete",
      `Delete team "${view.name}"? Its keys keep working without the team's limits.${fromFile}`, "#team-form-state",
      async () => {
        await adminApi(`/api/v1/teams/${encodeURIComponent(view.name)}`, { method: "DELETE" });
        return `Team "${view.name}" deleted.`;
      }, loadTeams)));
}

async function loadTeams(loading) {
  const items = await loadAdminList("/api/v1/teams", "#teams-state", "#teams tbody", "No teams yet: save one above.", teamRow, loading);
  if (items) $("#team-names").replaceChildren(...items.map((t) => el("option", { value: t.name })));
}

async function saveTeam(form) {
  const name = form.get("name").trim();
  const team = { name, priority: form.get("priority") };
  for (const field of ["rpm", "tpm"]) if (form.get(field)) team[field] = Number(form.get(field));
  const models = commaList(form.get("models"));
  if (models.length) team.models = models;
  await adminApi(`/api/v1/teams/${encodeURIComponent(name)}`, { method: "PUT", body: JSON.stringify(team) });
  $("#team-form").reset();
  loadTeams(false);
  return `Team "${name}" saved.`;
}

// --- Budgets ---------------------------------------------------------------------------------
// The same identity as the gateway's `BudgetConfig::id`: `scope[:name]:period`.
function budgetId(b) { return b.name ? `${b.scope}:${b.name}:${b.period}` : `${b.scope}:${b.period}`; }

function budgetRow(view) {
  const b = view.item;
  const s = view.status;
  const what = b.name ? `${b.scope} ${b.name}` : b.scope === "gateway" ? "the whole gateway" : `each ${b.scope}`;
  const extra = [b.timezone, b.alert_at && b.alert_at.length ? `alerts at ${b.alert_at.join(", ")}` : ""].filter(Boolean);
  return el("tr", { "data-budget": view.name },
    el("td", {}, el("strong", {}, what), ` · ${b.period}`, extra.length ? el("div", { class: "hint" }, extra.join(" · ")) : ""),
    el("td", {}, usd(b.limit_usd)),
    el("td", { class: "spent" }, s ? meter(b.limit_usd > 0 ? s.spent_usd / b.limit_usd : s.spent_usd > 0 ? 1 : 0,
      `${usd(s.spent_usd)} spent, ${s.reserved_usd > 0 ? `${usd(s.reserved_usd)} held, ` : ""}${usd(s.remaining_usd)} left`)
      : el("span", { class: "hint" }, b.name || b.scope === "gateway" ? "no status yet" : `each ${b.scope} has its own`)),
    el("td", {}, s && s.period_end ? new Date(s.period_end).toLocaleString() : "–"),
    el("td", {}, view.source),
    el("td", { class: "actions" }, dangerButton("Delete", `Delete budget ${view.name}? Its limit stops applying at once.`,
      "#budget-form-state", async () => {
        await adminApi(`/api/v1/budgets/${encodeURIComponent(view.name)}`, { method: "DELETE" });
        return `Budget ${view.name} deleted.`;
      }, loadBudgets)));
}

function loadBudgets(loading) {
  return loadAdminList("/api/v1/budgets", "#budgets-state", "#budgets tbody", "No budgets yet: set one above.", budgetRow, loading);
}

async function setBudget(form) {
  const budget = { scope: form.get("scope"), limit_usd: Number(form.get("limit_usd")), period: form.get("period") };
  for (const field of ["name", "timezone"]) if (form.get(field).trim()) budget[field] = form.get(field).trim();
  const alerts = commaList(form.get("alert_at")).map(Number);
  if (alerts.length) budget.alert_at = alerts;
  const id = budgetId(budget);
  await adminApi(`/api/v1/budgets/${encodeURIComponent(id)}`, { method: "PUT", body: JSON.stringify(budget) });
  $("#budget-form").reset();
  loadBudgets(false);
  return `Budget ${id} set.`;
}

// `loading` (the user's own actions) shows "Loading…" first; the periodic refresh does not, and
// pauses while the admin token is refused.
function refreshAdmin(loading) {
  if (loading) adminPaused = false; else if (adminPaused) return;
  loadSpend(loading); loadKeys(loading); loadTeams(loading); loadBudgets(loading);
}

function initAdmin() {
  $("#spend-filters").addEventListener("submit", (e) => { e.preventDefault(); loadSpend(true); });
  $("#spend-filters select").addEventListener("change", () => loadSpend(true));
  onAdminSubmit("#key-form", "#key-form-state", createKey);
  onAdminSubmit("#team-form", "#team-form-state", saveTeam);
  onAdminSubmit("#budget-form", "#budget-form-state", setBudget);
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

function refreshAll() { loadProviders(); loadNodes(); loadHistory(); refreshAdmin(false); }

initKey();
initTask();
initAdmin();
$("#history-filters").addEventListener("submit", (e) => { e.preventDefault(); loadHistory(); });
$("#group-session").addEventListener("change", loadHistory);
refreshAll();
sampleMetrics();
setInterval(sampleMetrics, 2000);
setInterval(refreshAll, 10000);
