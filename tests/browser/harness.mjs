// What the browser tests share: free ports, waiting for a server, the mock OpenAI upstream and the
// real gateway binary started on a config in a fresh temporary directory (SQLite history), and
// headless Chromium. Every process started here is stopped by `stopAll`.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "../..");
export const binary = path.resolve(process.argv[2] || path.join(root, "target/debug/ai-gateway"));
const chromiumPath = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

export function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
    server.on("error", reject);
  });
}

export async function waitFor(url, child, seconds = 30) {
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
export function start(cmd, args, env) {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ["ignore", "inherit", "inherit"] });
  children.push(child);
  return child;
}

export function stopAll() {
  for (const c of children) if (c.exitCode === null) c.kill("SIGTERM");
}

// Also on a crash or when the test itself is stopped: the gateway and the mock must not outlive it.
process.on("exit", stopAll);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => process.exit(1));

/// Starts the mock OpenAI upstream (provider `mock-llm`, model `mock-model`) and the gateway with
/// `extraConfig` lines appended to its config and `env` added to its environment. Answers the
/// gateway's base URL and its temporary directory (`history.db` is its SQLite history).
export async function startGateway(extraConfig = [], env = {}) {
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
    "    api_keys: [mock-key-a, mock-key-b]",
    ...extraConfig,
    "",
  ].join("\n"));
  const gateway = start(binary, ["serve", "--config", config], { RUST_LOG: "warn", ...env });
  const base = `http://127.0.0.1:${gatewayPort}`;
  await waitFor(`${base}/livez`, gateway);
  return { base, dir };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
}

/// Runs a test's `main`, stopping every started process whatever happens.
export function run(name, main) {
  main()
    .then(() => stopAll())
    .catch((e) => {
      console.error(`${name} FAILED: ${e.stack || e}`);
      stopAll();
      process.exit(1);
    });
}
