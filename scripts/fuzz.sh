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
[ ${#targets[@]} -gt 0 ] || targets=(peek sse config translate_anthropic translate_messages translate_gemini \
  translate_responses translate_completions)

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --quiet
fi
for target in "${targets[@]}"; do
  echo "== fuzz: ${target} for ${seconds}s =="
  # The translation targets read JSON wire formats: their keywords spare the fuzzer guessing them.
  dict=()
  [[ "${target}" != translate_* ]] || dict=(-dict=fuzz/translate.dict)
  # The whole output goes to a log: the summary lines are shown, and on a failure (a crash, or a
  # build that broke) its tail with the panic message and the artifact's path.
  log="fuzz/target/fuzz-${target}.log"
  mkdir -p fuzz/target
  status=0
  cargo fuzz run --sanitizer none "${target}" "fuzz/corpus/${target}" -- \
    -max_total_time="${seconds}" -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" >"${log}" 2>&1 || status=$?
  grep -E "^(#[0-9]+ +DONE|stat::number_of_executed_units|==[0-9]+== ERROR|SUMMARY|Done)" "${log}" || true
  if [ "${status}" -ne 0 ]; then
    tail -n 40 "${log}"
    echo "fuzz: ${target} failed (exit ${status}; whole output in ${log})"
    exit "${status}"
  fi
done
echo "fuzz: no crash in ${#targets[@]} target(s)"
