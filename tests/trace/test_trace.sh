#!/usr/bin/env bash
# aio-trace / libaiopp-trace.so tests, one case per ctest test (label "trace"):
#   test_trace.sh CASE AIO_TRACE LIB RAW_AIO ABI WORK
# Cases on programs no one here wrote skip (exit 77) when their Debian package is missing:
# fio, sysbench, qemu-utils (qemu-io, qemu-img). Each case takes seconds.
set -euo pipefail

case_name=$1 TRACE=$2 LIB=$3 RAW=$4 ABI=$5 WORK=$6
W=$WORK/$case_name
rm -rf "$W" && mkdir -p "$W"
cd "$W"

# A sanitizer build's test programs run with the interposer preloaded ahead of their runtime.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"

fail() { echo "FAIL: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || { echo "SKIP: $1 not installed (apt-get install $2)"; exit 77; }; }
# The system's python3 when there is one: a version manager's shim costs ~0.5 s a start.
PY=/usr/bin/python3
[ -x $PY ] || PY=python3
# jq-like queries with python3: q FILE EXPR, where `j` is the parsed JSON.
q() { $PY -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }
# expect_calls JSON PROCESS CALL:COUNT...: the process's record counts exactly those calls.
expect_calls() {
  local json=$1 p=$2 kv got
  shift 2
  for kv in "$@"; do
    got=$(q "$json" "$p['syscalls']['${kv%%:*}']['duration']['count']")
    [ "$got" = "${kv#*:}" ] || fail "${kv%%:*}: $got calls, expected ${kv#*:}"
  done
}
# The one process of the report that made AIO calls and whose cmdline contains $2.
proc() { echo "[p for p in j['processes'] if '$2' in p['cmdline'] and sum(s['duration']['count'] for s in p['syscalls'].values())>0]"; }

# O_DIRECT needs a file system that has it (not tmpfs on old kernels): the work directory's.
direct_ok() { $PY -c "import os,sys; os.close(os.open(sys.argv[1], os.O_RDWR|os.O_CREAT|os.O_DIRECT))" "$W/direct-probe" 2>/dev/null; }

case $case_name in
raw)  # exact counts of a program making syscall(SYS_io_*) itself
  "$TRACE" --json t.json -o t.txt -- "$RAW" "$W" > out.txt
  pid=$(sed -n 's/^pid=//p' out.txt)
  P="[p for p in j['processes'] if p['pid']==$pid][0]"
  expect_calls t.json "$P" io_setup:1 io_submit:7 io_getevents:4 io_pgetevents:1 io_cancel:1 io_destroy:1
  [ "$(q t.json "$P['requests']['submitted']")" = 14 ] || fail "requests submitted != 14"
  [ "$(q t.json "$P['requests']['completed']")" = 14 ] || fail "requests completed != 14"
  [ "$(q t.json "$P['requests']['never_seen_completing']")" = 0 ] || fail "requests never seen"
  [ "$(q t.json "$P['requests']['inflight_high_water']")" = 4 ] || fail "high-water mark != 4"
  [ "$(q t.json "$P['latency_by_opcode']['pread']['requests']")" = 14 ] || fail "pread requests != 14"
  q t.json "[f['file'] for f in $P['latency_by_file'] if f['requests']==14][0]" | grep -q '/raw_aio.data$' \
    || fail "file breakdown lacks raw_aio.data"
  [ "$(q t.json "[c['count'] for c in $P['top_calls'] if c['call']=='io_submit' and c['nr']==4][0]")" = 3 ] \
    || fail "top calls: io_submit(nr=4) not 3 times"
  q t.json "$P['exited']" | grep -q True || fail "exit() not recorded"
  # pread(offset 0, 4096) three times (round 0, the misaligned O_DIRECT one, the last), eleven others once
  grep -q '^request_errno=unsupported\|^direct_submit_errno=' out.txt && again=2 || again=3
  [ "$(q t.json "[(t['opcode'], t['offset'], t['nbytes'], t['count']) for t in $P['top_requests']]")" \
    = "[('pread', 0, 4096, $again)]" ] || fail "repeated requests: $(q t.json "$P['top_requests']")"
  [ "$(q t.json "$P['distinct_requests']")" = 12 ] || fail "distinct requests != 12"
  grep -q "^ *${again}x pread .*/raw_aio.data offset=0 len=4096$" t.txt || fail "repeated request not in the text report"
  ;;
