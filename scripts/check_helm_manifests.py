"""Checks what the Kubernetes schemas cannot in the chart's rendered manifests.

Usage: check_helm_manifests.py <defaults|replicas> <rendered.yaml>
       check_helm_manifests.py probes <rendered.yaml> <gateway binary>

- The Prometheus Operator resources, whose CRD schemas kubernetes-validate does not carry:
  ServiceMonitor (spec.selector, spec.endpoints[].port naming a Service port) and PrometheusRule
  (spec.groups[].name, rules[].alert or record, rules[].expr), and that the rules are exactly
  prometheus/alerts.yml.
- The gateway's contract with Kubernetes: probes on /livez and /readyz?scope=process, a preStop
  sleep, plus the shutdown drain, grace and history flush the Deployment's env sets, shorter than
  terminationGracePeriodSeconds, non-root with a read-only root filesystem and
  emptyDirs for /tmp and the data directory, the config mounted as a directory (a subPath mount
  never sees ConfigMap updates) at the path AI_GATEWAY_CONFIG names, DATABASE_URL and REDIS_URL
  from Secrets, tracing's OTEL_* variables only when tracing.endpoint is set, and every $(VAR)
  reference defined before the variable that uses it.
`probes` runs the gateway binary on the rendered ConfigMap's config.yaml (`check-config`, then
`serve` on a free local port) and GETs the rendered liveness and readiness paths: both must answer
200 although no provider is usable (plain /readyz answers 503 there).
Prints one line per problem and exits 1 when there is any.
"""

import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

import yaml

PROBLEMS = []


def check(cond, message):
    if not cond:
        PROBLEMS.append(message)
    return cond


def by_kind(docs, kind):
    return [d for d in docs if d.get("kind") == kind]


def check_service_monitor(sm, services):
    spec = sm.get("spec") or {}
    name = sm["metadata"]["name"]
    check(isinstance(spec.get("selector"), dict) and spec["selector"], f"ServiceMonitor {name}: spec.selector is required")
    endpoints = spec.get("endpoints")
    if not check(isinstance(endpoints, list) and endpoints, f"ServiceMonitor {name}: spec.endpoints is required"):
        return
    port_names = {p.get("name") for s in services for p in s["spec"].get("ports", [])}
    for i, ep in enumerate(endpoints):
        port = ep.get("port")
        check(isinstance(port, str) and port, f"ServiceMonitor {name}: spec.endpoints[{i}].port is required")
        check(port in port_names, f"ServiceMonitor {name}: endpoint port {port!r} names no Service port {sorted(port_names)}")
        check(ep.get("path", "/metrics") == "/metrics", f"ServiceMonitor {name}: endpoint path must be /metrics")
    selector = spec.get("selector", {}).get("matchLabels", {})
    matched = [s for s in services if selector.items() <= (s["metadata"].get("labels") or {}).items()]
    check(matched, f"ServiceMonitor {name}: its selector {selector} matches no Service")
    job_label = spec.get("jobLabel")
    if job_label:
        for s in matched:
            job = (s["metadata"].get("labels") or {}).get(job_label)
            # The alert rules select job="ai-gateway".
            check(job == "ai-gateway", f"ServiceMonitor {name}: job label {job_label} is {job!r}, the rules expect ai-gateway")


def check_prometheus_rule(rule, alerts_file):
    spec = rule.get("spec") or {}
    name = rule["metadata"]["name"]
    groups = spec.get("groups")
    if not check(isinstance(groups, list) and groups, f"PrometheusRule {name}: spec.groups is required"):
        return
    for g, group in enumerate(groups):
        check(isinstance(group.get("name"), str) and group["name"], f"PrometheusRule {name}: spec.groups[{g}].name is required")
        rules = group.get("rules")
        if not check(isinstance(rules, list) and rules, f"PrometheusRule {name}: spec.groups[{g}].rules is empty"):
            continue
        for r, item in enumerate(rules):
            where = f"PrometheusRule {name}: groups[{g}].rules[{r}]"
            check(bool(item.get("alert")) != bool(item.get("record")), f"{where}: exactly one of alert and record")
            check(isinstance(item.get("expr"), (str, int)) and str(item["expr"]).strip(), f"{where}: expr is required")
    with open(alerts_file) as f:
        source = yaml.safe_load(f)
    check(groups == source.get("groups"), f"PrometheusRule {name}: its groups differ from {alerts_file}")


