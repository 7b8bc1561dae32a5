#!/bin/sh
# bench/threads.sh [options for aiopp-bench-threads] — the thread-pattern comparison repeated in
# REPEAT (default 5) separate processes; prints, for every mode, the median across processes of
# each process's median per-round ratio to per-thread, with min..max, the median CPU ns per op,
# and the median voluntary context switches (a thread blocked) per 1000 ops: submitting threads,
# and the reaper thread of shared-reap.
#   AIOPP_BENCH_THREADS=path/to/aiopp-bench-threads  (default: build/bench/bench/aiopp-bench-threads)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${AIOPP_BENCH_THREADS:-$here/../build/bench/bench/aiopp-bench-threads}
repeat=${REPEAT:-5}
out=$(mktemp "${TMPDIR:-/tmp}/aiopp-bench-threads.XXXXXX")
i=1
while [ "$i" -le "$repeat" ]; do
  echo "run $i/$repeat ..." >&2
  "$bin" "$@" | grep '^THREADS ' >> "$out"
  i=$((i + 1))
done
# THREADS workload batch qd mode ops/s ratio p25 p75 cpu_ns vcsw_per_1k reaper_vcsw_per_1k
for mode in per-thread shared-reap shared-both engine; do
  grep " $mode " "$out" | awk -v mode="$mode" '
    { r[NR] = $7; o[NR] = $6; c[NR] = $10; s[NR] = $11; k[NR] = $12; w = $2; b = $3; q = $4 }
    function med(a, n,   i, j, t) {
      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
      return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    END {
      n = NR; lo = r[1]; hi = r[1]
      for (i = 2; i <= n; i++) { if (r[i] < lo) lo = r[i]; if (r[i] > hi) hi = r[i] }
      printf "%s batch %s qd %s  %-12s ops/s %9.0f  ratio %.3f (%.3f..%.3f)  CPU ns/op %5.0f  sleeps/1k ops %5.1f + reaper %5.1f  [%d processes]\n",
             w, b, q, mode, med(o, n), med(r, n), lo, hi, med(c, n), med(s, n), med(k, n), n
    }'
done
rm -f "$out"
