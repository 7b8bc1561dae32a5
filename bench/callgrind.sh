#!/bin/sh
# bench/callgrind.sh — user-space instructions per I/O, per arm, counted by callgrind
# (exact and repeatable; kernel work is not counted). Only the timed loop is instrumented
# (CALLGRIND_START/STOP_INSTRUMENTATION around it, valgrind --instr-atstart=no).
#   WORKLOADS="read64 poll"  BATCHES="1 32"  OPS=20000  AIOPP_BENCH=path/to/binary
# Under valgrind aiopp turns ring reaping off (LD_PRELOAD names vgpreload), so aiopp-ring
# and the engine arms (engine-cb, engine-coro) are run with --scrub-vg-preload: the bench
# removes vgpreload from LD_PRELOAD before creating the Context, which makes aiopp really
# reap from the ring (safe under callgrind, which does not track memory definedness; it
# would not be under memcheck).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${AIOPP_BENCH:-$here/../build/bench/bench/aiopp-bench-compare}
ops=${OPS:-20000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aiopp-cg.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
arms=${ARMS:-"raw aiopp-syscall aiopp-ring engine-cb engine-coro libaio liburing pread"}
printf '%-8s %5s %-14s %12s\n' workload batch arm "instr/op"
for w in ${WORKLOADS:-read64 read4k poll}; do
  for b in ${BATCHES:-1 8 32}; do
    for a in $arms; do
      extra=""
      case $a in aiopp-ring | engine-*) extra=--scrub-vg-preload ;; esac
      if ! valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file="$tmp/cg.out" \
          "$bin" --callgrind-arm "$a" $extra --workload "$w" --batch "$b" --ops "$ops" \
          > "$tmp/stdout" 2> "$tmp/stderr"; then
        continue  # arm not built in, or not for this workload
      fi
      n=$(sed -n 's/^SINGLE .* ops \([0-9]*\)$/\1/p' "$tmp/stdout")
      ir=$(sed -n 's/^==[0-9]*== Collected : *\([0-9,]*\).*/\1/p' "$tmp/stderr" | tr -d ,)
      [ -n "$n" ] && [ -n "$ir" ] || continue
      awk -v w="$w" -v b="$b" -v a="$a" -v ir="$ir" -v n="$n" \
        'BEGIN { printf "%-8s %5s %-14s %12.1f\n", w, b, a, ir / n }'
    done
  done
done
