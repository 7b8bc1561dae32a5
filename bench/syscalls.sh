#!/bin/sh
# bench/syscalls.sh — syscalls per I/O, per arm, counted by strace -c -f over one arm's run
# of OPS operations (io_setup/io_destroy and the warm-up are included and round to ~0).
#   WORKLOADS="read64 poll"  BATCHES="1 8 32 128"  OPS=20000  AIOPP_BENCH=path/to/binary
set -eu
here=$(cd "$(dirname "$0")" && pwd)
bin=${AIOPP_BENCH:-$here/../build/bench/bench/aiopp-bench-compare}
ops=${OPS:-20000}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/aiopp-st.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
arms=${ARMS:-"raw aiopp-syscall aiopp-ring engine-cb engine-coro libaio liburing"}
printf '%-8s %5s %-14s %10s %13s %14s %15s\n' workload batch arm io_submit io_getevents io_pgetevents io_uring_enter
for w in ${WORKLOADS:-read64 poll}; do
  for b in ${BATCHES:-1 8 32 128}; do
    for a in $arms; do
      if ! strace -f -c -o "$tmp/st" -e trace=io_submit,io_getevents,io_pgetevents,io_uring_enter \
          "$bin" --callgrind-arm "$a" --workload "$w" --batch "$b" --ops "$ops" > "$tmp/stdout" 2>/dev/null; then
        continue
      fi
      n=$(sed -n 's/^SINGLE .* warmup \([0-9]*\) ops \([0-9]*\)$/\1 + \2/p' "$tmp/stdout")
      n=$(($n))  # the warm-up ops are traced too
      awk -v w="$w" -v b="$b" -v a="$a" -v n="$n" '
        $NF ~ /^(io_submit|io_getevents|io_pgetevents|io_uring_enter)$/ {
          c[$NF] = $4 }
        END { printf "%-8s %5s %-14s %10.3f %13.3f %14.3f %15.3f\n", w, b, a,
              c["io_submit"] / n, c["io_getevents"] / n, c["io_pgetevents"] / n, c["io_uring_enter"] / n }' "$tmp/st"
    done
  done
done