fork)  # a forked child that leaves through _exit() keeps its own record; a request left in flight
  "$TRACE" --json t.json -- "$RAW" "$W" fork > out.txt
  child=$(sed -n 's/^child_pid=//p' out.txt)
  C="[p for p in j['processes'] if p['pid']==$child][0]"
  [ "$(q t.json "len(j['processes'])")" = 2 ] || fail "expected 2 processes"
  expect_calls t.json "$C" io_setup:1 io_submit:1 io_getevents:1 io_destroy:0
  [ "$(q t.json "$C['requests']['submitted']")" = 3 ] || fail "child submitted != 3"
  [ "$(q t.json "$C['requests']['completed']")" = 2 ] || fail "child completed != 2"
  [ "$(q t.json "$C['requests']['unseen_at_exit']")" = 1 ] || fail "child: the poll left in flight not counted"
  q t.json "$C['exited']" | grep -q False || fail "child's _exit() reported as exit()"
  [ "$(q t.json "[p for p in j['processes'] if p['pid']!=$child][0]['syscalls']['io_submit']['duration']['count']")" = 7 ] \
    || fail "the parent's record changed by the child"
  ;;
exec)  # an exec'd image starts a record of its own under the same pid
  "$TRACE" --json t.json -- sh -c "exec \"$RAW\" \"$W\" > \"$W/out.txt\""
  pid=$(sed -n 's/^pid=//p' out.txt)
  [ "$(q t.json "len([p for p in j['processes'] if p['pid']==$pid])")" = 2 ] || fail "expected two images of pid $pid"
  [ "$(q t.json "sorted(p['syscalls']['io_submit']['duration']['count'] for p in j['processes'] if p['pid']==$pid)")" = "[0, 7]" ] \
    || fail "the shell's and the program's records"
  ;;
threads)  # 4 threads on one context: exact totals (the record is shared by every thread)
  "$TRACE" --json t.json -- "$RAW" "$W" threads > out.txt
  pid=$(sed -n 's/^pid=//p' out.txt)
  P="[p for p in j['processes'] if p['pid']==$pid][0]"
  expect_calls t.json "$P" io_setup:2 io_submit:807 io_getevents:804 io_destroy:2
  [ "$(q t.json "$P['requests']['submitted']")" = 814 ] || fail "requests submitted != 814"
  [ "$(q t.json "$P['requests']['completed']")" = 814 ] || fail "requests completed != 814"
  [ "$(q t.json "$P['requests']['never_seen_completing']")" = 0 ] || fail "requests never seen"
  [ "$(q t.json "$P['latency']['count']")" = 814 ] || fail "latencies measured != 814"
  # 800 reads over 16 offsets (50 each) after the main sequence's 12 offsets (offset 0 three times)
  [ "$(q t.json "$P['distinct_requests']")" = 16 ] || fail "distinct requests != 16"
  [ "$(q t.json "sum(t['count'] for t in $P['top_requests'])")" -ge $((53 + 4 * 51)) ] || fail "top requests' counts"
  [ "$(q t.json "$P['top_requests'][0]['offset']")" = 0 ] || fail "offset 0 is not the most repeated request"
  ;;
errors)  # the errno the program got, in the text report: per call and per request
  "$TRACE" -o t.txt -- "$RAW" "$W" > out.txt
  sub=$(sed -n 's/^submit_errno=//p' out.txt)
  can=$(sed -n 's/^cancel_errno=//p' out.txt)
  req=$(sed -n 's/^request_errno=//p' out.txt)
  grep -q "call errors:.* io_submit $sub x1;" t.txt || fail "io_submit $sub not in: $(grep errors t.txt)"
  grep -q "call errors:.* io_cancel $can x1;" t.txt || fail "io_cancel $can not in the report"
  efault=$(sed -n 's/^efault_errno=//p' out.txt)
  grep -q "call errors:.* io_submit $efault x1;" t.txt || fail "io_submit $efault not in the report"
  if [ "$req" != unsupported ]; then
    grep -q "request errors (completions): $req x1;" t.txt || fail "request $req not in the report"
  fi
  ;;