def env_of(container):
    return {e["name"]: e for e in container.get("env", [])}


def check_deployment(dep, configmaps, mode):
    name = dep["metadata"]["name"]
    pod = dep["spec"]["template"]["spec"]
    containers = pod["containers"]
    if not check(len(containers) == 1, f"Deployment {name}: one container expected"):
        return
    c = containers[0]
    check(c["livenessProbe"]["httpGet"]["path"] == "/livez", f"Deployment {name}: liveness probe must GET /livez")
    check(
        c["readinessProbe"]["httpGet"]["path"] == "/readyz?scope=process",
        f"Deployment {name}: readiness probe must GET /readyz?scope=process",
    )
    command = c.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
    if check(len(command) == 2 and command[0] == "sleep", f"Deployment {name}: preStop must be a sleep"):
        env = env_of(c)
        timings = ("SHUTDOWN_DRAIN_SECONDS", "SHUTDOWN_GRACE_SECONDS", "AI_GATEWAY__HISTORY__SHUTDOWN_FLUSH_SECONDS")
        if check(all(v in env for v in timings), f"Deployment {name}: {', '.join(timings)} expected"):
            stopping = int(command[1]) + sum(int(env[v]["value"]) for v in timings)
            check(
                int(pod["terminationGracePeriodSeconds"]) > stopping,
                f"Deployment {name}: terminationGracePeriodSeconds must exceed preStop sleep + drain + grace + history flush ({stopping})",
            )
    check(pod.get("securityContext", {}).get("runAsNonRoot") is True, f"Deployment {name}: runAsNonRoot")
    sc = c.get("securityContext", {})
    check(sc.get("readOnlyRootFilesystem") is True, f"Deployment {name}: readOnlyRootFilesystem")
    check(sc.get("allowPrivilegeEscalation") is False, f"Deployment {name}: allowPrivilegeEscalation false")
    check(c.get("resources", {}).get("requests"), f"Deployment {name}: resource requests")

    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
    for path in ("/tmp", "/var/lib/ai-gateway"):
        m = mounts.get(path)
        if check(m, f"Deployment {name}: nothing mounted at {path}"):
            check("emptyDir" in volumes[m["name"]], f"Deployment {name}: {path} must be an emptyDir")

    env = env_of(c)
    config_path = env.get("AI_GATEWAY_CONFIG", {}).get("value", "")
    config_dir, _, config_key = config_path.rpartition("/")
    m = mounts.get(config_dir)
    if check(m, f"Deployment {name}: AI_GATEWAY_CONFIG {config_path!r} is not in a mounted directory"):
        check("subPath" not in m, f"Deployment {name}: the config must be mounted as a directory, not a subPath")
        cm_name = volumes[m["name"]].get("configMap", {}).get("name")
        rendered = [cm for cm in configmaps if cm["metadata"]["name"] == cm_name]
        if check(rendered, f"Deployment {name}: ConfigMap {cm_name} is not rendered"):
            check(config_key in rendered[0].get("data", {}), f"ConfigMap {cm_name}: no key {config_key}")
            yaml.safe_load(rendered[0]["data"][config_key])
    port = c["ports"][0]["containerPort"]
    check(env.get("AI_GATEWAY_LISTEN", {}).get("value") == f"0.0.0.0:{port}", f"Deployment {name}: AI_GATEWAY_LISTEN must be 0.0.0.0:{port}")
    for var in ("DATABASE_URL", "REDIS_URL"):
        if var in env:
            check("secretKeyRef" in env[var].get("valueFrom", {}), f"Deployment {name}: {var} must come from a Secret")
    if mode == "replicas":
        check("DATABASE_URL" in env and "REDIS_URL" in env, f"Deployment {name}: DATABASE_URL and REDIS_URL expected")
        check(c.get("envFrom"), f"Deployment {name}: provider keys expected through envFrom")
        check("OTEL_EXPORTER_OTLP_ENDPOINT" in env, f"Deployment {name}: tracing.endpoint should set OTEL_EXPORTER_OTLP_ENDPOINT")
    else:
        check(not any(v.startswith("OTEL_") for v in env), f"Deployment {name}: tracing must be off by default")
    # Kubernetes expands $(VAR) only from variables listed before the one that uses it.
    names = [e["name"] for e in c.get("env", [])]
    for i, e in enumerate(c.get("env", [])):
        for ref in re.findall(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", e.get("value", "")):
            check(ref in names[:i], f"Deployment {name}: {e['name']} refers to $({ref}), not defined before it")


def status_of(url):
    try:
        with urllib.request.urlopen(url, timeout=3) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def check_probes(docs, binary):
    dep = by_kind(docs, "Deployment")[0]
    c = dep["spec"]["template"]["spec"]["containers"][0]
    config = by_kind(docs, "ConfigMap")[0]["data"]["config.yaml"]
    with tempfile.TemporaryDirectory() as work:
        config_path = os.path.join(work, "config.yaml")
        with open(config_path, "w") as f:
            f.write(config)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "AI_GATEWAY_CONFIG": config_path,
            "AI_GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "DATABASE_URL": f"sqlite://{work}/history.db",
        }
        checked = subprocess.run([binary, "check-config"], env=env, capture_output=True, text=True)
        if not check(checked.returncode == 0, f"the gateway refuses the chart's config: {checked.stdout}{checked.stderr}"):
            return
        with open(os.path.join(work, "gateway.log"), "w") as log:
            gateway = subprocess.Popen([binary, "serve"], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT)
            try:
                base = f"http://127.0.0.1:{port}"
                deadline = time.monotonic() + 30
                while True:
                    try:
                        status_of(base + "/livez")
                        break
                    except OSError:
                        if gateway.poll() is not None or time.monotonic() > deadline:
                            check(False, "the gateway did not start on the chart's config")
                            return
                        time.sleep(0.2)
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    path = c[probe]["httpGet"]["path"]
                    got = status_of(base + path)
                    check(got == 200, f"{probe} GET {path} answered {got} with no usable provider, expected 200")
                got = status_of(base + "/readyz")
                check(got == 503, f"plain /readyz answered {got} with no usable provider, expected 503")
            finally:
                gateway.terminate()
                gateway.wait(timeout=30)


