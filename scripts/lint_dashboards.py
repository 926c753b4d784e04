#!/usr/bin/env python3
"""Offline lint for the Grafana dashboards in grafana/dashboards/*.json.

Grafana has no JSON Schema to validate against, so this checks what breaks a provisioned dashboard:
  - the file parses and has title, uid, panels and schemaVersion;
  - panel ids are unique, every panel (rows and panels nested in rows too) has type, title and a
    gridPos with integer h/w/x/y inside the 24-column grid, and no two panels overlap;
  - every datasource uid a panel or target names is one provisioned in grafana/provisioning/datasources;
  - every target's expr is valid PromQL: Grafana variables are replaced by stand-ins, the exprs are
    written into a temporary recording-rules file and `promtool check rules` parses it.

Usage: scripts/lint_dashboards.py [DASHBOARD.json ...]   (default: grafana/dashboards/*.json)
Exit status 0 when everything passes, 1 otherwise; each problem is printed as FILE: message.
"""

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GRID_COLUMNS = 24

# Grafana's global variables that stand for durations or numbers, and what to put in their place.
DURATION_VARS = {"__rate_interval": "5m", "__interval": "1m", "__range": "1h"}
NUMBER_VARS = {"__interval_ms": "60000", "__range_s": "3600", "__range_ms": "3600000"}
# $var, ${var}, ${var:format}, [[var]]
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\$(\w+)|\[\[(\w+)(?::[^\]]*)?\]\]")


def substitute_variables(expr):
    """Replaces Grafana variables with values that keep the expression valid PromQL.

    Duration variables become a duration; anything else (dashboard variables, used inside label
    matchers such as provider=~"$provider") becomes `.*`, a valid regex and a valid string.
    """

    def repl(m):
        name = m.group(1) or m.group(2) or m.group(3)
        if name in DURATION_VARS:
            return DURATION_VARS[name]
        if name in NUMBER_VARS:
            return NUMBER_VARS[name]
        return ".*"

    return VARIABLE.sub(repl, expr)


def provisioned_datasource_uids():
    uids = set()
    for path in glob.glob(os.path.join(ROOT, "grafana/provisioning/datasources/*.y*ml")):
        with open(path, encoding="utf-8") as f:
            for m in re.finditer(r"^\s*uid:\s*['\"]?([\w.-]+)", f.read(), re.MULTILINE):
                uids.add(m.group(1))
    return uids


def walk_panels(panels):
    for p in panels:
        yield p
        # a collapsed row keeps its panels inside it
        yield from walk_panels(p.get("panels") or [])


def datasource_uid(ds):
    if isinstance(ds, dict):
        return ds.get("uid")
    return None  # a name string or null: the default datasource


