// Browser test of the dashboard's spend and management views against the real gateway (admin
// token on, SQLite history): each view's error state without the admin token, its loading state
// while the admin API has not answered, its empty state on a fresh gateway; then, through the UI,
// a team, a key in it (shown once) and a budget for the team, each listed; a key for an unknown
// team refused with the gateway's message; two requests with the new key priced by the config
// (`pricing.models`) plus older history rows of known cost (written into the history database as
// the gateway's writer would) shown by day, by key, team and model with since/until filters; the
// budget's spent and remaining; revoking and deleting after a confirmation. Saves
// tests/artifacts/dashboard-admin.png.
//
// Usage: node tests/browser/admin.test.mjs path/to/ai-gateway
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launchBrowser, root, run, startGateway } from "./harness.mjs";

const ADMIN_TOKEN = "browser-test-admin-token-0123456789abcdef";
const DAY = 24 * 3600 * 1000;

function check(condition, message) {
  if (!condition) throw new Error(message);
}

function utcDay(ms) { return new Date(ms).toISOString().slice(0, 10); }

// Rows as the history writer stores them (times in epoch ms), with the cost the gateway would
// have priced them at.
function seedHistory(dir, rows) {
  const script = `
import json, sqlite3, sys, uuid
db = sqlite3.connect(sys.argv[1], timeout=10)
for r in json.loads(sys.stdin.read()):
    db.execute(
        "INSERT INTO ai_requests (id, created_at, request_id, endpoint, model, provider, stream, status,"
        " http_status, latency_ms, prompt_tokens, completion_tokens, total_tokens, attempts, caller, cost_usd, team)"
        " VALUES (?, ?, ?, '/v1/chat/completions', ?, 'mock-llm', 0, 'success', 200, 120, ?, ?, ?, '[]', ?, ?, ?)",
        (str(uuid.uuid4()), r["at"], str(uuid.uuid4()), r["model"], r["input"], r["output"], r["input"] + r["output"],
         r["caller"], r["cost"], r.get("team")))
db.commit()
`;
  execFileSync("python3", ["-c", script, path.join(dir, "history.db")], { input: JSON.stringify(rows) });
}

