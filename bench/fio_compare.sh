#!/bin/sh
# bench/fio_compare.sh FILE — O_DIRECT 4 KiB random reads of FILE (on a real disk, e.g. 1 GiB)
# by fio's libaio engine, aio-bench's engine mode and aio-bench --batch 1 (one request per
# io_submit), alternated, REPEAT (default 3) times per queue depth, TIME (default 3) seconds
# each. Prints one line per run: IOPS, CPU per I/O (user + system; fio: its usr_cpu + sys_cpu
# of the job's runtime), latency p50/p99.
#   AIO_BENCH=path/to/aio-bench (default: build/default/examples/aio-bench)  DEPTHS="32 128"
set -eu
file=${1:?usage: fio_compare.sh FILE}
here=$(cd "$(dirname "$0")" && pwd)
bench=${AIO_BENCH:-$here/../build/default/examples/aio-bench}
repeat=${REPEAT:-3}
time=${TIME:-3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aiopp-fio.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
command -v fio >/dev/null || { echo "fio_compare.sh: fio is not installed (apt-get install fio)" >&2; exit 1; }

fio_run() {  # fio_run QD
  fio --name=r --filename="$file" --rw=randread --bs=4k --iodepth="$1" --ioengine=libaio --direct=1 \
    --time_based --runtime="$time" --output-format=json >"$tmp/fio.json"
  python3 - "$tmp/fio.json" "$1" <<'EOF'
import json, sys
j = json.load(open(sys.argv[1]))["jobs"][0]
r = j["read"]
ios = r["total_ios"]
cpu_s = (j["usr_cpu"] + j["sys_cpu"]) / 100.0 * j["job_runtime"] / 1000.0
p = r["clat_ns"]["percentile"]
print("%4s %-16s %9.0f %9.2f %9.1f %9.1f" % (sys.argv[2], "fio-libaio", r["iops"], cpu_s * 1e6 / ios,
      p["50.000000"] / 1e3, p["99.000000"] / 1e3))
EOF
}

bench_run() {  # bench_run QD LABEL [aio-bench options]
  qd=$1
  label=$2
  shift 2
  "$bench" --file "$file" --rw randread --bs 4K --qd "$qd" --direct --time "$time" --json "$@" >"$tmp/b.json"
  python3 - "$tmp/b.json" "$qd" "$label" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
print("%4s %-16s %9.0f %9.2f %9.1f %9.1f" % (sys.argv[2], sys.argv[3], d["iops"], d["cpu_us_per_io"],
      d["lat_us"]["p50"], d["lat_us"]["p99"]))
EOF
}

printf '%4s %-16s %9s %9s %9s %9s\n' QD run IOPS "CPU us/IO" "p50 us" "p99 us"
for qd in ${DEPTHS:-32 128}; do
  i=1
  while [ "$i" -le "$repeat" ]; do
    fio_run "$qd"
    bench_run "$qd" aio-bench-engine
    bench_run "$qd" aio-bench-batch1 --batch 1
    i=$((i + 1))
  done
done