abi)  # every versioned libaio symbol, untraced and traced
  "$ABI" "$LIB" "$LIB" | tee abi.txt
  grep -qx "abi ok" abi.txt || fail "abi checks"
  "$TRACE" --json t.json -- "$ABI" "$LIB" "$LIB" | grep -qx "abi ok" || fail "abi checks under aio-trace"
  ;;
c_abi)  # a C program linked against the interposer: libaio's default versions, traced with exact counts
  CABI=$(dirname "$ABI")/trace_c_abi
  [ -x "$CABI" ] || { echo "SKIP: no C compiler, trace_c_abi not built"; exit 77; }
  readelf --dyn-syms -W "$CABI" | grep -q ' io_getevents@LIBAIO_0.4' || fail "io_getevents not bound to LIBAIO_0.4"
  "$CABI" "$LIB" | grep -qx "c abi ok" || fail "C program on the library"
  "$TRACE" --json t.json -- "$CABI" "$LIB" | grep -qx "c abi ok" || fail "C program under aio-trace"
  P="$(proc t.json trace_c_abi)[0]"
  expect_calls t.json "$P" io_setup:1 io_submit:3 io_destroy:1
  [ "$(q t.json "$P['requests']['submitted']")" = 4 ] || fail "requests submitted != 4"
  [ "$(q t.json "$P['requests']['completed']")" = 4 ] || fail "requests completed != 4"
  [ "$(q t.json "[e['count'] for e in $P['call_errors'] if e['name']=='EBADF'][0]")" = 1 ] || fail "EBADF not reported"
  ;;
off_switch)  # AIOPP_TRACE=off: the same calls, nothing recorded
  mkdir rec
  AIOPP_TRACE=off AIOPP_TRACE_DIR=$W/rec LD_PRELOAD=$LIB "$RAW" "$W" > out.txt
  grep -q '^pid=' out.txt || fail "program failed with AIOPP_TRACE=off"
  [ -z "$(ls rec)" ] || fail "AIOPP_TRACE=off recorded"
  AIOPP_TRACE_DIR=$W/rec LD_PRELOAD=$LIB "$RAW" "$W" > out.txt
  [ "$(ls rec | wc -l)" = 1 ] || fail "no record without AIOPP_TRACE=off"
  ;;
cli)
  "$TRACE" --help | grep -q '^Usage: aio-trace' || fail "--help"
  "$TRACE" --version | grep -q '^aio-trace (aiopp) [0-9]' || fail "--version"
  set +e
  "$TRACE" -- no-such-command-xyz 2> err.txt; rc=$?
  set -e
  [ $rc = 127 ] || fail "missing command: exit $rc, expected 127"
  [ "$(cat err.txt)" = "aio-trace: no-such-command-xyz: command not found" ] || fail "missing command message: $(cat err.txt)"
  set +e
  "$TRACE" -o /nonexistent-dir/report.txt -- touch "$W/ran" 2> err.txt; rc=$?
  set -e
  [ $rc = 1 ] || fail "unwritable output: exit $rc"
  [ "$(wc -l < err.txt)" = 1 ] && grep -q '^aio-trace: cannot write /nonexistent-dir/report.txt: ' err.txt \
    || fail "unwritable output message: $(cat err.txt)"
  [ ! -e ran ] || fail "the command ran although the output is unwritable"
  set +e
  "$TRACE" --json 2> err.txt; rc=$?
  set -e
  [ $rc = 2 ] && [ "$(wc -l < err.txt)" = 1 ] || fail "missing option value: exit $rc"
  set +e
  "$TRACE" 2> err.txt; rc=$?
  set -e
  [ $rc = 2 ] && grep -q '^aio-trace: no command given' err.txt || fail "no command: exit $rc"
  "$TRACE" --interval 0.05 -o t.txt -- sh -c "\"$RAW\" \"$W\" >/dev/null; sleep 0.3" 2> live.txt
  grep -q '^aio-trace: \[[0-9.]*s\] pid [0-9]*: ' live.txt || fail "--interval printed no snapshot"
  ;;
