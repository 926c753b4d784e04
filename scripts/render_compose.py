#!/usr/bin/env python3
"""Renders docker-compose.yml once per profile, as `docker compose --profile P config` would, with
no Docker: interpolates the variables from that runtime's deploy/env template, keeps the services
the profile runs, and checks what the JSON schema cannot see (depends_on, named volumes, health
checks, the runtime's base URL agreeing across compose, the template and the Makefile).

Usage: render_compose.py OUT_DIR — writes OUT_DIR/<profile>.json (and default.json, no profile)
for check-jsonschema, prints one line per render, exits 1 naming every problem found.
"""

import json
import re
import sys
from pathlib import Path
from urllib.parse import urlparse

from ruamel.yaml import YAML  # check-jsonschema's own YAML parser, so no other install

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "docker-compose.yml"
TEMPLATES = ROOT / "deploy" / "env"
MAKEFILE = ROOT / "Makefile"

# What a user must fill in before `docker compose up` (the file refuses to start without them).
REQUIRED = {"AI_GATEWAY_API_KEYS": "render-key", "GRAFANA_ADMIN_PASSWORD": "render-password"}

VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


class Problems(list):
    def add(self, where, what):
        self.append(f"{where}: {what}")


def interpolate(text, env, where, problems):
    """Compose's interpolation: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?e}, ${VAR?e}, ${VAR:+a}."""

    def one(m):
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(4)
        op, arg = m.group(2), m.group(3) or ""
        value = env.get(name)
        unset_or_empty = not value
        if op is None:
            return value or ""
        if op in (":-", "-"):
            return arg if (unset_or_empty if op == ":-" else value is None) else value
        if op in (":?", "?"):
            if unset_or_empty if op == ":?" else value is None:
                problems.add(where, f"required variable {name} is not set ({arg})")
                return ""
            return value
        if op in (":+", "+"):
            return arg if not (unset_or_empty if op == ":+" else value is None) else ""
        return m.group(0)

    return VAR.sub(one, text)


def walk(node, env, where, problems):
    if isinstance(node, str):
        return interpolate(node, env, where, problems)
    if isinstance(node, list):
        return [walk(v, env, f"{where}[{i}]", problems) for i, v in enumerate(node)]
    if isinstance(node, dict):
        return {k: walk(v, env, f"{where}.{k}", problems) for k, v in node.items()}
    return node


def read_env_file(path):
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        env[key.strip()] = value.strip()
    return env


def makefile_facts():
    """RUNTIMES and each runtime's NETWORK_URL, as the Makefile states them."""
    text = MAKEFILE.read_text()
    runtimes = re.search(r"^RUNTIMES = (.+)$", text, re.M).group(1).split()
    block = text.split("NETWORK_URL = ", 1)[1].split("esac", 1)[0]
    urls = dict(re.findall(r"(\w+)\) echo (\S+) ;;", block))
    return runtimes, urls


def render(doc, profile, env, problems):
    where = f"[{profile or 'default'}]"
    out = walk(doc, env, where, problems)
    active = {profile} if profile else set()
    services = {
        name: svc
        for name, svc in out["services"].items()
        if not svc.get("profiles") or active & set(svc["profiles"])
    }
    for svc in services.values():
        svc.pop("profiles", None)
    out["services"] = services
    declared = set((out.get("volumes") or {}).keys())
    for name, svc in services.items():
        deps = svc.get("depends_on") or {}
        for dep in deps if isinstance(deps, (list, dict)) else []:
            if dep not in services:
                problems.add(where, f"{name} depends on {dep}, which this profile does not run")
        for vol in svc.get("volumes") or []:
            source = vol.split(":", 1)[0] if isinstance(vol, str) else vol.get("source", "")
            if source and not source.startswith((".", "/", "~")) and source not in declared:
                problems.add(where, f"{name} mounts volume {source}, which is not declared")
        if "healthcheck" not in svc and name not in ("prometheus", "grafana", "ollama-pull"):
            problems.add(where, f"{name} has no healthcheck")
    left = re.findall(r"\$\{[^}]*\}", json.dumps(out))
    if left:
        problems.add(where, f"unresolved variables: {sorted(set(left))}")
    return out


def main():
    out_dir = Path(sys.argv[1])
    out_dir.mkdir(parents=True, exist_ok=True)
    doc = YAML(typ="safe").load(COMPOSE.read_text())
    problems = Problems()
    profiles = sorted({p for svc in doc["services"].values() for p in svc.get("profiles") or []})
    runtimes, make_urls = makefile_facts()
    if sorted(runtimes) != profiles:
        problems.add("Makefile", f"RUNTIMES {sorted(runtimes)} differ from the compose profiles {profiles}")
    gateway_env = doc["services"]["gateway"].get("environment") or {}

    base = dict(REQUIRED)
    (out_dir / "default.json").write_text(json.dumps(render(doc, None, base, problems), indent=1))
    print(f"render-compose: default: {len(doc['services'])} services declared")
    for profile in profiles:
        where = f"[{profile}]"
        template = TEMPLATES / f"{profile}.env.example"
        if not template.exists():
            problems.add(where, f"no template {template.relative_to(ROOT)} for `make env-{profile}`")
            continue
        env = read_env_file(template)
        var = f"{profile.upper()}_BASE_URL"
        if env.get("COMPOSE_PROFILES") != profile:
            problems.add(where, f"{template.name}: COMPOSE_PROFILES must be {profile}")
        url = env.get(var, "")
        if var not in gateway_env:
            problems.add(where, f"the gateway's environment does not pass {var}")
        if url != make_urls.get(profile):
            problems.add(where, f"{template.name} says {var}={url}, the Makefile {make_urls.get(profile)}")
        env.update({k: v for k, v in REQUIRED.items() if not env.get(k)})
        rendered = render(doc, profile, env, problems)
        host = urlparse(url).hostname
        if host not in rendered["services"]:
            problems.add(where, f"{var}={url} names no service of the profile")
        if rendered["services"]["gateway"]["environment"].get(var) != url:
            problems.add(where, f"the gateway does not receive {var}={url}")
        (out_dir / f"{profile}.json").write_text(json.dumps(rendered, indent=1))
        names = ", ".join(sorted(set(rendered["services"]) - set(json.load(open(out_dir / "default.json"))["services"])))
        print(f"render-compose: {profile}: + {names}; gateway {var}={url}")
    if problems:
        for p in problems:
            print(f"render-compose: {p}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
