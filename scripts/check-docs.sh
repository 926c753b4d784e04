#!/usr/bin/env bash
# Builds the documentation book (docs/, mdBook) and fails on a broken internal link:
#   - installs mdbook idempotently into .tools/ (cargo install, pinned, only when missing)
#   - `mdbook build docs` (into docs/book/)
#   - scripts/check_doc_links.py: every relative link in docs/src/*.md and every README.md link
#     into docs/src names an existing file and, with `#anchor`, a heading id of that page
#   - scripts/check_runbooks.py: every alert in prometheus/alerts.yml has its section in the
#     operations runbook (docs/src/operations.md)
set -euo pipefail
cd "$(dirname "$0")/.."

MDBOOK_VERSION=0.4.52
MDBOOK=.tools/bin/mdbook

if [[ ! -x "$MDBOOK" ]]; then
  echo "check-docs: installing mdbook $MDBOOK_VERSION into .tools/ (first run only)"
  cargo install mdbook --locked --version "$MDBOOK_VERSION" --root .tools
fi

if ! out="$("$MDBOOK" build docs 2>&1)"; then
  echo "$out" >&2
  echo "check-docs: FAILED mdbook build docs" >&2
  exit 1
fi
# mdBook reports problems it can survive (a missing page, a bad SUMMARY entry) as errors or
# warnings without failing the build.
if grep -E '\[(ERROR|WARN)' <<<"$out" >&2; then
  echo "check-docs: FAILED mdbook build docs reported problems" >&2
  exit 1
fi
echo "check-docs: ok   mdbook build docs"

python3 scripts/check_doc_links.py || { echo "check-docs: FAILED internal links" >&2; exit 1; }
python3 scripts/check_runbooks.py || { echo "check-docs: FAILED alert runbooks" >&2; exit 1; }
echo "check-docs: all documentation checks passed"