static)  # a static binary: said so, run untouched
  bin=$(command -v ldconfig || echo /sbin/ldconfig)
  file_out=$(od -An -c -N4 "$bin" 2>/dev/null | tr -d ' ')
  [ "$file_out" = "177ELF" ] || { echo "SKIP: no ldconfig"; exit 77; }
  if readelf -l "$bin" 2>/dev/null | grep -q INTERP; then echo "SKIP: ldconfig is not static here"; exit 77; fi
  "$TRACE" -o t.txt -- "$bin" -p > /dev/null || fail "static command failed"
  grep -q 'statically linked' t.txt || fail "report does not say the binary is static: $(cat t.txt)"
  ;;
no_aio)
  "$TRACE" -o t.txt -- /bin/true
  grep -q '^no AIO calls: pid [0-9]* (true)$' t.txt || fail "no-AIO process not reported as such: $(cat t.txt)"
  grep -q '1 process traced, 0 made AIO calls' t.txt || fail "summary line"
  ;;
exit_status)
  set +e
  "$TRACE" -o t.txt -- sh -c 'exit 7'; rc=$?
  "$TRACE" -o t2.txt -- sh -c 'kill -TERM $$'; rc2=$?
  set -e
  [ $rc = 7 ] || fail "exit status $rc, expected 7"
  [ $rc2 = 143 ] || fail "killed command: $rc2, expected 143"
  # SIGTERM to aio-trace goes to the command; the report still comes.
  "$TRACE" -o t3.txt -- sleep 30 & tpid=$!
  sleep 0.3
  kill -TERM $tpid
  set +e
  wait $tpid; rc3=$?
  set -e
  [ $rc3 = 143 ] || fail "SIGTERM: exit $rc3, expected 143"
  grep -q 'process traced' t3.txt || fail "no report after SIGTERM"
  ;;
fio_randread|fio_randwrite_verify)
  need fio fio
  direct_ok || { echo "SKIP: no O_DIRECT in $W"; exit 77; }
  if [ $case_name = fio_randread ]; then
    args=(--rw=randread --size=16M --runtime=1 --time_based)
  else
    args=(--rw=randwrite --size=8M --verify=crc32c --do_verify=1)
  fi
  "$TRACE" --json t.json -o t.txt -- fio --name=job --filename="$W/fio.data" --ioengine=libaio --iodepth=32 \
    --bs=4k --direct=1 "${args[@]}" --output-format=json --output="$W/fio.json"
  P="$(proc t.json fio)[0]"
  [ "$(q t.json "len($(proc t.json fio))")" = 1 ] || fail "expected one fio process with AIO"
  ios=$(q fio.json "sum(j['jobs'][0][d]['total_ios'] for d in ('read','write','trim'))")
  sub=$(q t.json "$P['requests']['submitted']")
  echo "fio issued $ios I/Os, the trace saw $sub requests"
  [ "$sub" = "$ios" ] || fail "trace requests $sub != fio's issued I/Os $ios"
  [ "$(q t.json "$P['requests']['completed']")" = "$ios" ] || fail "not every request seen completing"
  [ "$(q fio.json "j['jobs'][0]['error']")" = 0 ] || fail "fio reported an error (verify?)"
  if [ $case_name = fio_randwrite_verify ]; then  # the verify pass read back every block written
    [ "$(q fio.json "j['jobs'][0]['read']['total_ios']")" = "$(q fio.json "j['jobs'][0]['write']['total_ios']")" ] \
      || fail "fio's verify pass did not read back what was written"
    [ "$(q t.json "$P['latency_by_opcode']['pread']['requests']")" = "$(q fio.json "j['jobs'][0]['read']['total_ios']")" ] \
      || fail "the trace's preads != fio's verify reads"
  fi
  dir=$([ $case_name = fio_randread ] && echo read || echo write)
  op=$([ $case_name = fio_randread ] && echo pread || echo pwrite)
  clat=$(q fio.json "j['jobs'][0]['$dir']['clat_ns']['percentile']['50.000000']")
  p50=$(q t.json "$P['latency_by_opcode']['$op']['latency']['p50_ns']")
  echo "$op p50: trace $p50 ns, fio clat p50 $clat ns"
  $PY -c "import sys; a,b=float(sys.argv[1]),float(sys.argv[2]); sys.exit(0 if 0.5*b <= a <= 2*b+20000 else 1)" \
    "$p50" "$clat" || fail "trace p50 $p50 ns not in the range of fio's clat p50 $clat ns"
  q t.json "[f['file'] for f in $P['latency_by_file']]" | grep -q "fio.data" || fail "fio.data not in the file breakdown"
  [ "$(q t.json "$P['requests']['inflight_high_water']")" -le 32 ] || fail "high-water mark above iodepth"
  ;;
