#!/usr/bin/env bash
# fio 4 KiB randread, QD32, O_DIRECT, libaio: IOPS alone vs under aio-trace, alternated runs.
#   overhead.sh AIO_TRACE DIR [PAIRS=5] [SECONDS=3] [DIRECT=1] [SIZE=256M]
# DIRECT=0: buffered reads of a cached file (ext4 completes them inside io_submit): no device
# in the way, so the IOPS are CPU-bound and show the tracer's cost per request.
# Prints each pair and the ratio of the medians (traced / alone). Not a ctest test (minutes,
# and the number depends on the machine); the figures in BENCHMARKS.md come from it.
set -euo pipefail
TRACE=$1 DIR=$2 PAIRS=${3:-5} SECS=${4:-3} DIRECT=${5:-1} SIZE=${6:-256M}
command -v fio >/dev/null || { echo "overhead.sh: fio not installed" >&2; exit 77; }
file=$DIR/aio-trace-overhead.data
# --invalidate=0: fio would otherwise drop the file's cached pages at each start.
job=(fio --name=job --filename="$file" --ioengine=libaio --iodepth=32 --bs=4k --direct="$DIRECT" --rw=randread
     --size="$SIZE" --runtime="$SECS" --time_based --invalidate=0 --output-format=json)
iops() { python3 -c "import json,sys; print(json.load(sys.stdin)['jobs'][0]['read']['iops'])"; }
"${job[@]}" --runtime=1 > /dev/null  # lays the file out
[ "$DIRECT" = 1 ] || cat "$file" > /dev/null  # and caches it
alone=() traced=()
for ((i = 0; i < PAIRS; i++)); do
  a=$("${job[@]}" | iops)
  t=$("$TRACE" -o /dev/null -- "${job[@]}" | iops)
  alone+=("$a") traced+=("$t")
  printf 'pair %d: alone %.0f IOPS, traced %.0f IOPS (%.3f)\n' "$i" "$a" "$t" "$(python3 -c "print($t/$a)")"
done
python3 - "${alone[*]}" "${traced[*]}" <<'PY'
import statistics, sys
a = [float(x) for x in sys.argv[1].split()]
t = [float(x) for x in sys.argv[2].split()]
print(f"median alone {statistics.median(a):.0f} IOPS, traced {statistics.median(t):.0f} IOPS, "
      f"ratio {statistics.median(t) / statistics.median(a):.3f}")
PY
rm -f "$file"
