#!/usr/bin/env bash
# Fuzzing with libFuzzer (clang-16 from Debian, ASan + UBSan): builds the fuzz preset, runs
# each fuzzer over its committed corpus (fuzz/corpus/<fuzzer>: past findings and seeds),
# then fuzzes for a bounded time (AIOPP_FUZZ_SECONDS per fuzzer, default 30). Any crash,
# sanitizer report, leak, timeout (> 10 s per input) or OOM (> 2 GiB) fails the job; the
# crashing input is left in build/fuzz/findings/ — add it to the corpus with the fix.
set -euo pipefail
cd "$(dirname "$0")/../.."
apt_need clang-16 libclang-rt-16-dev

cmake --workflow --preset fuzz

seconds=${AIOPP_FUZZ_SECONDS:-30}
bin=build/fuzz/fuzz
out=build/fuzz/findings
rm -rf "$out" && mkdir -p "$out"
summary=()
for fuzzer in fuzz_ring fuzz_args; do
  corpus=fuzz/corpus/$fuzzer
  inputs=$(find "$corpus" -type f | wc -l)
  [ "$inputs" -gt 0 ] || { echo "fuzz: $corpus is empty" >&2; exit 1; }
  echo "fuzz: $fuzzer: replaying $inputs committed inputs"
  # -runs=0: execute every corpus input once, no mutation.
  "$bin/$fuzzer" -runs=0 -rss_limit_mb=2048 -timeout=10 -artifact_prefix="$out/$fuzzer-" "$corpus" \
    > "$out/$fuzzer-replay.log" 2>&1 || { cat "$out/$fuzzer-replay.log"; exit 1; }
  echo "fuzz: $fuzzer: fuzzing for ${seconds} s"
  # New inputs go to a scratch directory (first one); the committed corpus is only read.
  mkdir -p "$out/$fuzzer-new"
  if ! "$bin/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1 \
      -artifact_prefix="$out/$fuzzer-" "$out/$fuzzer-new" "$corpus" > "$out/$fuzzer.log" 2>&1; then
    tail -n 60 "$out/$fuzzer.log"
    echo "fuzz: $fuzzer FAILED; reproduce with: $bin/$fuzzer $(ls "$out"/"$fuzzer"-crash-* "$out"/"$fuzzer"-leak-* \
      "$out"/"$fuzzer"-timeout-* "$out"/"$fuzzer"-oom-* 2>/dev/null | head -1)" >&2
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$out/$fuzzer.log")
  cov=$(grep -o 'cov: [0-9]*' "$out/$fuzzer.log" | tail -1 | cut -d' ' -f2)
  summary+=("$fuzzer: $inputs inputs replayed, $runs runs in ${seconds} s, cov $cov")
done
echo "fuzz: no finding: $(printf '%s; ' "${summary[@]}")"
