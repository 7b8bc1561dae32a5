#!/bin/sh
# bench/run.sh [options for aiopp-bench-compare] — the batched comparison repeated in
# REPEAT (default 5) separate processes, then aggregated: for every workload, batch and arm,
# the median across processes of each process's median per-round ratio, with min..max.
#   AIOPP_BENCH=path/to/aiopp-bench-compare  (default: build/bench/bench/aiopp-bench-compare)
#   REPEAT=5  OUT=dir-for-the-raw-outputs (default: a new temp dir, kept)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${AIOPP_BENCH:-$here/../build/bench/bench/aiopp-bench-compare}
repeat=${REPEAT:-5}
out=${OUT:-$(mktemp -d "${TMPDIR:-/tmp}/aiopp-bench-run.XXXXXX")}
mkdir -p "$out"
i=1
while [ "$i" -le "$repeat" ]; do
  echo "run $i/$repeat ..." >&2
  "$bin" "$@" > "$out/run.$i.txt"
  i=$((i + 1))
done
echo "raw outputs: $out" >&2
"$bin" --aggregate "$out"/run.*.txt
