#!/usr/bin/env bash
# Tests of aio-bench's engine mode and its fio-like options, run by ctest (label "examples"):
#   bash test_bench.sh CASE AIO_BENCH WORK_DIR
# Each CASE works in its own fresh directory under WORK_DIR (in the build tree: a real disk,
# so O_DIRECT is usually available) and exits non-zero with a message on the first failure;
# 77 (skip) only where the machine lacks what the case needs (fio, O_DIRECT, a tmpfs).
set -uo pipefail

case_name=$1
BENCH=$2
work=$3/bench-$case_name
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# shellcheck source=test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"


# check_json PYTHON_EXPR: evaluated with d = the JSON object in ./out; fails with the message.
check_json() {
  python3 -c 'import json,sys; d=json.load(open("out")); ok=eval(sys.argv[1]); sys.exit(0 if ok else 1)' "$1" ||
    fail "JSON check failed: $1; output: $(head -c 3000 out)"
}

case $case_name in
engine)
  # Engine mode (the default) batches by construction: page-cache reads complete inside
  # io_submit, so every engine run submits all qd requests in one io_submit and reaps them
  # from the ring: far less than one syscall per I/O. Batch mode with --batch 1 makes one
  # io_submit per I/O.
  expect_exit 0 "$BENCH" --file b.dat --size 4M --time 0.3 --qd 16 --json &&
    check_json 'd["options"]["mode"] == "engine" and d["batch"] is None and d["ios"] > 0 and d["syscalls_per_io"] <= 0.25'
  expect_exit 0 "$BENCH" --file b.dat --time 0.3 --qd 16 --engine --json &&
    check_json 'd["options"]["mode"] == "engine" and d["syscalls_per_io"] <= 0.25'
  expect_exit 0 "$BENCH" --file b.dat --time 0.3 --qd 16 --batch 1 --json &&
    check_json 'd["options"]["mode"] == "batch" and d["batch"] == 1 and d["syscalls_per_io"] >= 0.9'
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --qd 4 --rw randwrite
  grep -q 'qd 4, engine, 1 job' out || fail "table header lacks the mode: $(head -1 out)"
  expect_exit 2 "$BENCH" --file b.dat --engine --batch 2 && expect_one_line_stderr '^aio-bench: --engine and --batch exclude'
  # --stats: the engine's observer summary.
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --stats
  grep -q 'io_submit' err || fail "--stats printed no syscall counts: $(cat err)"
  ;;

mixed)
  # --rw randrw: reads and writes mixed at --rwmixread percent, accounted separately.
  for mode in "" "--batch 4"; do
    # shellcheck disable=SC2086
    if expect_exit 0 "$BENCH" --file b.dat --size 4M --time 0.4 --rw randrw --rwmixread 70 --json $mode; then
      check_json 'd["read"]["ios"] > 0 and d["write"]["ios"] > 0 and d["read"]["ios"] + d["write"]["ios"] == d["ios"]'
      check_json '0.6 <= d["read"]["ios"] / d["ios"] <= 0.8 and d["options"]["rwmixread"] == 70'
      check_json 'd["write"]["bytes"] == 4096 * d["write"]["ios"] and d["write"]["lat_us"]["p50"] > 0'
    fi
  done
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --rw randrw --rwmixread 100 --json &&
    check_json 'd["write"]["ios"] == 0 and d["read"]["ios"] == d["ios"] > 0'
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --rw randrw --rwmixread 0 --json &&
    check_json 'd["read"]["ios"] == 0 and d["write"]["ios"] == d["ios"] > 0'
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --rw randrw
  if ! grep -q '^  reads .* IOPS' out || ! grep -q '^  writes .* IOPS' out; then
    fail "randrw table lacks reads/writes: $(cat out)"
  fi
  expect_exit 2 "$BENCH" --file b.dat --rw randread --rwmixread 50 && expect_one_line_stderr '^aio-bench: --rwmixread needs --rw randrw'
  expect_exit 2 "$BENCH" --file b.dat --rw randrw --rwmixread 101 && expect_one_line_stderr '^aio-bench: --rwmixread'
  ;;

