#!/usr/bin/env bash
# Installs one Debian package for the test scripts (promtool, haproxy, chromium): quiet when it
# works, the apt log and a non-zero exit when it does not; with sudo -n when not root, refused
# loudly without either. Package lists are refreshed only when a first install fails (stale or
# empty lists on a fresh machine).
# Usage: scripts/apt-install.sh PACKAGE WHAT-FOR
set -euo pipefail

package="$1"
purpose="$2"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || {
    echo "apt-install: ${purpose} is missing; install Debian's '${package}' package (needs root)" >&2
    exit 1
  }
  sudo=(sudo -n)
fi
export DEBIAN_FRONTEND=noninteractive
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
echo "apt-install: installing ${purpose} (Debian package '${package}')"
if ! "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >"$log" 2>&1; then
  "${sudo[@]}" apt-get update -qq >>"$log" 2>&1 || true
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$package" >>"$log" 2>&1 || {
    cat "$log" >&2
    echo "apt-install: apt-get install ${package} (for ${purpose}) failed" >&2
    exit 1
  }
fi