async function adminGet(base, route) {
  const r = await fetch(`${base}${route}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  check(r.ok, `GET ${route}: HTTP ${r.status}`);
  return r.json();
}

// Waits until a client request with `key` answers `status` (keys reach the gateway's key set
// within `auth.refresh_seconds`).
async function keyAnswers(base, key, status) {
  const deadline = Date.now() + 10000;
  for (;;) {
    const r = await fetch(`${base}/v1/models`, { headers: { authorization: `Bearer ${key}` } });
    if (r.status === status) return;
    check(Date.now() < deadline, `a request with the key answered ${r.status}, not ${status}`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

async function until(condition, message) {
  const deadline = Date.now() + 10000;
  while (!(await condition())) {
    check(Date.now() < deadline, message);
    await new Promise((res) => setTimeout(res, 200));
  }
}

const STATES = ["#spend-state", "#keys-state", "#teams-state", "#budgets-state"];

async function statesAre(page, predicate, what) {
  try {
    await page.waitForFunction(([ids, source]) => {
      const test = new Function("node", `return ${source};`);
      return ids.every((id) => test(document.querySelector(id)));
    }, [STATES, predicate], { timeout: 10000 });
  } catch (e) {
    const seen = await page.evaluate((ids) => ids.map((id) => `${id}: ${document.querySelector(id).className} "${document.querySelector(id).textContent}"`), STATES);
    throw new Error(`the views never showed ${what}:\n  ${seen.join("\n  ")}`);
  }
}

async function submitAndWait(page, form, stateId, expected) {
  await page.click(`${form} button[type=submit]`);
  await page.waitForFunction(([id, text]) => document.querySelector(id).textContent.includes(text) ||
    document.querySelector(id).classList.contains("error"), [stateId, expected]);
  const state = await page.textContent(stateId);
  check(state.includes(expected), `${form}: ${state}`);
}

async function spendShows(page, since, until, groupBy) {
  await page.fill("#spend-filters input[name=since]", since);
  await page.fill("#spend-filters input[name=until]", until);
  await page.selectOption("#spend-filters select[name=group_by]", groupBy);
  await page.click("#spend-filters button[type=submit]");
  await page.waitForFunction((by) => document.querySelector("#spend-state").textContent !== "Loading…" &&
    document.querySelector("#spend-groups .group-head").textContent === by, groupBy);
  return page.evaluate(() => ({
    total: document.querySelector("#spend-total-usd")?.textContent,
    summary: document.querySelector("#spend-total").textContent,
    state: document.querySelector("#spend-state").textContent,
    chart: document.querySelector("#spend-chart").getAttribute("aria-label"),
    groups: [...document.querySelectorAll("#spend-groups tbody tr")].map((tr) =>
      [tr.cells[0].textContent, tr.querySelector(".cost").textContent, tr.querySelector(".requests").textContent]),
    shares: [...document.querySelectorAll("#spend-groups tbody [role=progressbar]")].map((bar) => bar.getAttribute("aria-valuenow")),
  }));
}

function same(actual, expected, what) {
  check(JSON.stringify(actual) === JSON.stringify(expected), `${what}: ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
}

async function main() {
  const { base, dir } = await startGateway([
    "auth:",
    `  admin_token: ${ADMIN_TOKEN}`,
    "  refresh_seconds: 0.5",
    "pricing:",
    "  models:",
    "    - {provider: mock-llm, model: \"*\", input: 1000, output: 1000}",
  ], { API_KEYS: "demo-key" });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1600 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const dialogs = [];
    page.on("dialog", (d) => { dialogs.push(d.message()); d.accept(); });
    await page.goto(`${base}/`);

    // Error: without the admin token every view says it needs one.
    await statesAre(page, "node.classList.contains('error') && node.textContent.includes('admin token')", "the missing-token error");

    // Loading: while the admin API has not answered, each view says so.
    let release;
    const gate = new Promise((r) => { release = r; });
    await page.route(/\/api\/v1\//, async (route) => { await gate; await route.continue(); });
    await page.fill("#admin-token", ADMIN_TOKEN);
    await page.click("#save-admin");
    await statesAre(page, "node.textContent === 'Loading…' && !node.classList.contains('error')", "loading");
    release();
    await page.unrouteAll({ behavior: "wait" });

    // Empty: a fresh gateway has no spend, keys, teams or budgets.
    await statesAre(page, "!node.classList.contains('error') && node.textContent.startsWith('No ')", "the empty states");
    same(await page.evaluate(() => document.querySelectorAll("#keys tbody tr, #teams tbody tr, #budgets tbody tr, #spend-groups tbody tr").length), 0, "rows on a fresh gateway");
    check((await page.textContent("#spend-total-usd")) === "$0.00", "the empty spend total");

    // A team, through the form.
    await page.fill("#team-form input[name=name]", "research");
    await page.fill("#team-form input[name=rpm]", "600");
    await page.fill("#team-form input[name=models]", "mock-model, gpt-x");
    await page.selectOption("#team-form select[name=priority]", "high");
    await submitAndWait(page, "#team-form", "#team-form-state", 'Team "research" saved.');
    const teamRow = '#teams tr[data-team="research"]';
    await page.waitForSelector(teamRow);
    same(await page.$$eval(`${teamRow} td`, (tds) => tds.slice(0, 6).map((td) => td.textContent)),
      ["research", "600", "–", "mock-model, gpt-x", "high", "api"], "the team's row");

    // A key for a team that does not exist is refused, with the gateway's reason.
    await page.fill("#key-form input[name=name]", "stray-key");
    await page.fill("#key-form input[name=team]", "no-such-team");
    await page.click("#key-form button[type=submit]");
    await page.waitForSelector("#key-form-state.error");
    check((await page.textContent("#key-form-state")).includes("team"), `unknown team: ${await page.textContent("#key-form-state")}`);
    check(await page.isHidden("#new-key"), "a refused key is not shown");

    // A key in the team: shown once, then listed.
    await page.fill("#key-form input[name=name]", "alice-key");
    await page.fill("#key-form input[name=team]", "research");
    await page.fill("#key-form input[name=user]", "alice");
    await submitAndWait(page, "#key-form", "#key-form-state", 'Key "alice-key" created.');
    const secret = await page.textContent("#new-key-value");
    const keyRow = '#keys tr[data-key="alice-key"]';
    await page.waitForSelector(keyRow);
    same(await page.$$eval(`${keyRow} td`, (tds) => [0, 1, 3, 8].map((i) => tds[i].textContent)),
      ["alice-key", "research", "alice", "active"], "the key's row");
    check(!(await page.textContent("#keys")).includes(secret), "the key itself is listed");
    const listed = (await adminGet(base, "/api/v1/keys")).data.find((k) => k.name === "alice-key");
    check(listed && secret.startsWith(listed.prefix), `the key shown is not the one created: ${JSON.stringify(listed)}`);
    // It works as a client key once the gateway has loaded it.
    await keyAnswers(base, secret, 200);
    await page.click("#new-key button");
    check(await page.isHidden("#new-key"), "the new key stays on screen after Done");

    // A budget for the team.
    await page.selectOption("#budget-form select[name=scope]", "team");
    await page.fill("#budget-form input[name=name]", "research");
    await page.fill("#budget-form input[name=limit_usd]", "2");
    await page.selectOption("#budget-form select[name=period]", "monthly");
    await page.fill("#budget-form input[name=alert_at]", "0.5, 1");
    await submitAndWait(page, "#budget-form", "#budget-form-state", "Budget team:research:monthly set.");
    const budgetRow = '#budgets tr[data-budget="team:research:monthly"]';
    await page.waitForSelector(budgetRow);
    const budgetText = await page.textContent(budgetRow);
    check(budgetText.includes("team research") && budgetText.includes("$2.00") && budgetText.includes("alerts at 0.5, 1"),
      `the budget's row: ${budgetText}`);

    // Two requests with the new key, priced by the config at $1000 per million tokens each way:
    // the mock upstream reports 5 input and 3 output tokens, so each costs $0.008.
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
        // A bound on the output keeps the budget's worst-case hold within its $2.
        body: JSON.stringify({ model: "mock-model", max_tokens: 16, messages: [{ role: "user", content: "hi" }] }),
      });
      check(r.ok, `a chat with the new key: HTTP ${r.status} ${r.ok ? "" : await r.text()}`);
      check(r.headers.get("x-ai-gateway-cost-usd") !== null, "a priced request has no cost header");
    }
    await until(async () => (await adminGet(base, "/api/v1/spend?group_by=key")).groups
      .some((g) => g.group === "alice-key" && g.requests === 2), "the priced requests never reached history");

    // Spend of known cost besides: three days in range and one older row.
    const now = Date.now();
    const today = utcDay(now);
    const todayStart = Date.parse(`${today}T00:00:00Z`);
    const at = (days) => (days === 0 ? Math.max(todayStart, now - 60000) : todayStart - days * DAY + 3600000);
    seedHistory(dir, [
      { at: at(2), model: "mock-model", input: 100, output: 50, caller: listed.id, team: "research", cost: 0.25 },
      { at: at(1), model: "gpt-x", input: 200, output: 100, caller: listed.id, team: "research", cost: 0.5 },
      { at: at(0), model: "mock-model", input: 10, output: 5, caller: "ops-bot", cost: 1.0 },
      { at: at(10), model: "old-model", input: 1, output: 1, caller: "ops-bot", cost: 100.0 },
    ]);
    // In range: $0.25 + $0.50 + $1.00 seeded and 2 × $0.008 requested = $1.766.
    let spend = await spendShows(page, utcDay(at(2)), today, "key");
    same(spend.total, "$1.77", "the total over three days");
    check(spend.summary.includes("5 requests") && spend.summary.includes("320 input and 161 output tokens"), `the summary: ${spend.summary}`);
    same(spend.groups, [["ops-bot", "$1.00", "1"], ["alice-key", "$0.7660", "4"]], "spend by key");
    same(spend.shares, ["57", "43"], "each key's share of the spend");
    same(spend.chart, `Cost per day: ${utcDay(at(2))} $0.2500, ${utcDay(at(1))} $0.5000, ${today} $1.02`, "the chart");
    same(spend.state, "", "the state with data");
    spend = await spendShows(page, utcDay(at(2)), today, "team");
    same(spend.groups, [["(none)", "$1.00", "1"], ["research", "$0.7660", "4"]], "spend by team");
    spend = await spendShows(page, utcDay(at(2)), today, "model");
    same(spend.groups, [["mock-model", "$1.27", "4"], ["gpt-x", "$0.5000", "1"]], "spend by model");
    spend = await spendShows(page, utcDay(at(11)), utcDay(at(9)), "model");
    same([spend.total, spend.groups], ["$100.00", [["old-model", "$100.00", "1"]]], "an older range");
    spend = await spendShows(page, "2020-01-01", "2020-01-31", "key");
    same([spend.total, spend.groups, spend.state], ["$0.00", [], "No requests in this range."], "a range without requests");
    await spendShows(page, utcDay(at(2)), today, "key");
    // The team's budget has the two requests' $0.016 spent of its $2: drawn as a bar.
    await until(async () => (await adminGet(base, "/api/v1/budgets")).data
      .find((b) => b.name === "team:research:monthly").status?.spent_usd > 0.0159, "the budget never counted the requests");
    await page.click("#save-admin");
    await page.waitForFunction((row) => document.querySelector(`${row} .spent`)?.textContent.includes("$0.0160 spent"), budgetRow);
    same(await page.textContent(`${budgetRow} .spent`), " $0.0160 spent, $1.98 left", "the budget's status");
    same(await page.getAttribute(`${budgetRow} [role=progressbar]`, "aria-valuenow"), "1", "the budget's bar");
    const artifacts = path.join(root, "tests/artifacts");
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "dashboard-admin.png"), fullPage: true });

    // Revoke the key and delete the budget and the team, each after a confirmation.
    dialogs.length = 0;
    await page.click(`${keyRow} button.danger`);
    await page.waitForFunction((row) => document.querySelector(`${row} td:nth-child(9)`).textContent === "revoked", keyRow);
    check(dialogs.length === 1 && dialogs[0].includes("alice-key"), `revoke asked: ${dialogs}`);
    await keyAnswers(base, secret, 401);
    await page.click(`${budgetRow} button.danger`);
    await page.waitForSelector(budgetRow, { state: "detached" });
    await page.waitForFunction(() => document.querySelector("#budgets-state").textContent === "No budgets yet: set one above.");
    check(dialogs.length === 2 && dialogs[1].includes("team:research:monthly"), `delete budget asked: ${dialogs}`);
    // Dismissing the confirmation keeps the team.
    page.removeAllListeners("dialog");
    page.once("dialog", (d) => d.dismiss());
    await page.click(`${teamRow} button.danger`);
    await new Promise((r) => setTimeout(r, 500));
    check((await adminGet(base, "/api/v1/teams")).data.some((t) => t.name === "research"), "a dismissed delete removed the team");
    page.once("dialog", (d) => d.accept());
    await page.click(`${teamRow} button.danger`);
    await page.waitForSelector(teamRow, { state: "detached" });
    check(!(await adminGet(base, "/api/v1/teams")).data.some((t) => t.name === "research"), "the team survived its deletion");
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    console.log("dashboard admin browser test passed: spend $1.766 over three days by key, team and model; team, key and budget created, listed and removed");
  } finally {
    await browser.close();
  }
}

run("dashboard admin browser test", main);
