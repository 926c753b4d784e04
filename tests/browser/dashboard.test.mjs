// Browser test of the dashboard, as a user would use it: start a mock OpenAI upstream and the real
// gateway binary (auth on, key `demo-key`), open http://127.0.0.1:PORT/ in headless Chromium, enter
// the key with the demo-key helper, submit an invoice_check, and check the decision, the provider
// used and the new history row; then group the history by agent session and expand one. Saves a
// screenshot to tests/artifacts/dashboard.png.
//
// Usage: node tests/browser/dashboard.test.mjs path/to/ai-gateway
import { mkdirSync } from "node:fs";
import path from "node:path";
import { launchBrowser, root, run, startGateway } from "./harness.mjs";

async function main() {
  const { base } = await startGateway([], { API_KEYS: "demo-key" });
  const browser = await launchBrowser();
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 1100 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(`${base}/`);

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
    // The providers table shows the breaker state, and the provider's key pool as a count of keys.
    await page.waitForFunction(() => document.querySelector("#providers tbody").textContent.includes("closed"));
    await page.waitForFunction(() => document.querySelector("#providers tbody").textContent.includes("2 keys"));
    const artifacts = path.join(root, "tests/artifacts");
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: path.join(artifacts, "dashboard.png"), fullPage: true });
    if (errors.length) throw new Error(`page errors: ${errors.join("; ")}`);
    console.log(`dashboard browser test passed: invoice_check → ${decision} by ${provider}; screenshot tests/artifacts/dashboard.png`);
  } finally {
    await browser.close();
  }
}

run("dashboard browser test", main);