jobs)
  # --numjobs N: N threads, each with its own engine (or context), summed and per job.
  for mode in "" "--batch 2"; do
    # shellcheck disable=SC2086
    if expect_exit 0 "$BENCH" --file b.dat --size 4M --time 0.3 --qd 4 --numjobs 3 --json $mode; then
      check_json 'len(d["jobs"]) == 3 and all(j["ios"] > 0 for j in d["jobs"]) and sum(j["ios"] for j in d["jobs"]) == d["ios"]'
      check_json '[j["job"] for j in d["jobs"]] == [0, 1, 2] and d["options"]["numjobs"] == 3'
      check_json 'sum(j["syscalls"] for j in d["jobs"]) == d["syscalls"] and all(j["cpu_s"] > 0 for j in d["jobs"])'
    fi
  done
  expect_exit 0 "$BENCH" --file b.dat --time 0.2 --qd 4 -j 2
  grep -q '^  job 1 ' out || fail "no per-job line: $(cat out)"
  grep -q '2 jobs' out || fail "header lacks the job count: $(head -1 out)"
  expect_exit 2 "$BENCH" --file b.dat --numjobs 0 && expect_one_line_stderr '^aio-bench: numjobs'
  ;;

json)
  # --json: percentiles, mean, stddev, min and max latency, per direction and per job, the
  # tool's version and every option.
  expect_exit 0 "$BENCH" --version
  version=$(sed -n 's/^aio-bench (aiopp) \([0-9][0-9.]*\)$/\1/p' out)
  [ -n "$version" ] || fail "--version printed: $(cat out)"
  if expect_exit 0 "$BENCH" --file b.dat --size 4M --time 0.3 --qd 8 --numjobs 2 --json; then
    python3 -m json.tool <out >/dev/null || fail "invalid JSON: $(cat out)"
    check_json 'd["tool"] == "aio-bench" and d["version"] == "'"$version"'"'
    check_json 'all(k in d["options"] for k in ("file","rw","rwmixread","bs","qd","mode","batch","numjobs","time_s","direct","nowait","prio","size"))'
    check_json 'all(k in d["lat_us"] for k in ("p50","p90","p99","p99.9","mean","stddev","min","max"))'
    check_json 'd["lat_us"]["min"] <= d["lat_us"]["p50"] * 1.02 and d["lat_us"]["p50"] <= d["lat_us"]["p99"] <= d["lat_us"]["max"] * 1.02'
    check_json 'd["lat_us"]["min"] <= d["lat_us"]["mean"] <= d["lat_us"]["max"] and d["lat_us"]["stddev"] > 0'
    check_json 'all("mean" in j["lat_us"] and "max" in j["read"]["lat_us"] for j in d["jobs"])'
    check_json 'max(j["lat_us"]["max"] for j in d["jobs"]) == d["lat_us"]["max"]'
  fi
  ;;

size)
  # A --size smaller than one block names --size (usage error), not the file; a file smaller
  # than one block names the file and its real size; neither touches the file.
  head -c 8388608 /dev/urandom >big
  expect_exit 2 "$BENCH" --file big --size 1000 --time 0.1 &&
    expect_one_line_stderr '^aio-bench: --size 1000 is smaller than the block size 4096'
  [ "$(stat -c %s big)" = 8388608 ] || fail "the file changed size"
  expect_exit 0 "$BENCH" --file big --size 4096 --time 0.1 --json && check_json 'd["size"] == 4096 and d["ios"] > 0'
  head -c 1000 /dev/urandom >small
  expect_exit 1 "$BENCH" --file small --time 0.1 &&
    expect_one_line_stderr '^aio-bench: small: file \(1000 bytes\) is smaller than the block size 4096'
  expect_exit 0 "$BENCH" --file small --bs 512 --time 0.1
  [ "$(stat -c %s small)" = 1000 ] || fail "the small file changed size"
  ;;

