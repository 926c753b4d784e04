#!/usr/bin/env python3
"""Fails when an alert in prometheus/alerts.yml has no runbook section in docs/src/operations.md.

A runbook section is a heading whose text is exactly the alert's name, so a new alert cannot ship
without one, and `operations.md#<name lowercased>` is a stable link to it. Headings for alerts
that no longer exist are reported too.
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "prometheus" / "alerts.yml"
RUNBOOK = ROOT / "docs" / "src" / "operations.md"

# The rules file is plain YAML with one `- alert: Name` per rule; a regex keeps this check free of
# a YAML library.
alerts = re.findall(r"^\s*-\s*alert:\s*[\"']?([A-Za-z0-9_:]+)", ALERTS.read_text(encoding="utf-8"), re.M)
headings = {
    m.group(1).strip().strip("`")
    for m in re.finditer(r"^#{2,6}\s+(.+?)\s*$", RUNBOOK.read_text(encoding="utf-8"), re.M)
}
alert_like = {h for h in headings if re.fullmatch(r"AIGateway[A-Za-z0-9]+", h)}

problems = []
if not alerts:
    problems.append(f"{ALERTS.relative_to(ROOT)}: no alerts found (did the file's layout change?)")
for name in alerts:
    if name not in headings:
        problems.append(f"alert {name} has no runbook: add a `### {name}` section to {RUNBOOK.relative_to(ROOT)}")
for name in sorted(alert_like - set(alerts)):
    problems.append(f"{RUNBOOK.relative_to(ROOT)}: section {name} names no alert in {ALERTS.relative_to(ROOT)}")

for p in problems:
    print(f"check_runbooks: {p}", file=sys.stderr)
if problems:
    sys.exit(1)
print(f"check_runbooks: ok   {len(alerts)} alerts, each with a runbook section")
