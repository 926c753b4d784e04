#!/usr/bin/env bash
# Fuzzing with cargo-fuzz (libFuzzer) on the stable toolchain: `--sanitizer none` avoids the
# nightly-only -Zsanitizer flag; coverage guidance works the same. Installs cargo-fuzz when
# missing. Usage: scripts/fuzz.sh [seconds per target, default 20] [target ...]
# Crashes land in fuzz/artifacts/<target>/; add each as a regression test and to the corpus.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-20}"
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(peek sse config)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
for target in "${targets[@]}"; do
  echo "== fuzz: ${target} for ${seconds}s =="
  cargo fuzz run --sanitizer none "${target}" "fuzz/corpus/${target}" -- \
    -max_total_time="${seconds}" -rss_limit_mb=2048 -print_final_stats=1 2>&1 | grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|Done)" || true
  test "${PIPESTATUS[0]}" -eq 0
done
echo "fuzz: no crash in ${#targets[@]} target(s)"