nowait_tmpfs)
  # tmpfs refuses RWF_NOWAIT reads with EOPNOTSUPP at io_submit: one note, and the run goes on
  # without the flag (engine and batch mode). A file system that accepts it: no note at all.
  shm=/dev/shm
  if [ "$(stat -f -c %T $shm 2>/dev/null)" != tmpfs ] || ! dir=$(mktemp -d $shm/aio-bench-test.XXXXXX); then
    echo "SKIP: no writable tmpfs at $shm"
    exit 77
  fi
  trap 'rm -rf "$dir"' EXIT
  for mode in "" "--batch 4"; do
    # shellcheck disable=SC2086
    if expect_exit 0 "$BENCH" --file "$dir/t.dat" --size 1M --time 0.2 --qd 8 --nowait --json $mode; then
      check_json 'd["ios"] > 0 and d["options"]["nowait"]'
      if [ -s err ]; then
        expect_one_line_stderr "^aio-bench: note: $dir/t.dat: RWF_NOWAIT reads are not supported here \(EOPNOTSUPP\); going on without --nowait$"
      fi
    fi
  done
  ;;

fio)
  # aio-bench and fio (libaio engine) on the same job: O_DIRECT 4 KiB random reads at QD 32
  # of one file on the build tree's disk, ~2 s each. IOPS within 0.5x..2x of fio's; latency
  # p50 within 3x and p99 within 10x (the same order of magnitude).
  if ! command -v fio >/dev/null; then
    echo "SKIP: fio is not installed (apt-get install fio)"
    exit 77
  fi
  expect_exit 0 "$BENCH" --file d.dat --size 128M --time 0.1 || exit 1
  if ! python3 -c 'import os; os.close(os.open("d.dat", os.O_RDONLY | os.O_DIRECT))' 2>/dev/null; then
    echo "SKIP: O_DIRECT is not supported on $(stat -f -c %T .)"
    exit 77
  fi
  if ! fio --name=cmp --filename=d.dat --rw=randread --bs=4k --iodepth=32 --ioengine=libaio --direct=1 \
      --size=128M --time_based --runtime=2 --output-format=json >fio.json 2>fio.err; then
    if grep -qi 'libaio' fio.err; then
      echo "SKIP: fio has no libaio engine here: $(head -1 fio.err)"
      exit 77
    fi
    fail "fio failed: $(cat fio.err)"
    exit 1
  fi
  if expect_exit 0 "$BENCH" --file d.dat --rw randread --bs 4K --qd 32 --direct --time 2 --json; then
    python3 - fio.json out <<'EOF' || fail "aio-bench and fio disagree (see above)"
import json, sys
fio = json.load(open(sys.argv[1]))["jobs"][0]["read"]
ours = json.load(open(sys.argv[2]))
pct = fio["clat_ns"]["percentile"]
f = {"iops": fio["iops"], "p50": pct["50.000000"] / 1e3, "p99": pct["99.000000"] / 1e3}
a = {"iops": ours["iops"], "p50": ours["lat_us"]["p50"], "p99": ours["lat_us"]["p99"]}
print("fio:       IOPS %.0f  p50 %.1f us  p99 %.1f us" % (f["iops"], f["p50"], f["p99"]))
print("aio-bench: IOPS %.0f  p50 %.1f us  p99 %.1f us" % (a["iops"], a["p50"], a["p99"]))
ok = True
for key, lo, hi in (("iops", 0.5, 2.0), ("p50", 1 / 3, 3.0), ("p99", 0.1, 10.0)):
    r = a[key] / f[key] if f[key] > 0 else float("inf")
    if not lo <= r <= hi:
        print("%s: aio-bench / fio = %.2f, outside %.2f..%.2f" % (key, r, lo, hi))
        ok = False
sys.exit(0 if ok else 1)
EOF
  fi
  rm -f d.dat
  ;;

*)
  echo "unknown case $case_name" >&2
  exit 2
  ;;
esac

finish
