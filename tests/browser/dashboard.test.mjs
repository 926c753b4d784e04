// Browser test of the dashboard, as a user would use it: start a mock OpenAI upstream and the real
// gateway binary (auth on, key `demo-key`), open http://127.0.0.1:PORT/ in headless Chromium, enter
// the key with the demo-key helper, submit an invoice_check, and check the decision, the provider
// used and the new history row; then group the history by agent session and expand one. Saves a
// screenshot to tests/artifacts/dashboard.png.
//
// Usage: node tests/browser/dashboard.test.mjs path/to/ai-gateway
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, "../..");
const binary = path.resolve(process.argv[2] || path.join(root, "target/debug/ai-gateway"));
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

async function waitFor(url, child, seconds = 30) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}`);
    try {
      const r = await fetch(url);
      if (r.ok) return;
    } catch (_) { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} never answered`);
}

const children = [];
function start(cmd, args, env) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  return child;
}

async function main() {
  const mockPort = await freePort();
  const gatewayPort = await freePort();
  const mock = start("python3", [path.join(root, "tests/e2e/mock_openai.py"), "--port", String(mockPort), "--name", "mock-llm"], {});
  await waitFor(`http://127.0.0.1:${mockPort}/v1/models`, mock);
  const dir = mkdtempSync(path.join(os.tmpdir(), "aigw-browser-"));
  const config = path.join(dir, "gateway.yaml");
  writeFileSync(config, [
    `listen: 127.0.0.1:${gatewayPort}`,
    `database_url: sqlite://${dir}/history.db`,
    "providers:",
    "  - id: mock-llm",
    "    kind: openai",
    `    base_url: http://127.0.0.1:${mockPort}/v1`,
    "    models: [mock-model]",
    "",
  ].join("\n"));
  const gateway = start(binary, ["serve", "--config", config], { API_KEYS: "demo-key", RUST_LOG: "warn" });
  await waitFor(`http://127.0.0.1:${gatewayPort}/livez`, gateway);

  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`http://127.0.0.1:${gatewayPort}/`);

    // Without a key the panels say so instead of failing silently.
    await page.waitForSelector("#history-state.error");
    // The demo-key helper fills and saves the key.
    await page.click("#demo-key");
    await page.waitForFunction(() => localStorage.getItem("aigw_api_key") === "demo-key");
    await page.waitForSelector("#history-state:not(.error)");
    // Submit an invoice check against the mock provider.
    await page.selectOption("#task", "invoice_check");
    await page.click("#submit");
    await page.waitForSelector("#provider-used");
    const provider = await page.textContent("#provider-used");
    const decision = await page.textContent("#task-result .badge");
    if (provider !== "mock-llm") throw new Error(`provider used: ${provider}`);
    if (decision !== "PASS") throw new Error(`decision: ${decision}`);
    // The new history row appears.
    await page.waitForFunction(() => [...document.querySelectorAll("#history tbody tr")]
      .some((tr) => tr.textContent.includes("invoice_check")));
    // A coding agent's requests group under its session, and expand to the requests.
    const base = `http://127.0.0.1:${gatewayPort}`;
    const auth = { authorization: "Bearer demo-key" };
    for (let i = 0; i < 2; i++) {
      const r = await fetch(`${base}/v1/chat/completions`, {
        method: "POST",
        headers: { ...auth, "content-type": "application/json", "x-claude-code-session-id": "browser-session" },
        body: JSON.stringify({ model: "mock-model", messages: [{ role: "user", content: "hi" }] }),
      });
      if (!r.ok) throw new Error(`chat with a session: HTTP ${r.status}`);
    }
    const recorded = Date.now() + 10000;
    while ((await (await fetch(`${base}/history?session=browser-session`, { headers: auth })).json()).length < 2) {
      if (Date.now() > recorded) throw new Error("the session's rows never reached history");
      await new Promise((r) => setTimeout(r, 100));
    }
    await page.check("#group-session");
    const session = 'tr.session-row[data-session="browser-session"]';
    await page.waitForSelector(session);
    const count = await page.textContent(`${session} .count`);
    if (count !== "2") throw new Error(`session requests: ${count}`);
    await page.click(session);
    await page.waitForFunction(() => document.querySelectorAll("#sessions tr.session-request").length === 2);
    await page.uncheck("#group-session");
    await page.waitForSelector("#history:not([hidden])");
    // The providers table shows the breaker state.
    await page.waitForFunction(() => document.querySelector("#providers tbody").textContent.includes("closed"));
    const artifacts = path.join(root, "tests/artifacts");
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true });
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    console.log(`dashboard browser test passed: invoice_check → ${decision} by ${provider}; screenshot tests/artifacts/dashboard.png`);
  } finally {
    await browser.close();
  }
}

main()
  .then(() => { for (const c of children) c.kill("SIGTERM"); })
  .catch((e) => {
    console.error(`dashboard browser test FAILED: ${e.stack || e}`);
    for (const c of children) c.kill("SIGTERM");
    process.exit(1);
  });
