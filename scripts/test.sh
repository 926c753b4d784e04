#!/usr/bin/env bash
# Runs every test: unit + integration (cargo test), the ops-file checks, end-to-end checks of the
# real binary with the official `openai` and `anthropic` Python SDKs, OpenTelemetry traces against an
# OTLP receiver, the real Claude Code and Codex
# CLIs through the gateway (scripts/agents.sh, from npm), schemathesis against
# /openapi.json, the node-pool check, the routes/admin/CLI check on two replicas, three replicas behind
# HAProxy restarted under load, a short fuzz run and the dashboard in headless Chromium.
# Installs what it needs (a Python venv, the coding-agent CLIs, promtool, haproxy, cargo-fuzz, chromium, playwright-core)
# idempotently, so it works on a fresh clone. PostgreSQL (127.0.0.1:5432) and Redis (127.0.0.1:6379)
# must be running for the suites that use them; those suites fail loudly when they are not.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${AI_GATEWAY_TEST_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import openai, anthropic, schemathesis, opentelemetry.proto" 2>/dev/null; then
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r tests/e2e/requirements.txt
fi

# A CI run builds once from scratch: incremental caches would only cost disk.
if [ "${CI:-}" = "true" ]; then
  export CARGO_INCREMENTAL=0
fi
df -h . | awk 'NR == 2 {print "disk: " $4 " free before the build"}'
cargo build --locked --bin ai-gateway
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --locked --all-targets 2>&1 | tee "$log"
./scripts/check-ops.sh

echo "== end-to-end: official openai SDK through the gateway =="
"$VENV/bin/python" tests/e2e/openai_sdk_check.py target/debug/ai-gateway

echo "== end-to-end: a stream cut mid-answer continued by the next provider (openai SDK) =="
"$VENV/bin/python" tests/e2e/recovery_check.py target/debug/ai-gateway

echo "== end-to-end: traffic management (key pool, concurrency cap, per-request and context-window fallbacks, stream recovery) with the openai SDK =="
"$VENV/bin/python" tests/e2e/traffic_check.py target/debug/ai-gateway

echo "== end-to-end: OpenTelemetry traces to an OTLP receiver (server and client spans, traceparent, dropped spans) =="
"$VENV/bin/python" tests/e2e/otel_check.py target/debug/ai-gateway

echo "== end-to-end: official anthropic and openai SDKs across dialects and native upstreams =="
"$VENV/bin/python" tests/e2e/anthropic_sdk_check.py target/debug/ai-gateway

echo "== end-to-end: Claude Code and Codex CLIs (from npm) through the gateway to four upstream kinds =="
./scripts/agents.sh target/debug/ai-gateway "$VENV/bin/python"

echo "== contract: schemathesis against /openapi.json =="
"$VENV/bin/python" tests/e2e/contract_check.py target/debug/ai-gateway

echo "== end-to-end: GPU node pool against two mock nodes =="
python3 tests/e2e/nodes_check.py target/debug/ai-gateway

echo "== end-to-end: routes, admin API, CLI, two replicas, cache =="
python3 tests/e2e/routes_check.py target/debug/ai-gateway

echo "== end-to-end: three replicas behind HAProxy, SIGTERM and SIGKILL under load =="
# Debian's haproxy package, like check-ops.sh's promtool: installed once, loudly refused without root.
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  ./scripts/apt-install.sh haproxy haproxy
fi
python3 tests/e2e/cluster_check.py target/debug/ai-gateway

echo "== fuzz: a short bounded run of every target =="
./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"

echo "== browser: the dashboard in headless Chromium =="
./scripts/browser-test.sh target/debug/ai-gateway

# One closing line for the whole run: cargo's counts plus the ten script checks above (any
# failure has already stopped this script through `set -e` / `pipefail`).
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s += $1} END {print s + 10}')
echo "all tests: ${passed} passed, 0 failed"