def lint_dashboard(path, ds_uids, problems, exprs):
    def bad(msg):
        problems.append(f"{os.path.relpath(path, ROOT)}: {msg}")

    try:
        with open(path, encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        bad(f"does not parse as JSON: {e}")
        return
    if not isinstance(dash, dict):
        bad("top level is not a JSON object")
        return
    for key in ("title", "uid", "panels", "schemaVersion"):
        if key not in dash:
            bad(f"missing top-level key {key!r}")
    if not isinstance(dash.get("panels", []), list):
        bad("'panels' is not a list")
        return
    if not isinstance(dash.get("schemaVersion", 0), int):
        bad("'schemaVersion' is not an integer")

    seen_ids = {}
    boxes = []
    for p in walk_panels(dash.get("panels", [])):
        label = f"panel {p.get('id')!r} ({p.get('title', '?')!r})"
        for key in ("type", "title", "gridPos"):
            if key not in p:
                bad(f"{label}: missing {key!r}")
        pid = p.get("id")
        if not isinstance(pid, int):
            bad(f"{label}: id is not an integer")
        elif pid in seen_ids:
            bad(f"{label}: duplicate panel id (also {seen_ids[pid]!r})")
        else:
            seen_ids[pid] = p.get("title")
        gp = p.get("gridPos")
        if isinstance(gp, dict):
            if not all(isinstance(gp.get(k), int) for k in ("h", "w", "x", "y")):
                bad(f"{label}: gridPos needs integer h, w, x and y, got {gp}")
            elif gp["w"] < 1 or gp["h"] < 1 or gp["x"] < 0 or gp["y"] < 0 or gp["x"] + gp["w"] > GRID_COLUMNS:
                bad(f"{label}: gridPos {gp} is outside the {GRID_COLUMNS}-column grid")
            else:
                for other_label, o in boxes:
                    if (gp["x"] < o["x"] + o["w"] and o["x"] < gp["x"] + gp["w"]
                            and gp["y"] < o["y"] + o["h"] and o["y"] < gp["y"] + gp["h"]):
                        bad(f"{label}: gridPos overlaps {other_label}")
                boxes.append((label, gp))
        elif "gridPos" in p:
            bad(f"{label}: gridPos is not an object")

        uid = datasource_uid(p.get("datasource"))
        if uid is not None and uid not in ds_uids and not uid.startswith("-- "):
            bad(f"{label}: datasource uid {uid!r} is not provisioned (known: {sorted(ds_uids)})")
        for i, t in enumerate(p.get("targets") or []):
            tuid = datasource_uid(t.get("datasource"))
            if tuid is not None and tuid not in ds_uids:
                bad(f"{label}: target {i} datasource uid {tuid!r} is not provisioned")
            expr = t.get("expr")
            if expr is None:
                continue
            if not isinstance(expr, str) or not expr.strip():
                bad(f"{label}: target {t.get('refId', i)!r} has an empty expr")
                continue
            exprs.append((f"{os.path.relpath(path, ROOT)} {label} target {t.get('refId', i)}", expr))

    for v in (dash.get("templating") or {}).get("list", []):
        uid = datasource_uid(v.get("datasource"))
        if uid is not None and uid not in ds_uids:
            bad(f"variable {v.get('name')!r}: datasource uid {uid!r} is not provisioned")


def check_promql(exprs, problems):
    """Parses every expr with promtool, one recording rule each; on failure, names the culprits."""
    if not exprs:
        return
    promtool = shutil.which("promtool")
    if promtool is None:
        problems.append("promtool not found (scripts/check-ops.sh installs it)")
        return

    def run(batch):
        lines = ["groups:", "  - name: dashboard-exprs", "    rules:"]
        for i, (_, expr) in enumerate(batch):
            lines.append(f"      - record: dashboard:expr_{i}")
            # a JSON string is a valid YAML double-quoted scalar
            lines.append(f"        expr: {json.dumps(substitute_variables(expr))}")
        with tempfile.NamedTemporaryFile("w", suffix=".yml", delete=False) as f:
            f.write("\n".join(lines) + "\n")
            name = f.name
        try:
            r = subprocess.run([promtool, "check", "rules", name], capture_output=True, text=True)
        finally:
            os.unlink(name)
        return r.returncode == 0, (r.stdout + r.stderr).strip()

    ok, _ = run(exprs)
    if ok:
        return
    for where, expr in exprs:  # slow path: find each bad expression
        ok, out = run([(where, expr)])
        if not ok:
            problems.append(f"{where}: invalid PromQL {expr!r}\n    {out.splitlines()[-1] if out else ''}")


def main(argv):
    paths = argv[1:] or sorted(glob.glob(os.path.join(ROOT, "grafana/dashboards/*.json")))
    if not paths:
        print("lint_dashboards: no dashboards in grafana/dashboards/", file=sys.stderr)
        return 1
    ds_uids = provisioned_datasource_uids()
    if not ds_uids:
        print("lint_dashboards: no datasource uid in grafana/provisioning/datasources/", file=sys.stderr)
        return 1
    problems, exprs = [], []
    uids = {}
    for path in paths:
        lint_dashboard(path, ds_uids, problems, exprs)
        try:
            with open(path, encoding="utf-8") as f:
                uid = json.load(f).get("uid")
        except (OSError, ValueError, AttributeError):
            uid = None
        if uid in uids:
            problems.append(f"{os.path.relpath(path, ROOT)}: uid {uid!r} also used by {uids[uid]}")
        elif uid is not None:
            uids[uid] = os.path.relpath(path, ROOT)
    check_promql(exprs, problems)
    if problems:
        for p in problems:
            print(p, file=sys.stderr)
        print(f"lint_dashboards: {len(problems)} problem(s)", file=sys.stderr)
        return 1
    print(f"lint_dashboards: {len(paths)} dashboard(s), {len(exprs)} PromQL expression(s) OK")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
