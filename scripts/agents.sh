#!/usr/bin/env bash
# Runs the real coding-agent CLIs (Claude Code and the Codex CLI, from npm) through the gateway to
# strict mock upstreams: tests/e2e/agents_check.py. Installs both CLIs, pinned, into .agents/
# (git-ignored) and skips the install when those versions are already there.
# Usage: scripts/agents.sh [path/to/ai-gateway] [python]   (defaults: target/debug/ai-gateway, .venv's)
set -euo pipefail
cd "$(dirname "$0")/.."

CLAUDE_CODE_VERSION=2.1.332
CODEX_VERSION=0.171.0
DIR="${AI_GATEWAY_AGENTS_DIR:-.agents}"
BINARY="${1:-target/debug/ai-gateway}"
PYTHON="${2:-${AI_GATEWAY_TEST_VENV:-.venv}/bin/python}"

installed() {
  "$DIR/node_modules/.bin/claude" --version 2>/dev/null | grep -qx "$CLAUDE_CODE_VERSION (Claude Code)" &&
    "$DIR/node_modules/.bin/codex" --version 2>/dev/null | grep -qx "codex-cli $CODEX_VERSION"
}

if ! installed; then
  mkdir -p "$DIR"
  # A package.json of our own keeps npm from walking up into another project.
  [ -f "$DIR/package.json" ] || echo '{"private": true}' > "$DIR/package.json"
  npm install --prefix "$DIR" --save-exact --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
  # npm holds back install scripts here; Claude Code's postinstall puts its native binary in place.
  (cd "$DIR" && node node_modules/@anthropic-ai/claude-code/install.cjs)
  installed || { echo "agents.sh: the CLIs did not install at the pinned versions" >&2; exit 1; }
fi

"$PYTHON" tests/e2e/agents_check.py "$BINARY" --agents "$DIR"
