#!/usr/bin/env bash
# Validates the deployment and observability files offline (no Docker engine, no network needed
# once the tools are installed):
#   - Prometheus: promtool check config / check rules / test rules (alert unit tests)
#   - Compose: the docker-compose.yml against the Compose specification's JSON schema, as written
#     and once rendered per profile (scripts/render_compose.py: variables from that runtime's
#     deploy/env template, the profile's services; depends_on, volumes, health checks and the
#     runtime's base URL agreeing across compose, template and Makefile)
#   - Grafana: scripts/lint_dashboards.py (structure + a real PromQL parse of every expr)
#   - Helm: scripts/check-helm.sh (the chart rendered and validated against the Kubernetes schemas)
#   - Docs: scripts/check-docs.sh (the mdBook in docs/ built, its internal links checked)
# Installs what it needs idempotently, and quietly once installed: promtool from Debian's
# `prometheus` package (needs root or sudo; it starts no daemon) and check-jsonschema into the
# project venv (.venv, or AI_GATEWAY_TEST_VENV like scripts/test.sh).
# Exits non-zero, naming the failed check, on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
  echo "check-ops: FAILED: $*" >&2
  exit 1
}

# --- tools -----------------------------------------------------------------------------------
install_promtool() {
  ./scripts/apt-install.sh prometheus promtool || fail "apt-get install prometheus (for promtool)"
  command -v promtool >/dev/null 2>&1 || fail "promtool still missing after installing 'prometheus'"
}
command -v promtool >/dev/null 2>&1 || install_promtool

VENV="${AI_GATEWAY_TEST_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || fail "python3 -m venv $VENV"
fi
if [ ! -x "$VENV/bin/check-jsonschema" ]; then
  echo "check-ops: installing check-jsonschema into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check check-jsonschema \
    || fail "pip install check-jsonschema"
fi

# --- checks ----------------------------------------------------------------------------------
# Each check prints its tool's output only when it fails, so a passing run stays short.
run() {
  local name="$1"
  shift
  local out
  if out="$("$@" 2>&1)"; then
    echo "check-ops: ok   $name"
  else
    echo "$out" >&2
    fail "$name ($*)"
  fi
}

run "prometheus config" promtool check config prometheus/prometheus.yml
run "alert rules" promtool check rules prometheus/alerts.yml
run "alert unit tests" promtool test rules prometheus/alerts_test.yml
run "compose spec" "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec docker-compose.yml
RENDERED="$(mktemp -d)"
trap 'rm -rf "$RENDERED"' EXIT
run "compose render per profile" "$VENV/bin/python" scripts/render_compose.py "$RENDERED"
for rendered in "$RENDERED"/*.json; do
  run "compose spec, profile $(basename "$rendered" .json)" \
    "$VENV/bin/check-jsonschema" --builtin-schema vendor.compose-spec "$rendered"
done
run "grafana dashboards" "$VENV/bin/python" scripts/lint_dashboards.py
# Its own per-check lines are the useful output, so it runs outside `run`.
./scripts/check-helm.sh || fail "helm chart (scripts/check-helm.sh)"
./scripts/check-docs.sh || fail "documentation book (scripts/check-docs.sh)"
echo "check-ops: all ops checks passed"