def main():
    mode, path = sys.argv[1], sys.argv[2]
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    if mode == "probes":
        check_probes(docs, os.path.abspath(sys.argv[3]))
        for p in PROBLEMS:
            print(p)
        sys.exit(1 if PROBLEMS else 0)
    services = by_kind(docs, "Service")
    deployments = by_kind(docs, "Deployment")
    check(len(deployments) == 1 and len(services) == 1, "one Deployment and one Service expected")
    check(by_kind(docs, "PodDisruptionBudget"), "a PodDisruptionBudget expected")
    for dep in deployments:
        check_deployment(dep, by_kind(docs, "ConfigMap"), mode)
    monitors, rules = by_kind(docs, "ServiceMonitor"), by_kind(docs, "PrometheusRule")
    if mode == "replicas":
        check(monitors and rules and by_kind(docs, "HorizontalPodAutoscaler"), "HPA, ServiceMonitor and PrometheusRule expected")
    else:
        check(not monitors and not rules, "the monitoring resources must be off by default")
    for sm in monitors:
        check_service_monitor(sm, services)
    for rule in rules:
        check_prometheus_rule(rule, "prometheus/alerts.yml")
    for p in PROBLEMS:
        print(p)
    sys.exit(1 if PROBLEMS else 0)


if __name__ == "__main__":
    main()