fio_drop_in)  # libaio.so.1 by LD_LIBRARY_PATH: fio runs on it, recording or (AIOPP_TRACE=off) not
  need fio fio
  direct_ok || { echo "SKIP: no O_DIRECT in $W"; exit 77; }
  libdir=$(dirname "$LIB")
  [ -e "$libdir/libaio.so.1" ] || fail "no libaio.so.1 next to $LIB"
  mkdir rec
  run() { fio --name=job --filename="$W/fio.data" --ioengine=libaio --iodepth=8 --bs=4k --direct=1 --rw=randread \
            --size=4M --io_size=1M --output-format=json --output="$W/$1"; }
  AIOPP_TRACE_DIR=$W/rec LD_LIBRARY_PATH=$libdir run on.json
  ls rec | grep -q '\.rec$' || fail "fio did not load libaio.so.1 from $libdir"
  rm -f rec/*
  AIOPP_TRACE=off AIOPP_TRACE_DIR=$W/rec LD_LIBRARY_PATH=$libdir run off.json
  [ -z "$(ls rec)" ] || fail "AIOPP_TRACE=off recorded"
  [ "$(q off.json "j['jobs'][0]['read']['total_ios']")" = 256 ] || fail "fio on the drop-in did not read 1 MiB"
  ;;
sysbench)
  need sysbench sysbench
  direct_ok || { echo "SKIP: no O_DIRECT in $W"; exit 77; }
  sb=(sysbench fileio --file-total-size=8M --file-num=2 --file-test-mode=rndrd --file-io-mode=async
      --file-extra-flags=direct --file-async-backlog=32 --time=1)
  "${sb[@]}" prepare > /dev/null
  "$TRACE" --json t.json -o t.txt -- "${sb[@]}" run > sb.txt
  "${sb[@]}" cleanup > /dev/null
  P="$(proc t.json sysbench)[0]"
  reads=$(sed -n 's/^ *reads\/s: *//p' sb.txt)
  sub=$(q t.json "$P['requests']['submitted']")
  done_=$(q t.json "$P['requests']['completed']")
  echo "sysbench reads/s $reads; the trace: $sub requests, $done_ seen completing"
  [ "$sub" -gt 0 ] || fail "no requests seen"
  [ "$done_" = "$sub" ] || fail "sysbench requests not all seen completing ($done_ of $sub)"
  [ "$(q t.json "$P['latency_by_opcode']['pread']['requests']")" = "$sub" ] || fail "not every request a pread"
  [ "$(q t.json "$P['syscalls']['io_setup']['duration']['count']")" -ge 1 ] || fail "no io_setup"
  ;;
qemu_io)  # qemu reaps completions from the ring itself: they are counted as never seen completing
  need qemu-io qemu-utils
  need qemu-img qemu-utils
  direct_ok || { echo "SKIP: no O_DIRECT in $W"; exit 77; }
  qemu-img create -q -f raw disk.img 8M
  "$TRACE" --json t.json -o t.txt -- qemu-io --aio native -n -f raw \
    -c 'write -P 0xab 0 1M' -c 'read -P 0xab 0 1M' -c 'write -P 0xcd 4096 4096' -c 'read -P 0xcd 4096 4096' disk.img > q.txt
  grep -q 'Pattern verification failed' q.txt && fail "qemu-io verify failed"
  P="$(proc t.json qemu-io)[0]"
  sub=$(q t.json "$P['requests']['submitted']")
  seen=$(q t.json "$P['requests']['completed']")
  never=$(q t.json "$P['requests']['never_seen_completing']")
  echo "qemu-io: $sub requests, $seen seen completing, $never never seen completing"
  [ "$sub" -ge 4 ] || fail "fewer than 4 requests traced"
  [ $((seen + never)) = "$sub" ] || fail "requests $sub != seen $seen + never seen $never"
  q t.json "[f['file'] for f in $P['latency_by_file']]" | grep -q "disk.img" || fail "disk.img not in the file breakdown"
  ;;
*) fail "unknown case $case_name" ;;
esac
echo "ok: $case_name"
