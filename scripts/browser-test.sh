#!/usr/bin/env bash
# The dashboard's browser tests: installs Debian's chromium and playwright-core (npm) when missing,
# then drives the real binary in headless Chromium: the task, history and live views, then spend,
# keys, teams and budgets through the admin API. Idempotent and quiet when already installed.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
  ./scripts/apt-install.sh chromium chromium
fi
if [ ! -d tests/browser/node_modules/playwright-core ]; then
  echo "browser-test: installing playwright-core (npm)"
  (cd tests/browser && npm ci --no-audit --no-fund --silent)
fi
node tests/browser/dashboard.test.mjs "${1:-target/debug/ai-gateway}"
node tests/browser/admin.test.mjs "${1:-target/debug/ai-gateway}"
