#!/usr/bin/env bash
# Tests of the example tools, run by ctest (label "examples"):
#   bash test_tools.sh CASE AIO_COPY AIO_POLL AIO_BENCH WORK_DIR
# Each CASE works in its own fresh directory under WORK_DIR (in the build tree, so
# O_DIRECT is usually available) and exits non-zero with a message on the first failure.
set -uo pipefail

case_name=$1
COPY=$2
POLL=$3
BENCH=$4
work=$5/$case_name
rm -rf "$work"
mkdir -p "$work"
cd "$work" || exit 1
# shellcheck source=test_lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/test_lib.sh"

# stderr must be exactly one line starting with the given prefix.
expect_one_line_error() {
  local prefix=$1
  if [ "$(wc -l <err)" != 1 ] || ! grep -q "^$prefix" err; then
    fail "expected one stderr line starting with '$prefix', got: $(cat err)"
  fi
}

make_file() {  # make_file NAME SIZE_IN_BYTES [MODE]
  head -c "$2" /dev/urandom >"$1"
  chmod "${3:-644}" "$1"
}

# tmux on a private server (its own socket), removed when the case ends; skip (77) without it.
need_tmux() {
  if ! command -v tmux >/dev/null; then
    [ "$failures" = 0 ] || exit 1
    echo "SKIP: needs tmux (a real terminal of a given size)"
    exit 77
  fi
  TMUX_SOCKET=aiopp-test-$$
  trap 'tmux -L "$TMUX_SOCKET" kill-server 2>/dev/null' EXIT
}
tm() { TERM=${TERM:-xterm} tmux -L "$TMUX_SOCKET" -f /dev/null "$@"; }
# wait_pane PATTERN SECONDS: until the pane shows PATTERN (grep -E); the pane is in ./pane.
wait_pane() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    tm capture-pane -p -J >pane 2>/dev/null
    grep -qE "$1" pane && return 0
    sleep 0.1
  done
  fail "the terminal never showed '$1': $(cat pane)"
  return 1
}

# same_data A B: the same size and bytes, reading only the data extents of either file
# (SEEK_DATA/SEEK_HOLE: the rest reads as zeros in both) — cmp for sparse files, fast.
same_data() {
  python3 - "$1" "$2" <<'PY'
import os, sys
a, b = (os.open(p, os.O_RDONLY) for p in sys.argv[1:3])
size = os.fstat(a).st_size
if os.fstat(b).st_size != size:
    sys.exit(1)
def extents(fd):
    pos, out = 0, []
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError:
            break
        pos = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, pos))
    return out
for start, end in extents(a) + extents(b):
    for off in range(start, end, 1 << 20):
        n = min(end - off, 1 << 20)
        if os.pread(a, n, off) != os.pread(b, n, off):
            sys.exit(1)
PY
}

no_leftovers() {  # no temp files in the given directory
  if ls -A "$1" | grep -q 'aio-copy'; then
    fail "temp files left in $1: $(ls -A "$1" | grep aio-copy)"
  fi
}

check_copy() {  # check_copy SRC DST: same bytes, same permission bits
  if ! cmp -s "$1" "$2"; then
    fail "content differs: $1 vs $2"
  elif [ "$(stat -c %a "$1")" != "$(stat -c %a "$2")" ]; then
    fail "mode differs: $1 $(stat -c %a "$1") vs $2 $(stat -c %a "$2")"
  fi
}

case $case_name in
copy_sizes)
  sizes=(0 1 4095 4096 4097 1048576 1048577 3670016)
  modes=(644 600 755 640 444 604 700 664)
  combos=(
    ""
    "-q 1 -b 4K --no-direct"
    "-q 4 -b 64K --direct"
    "-q 64 -b 4K --direct --sync"
    "-q 4 -b 1M --no-direct --sync"
    "-q 64 -b 1M"
    "-q 1 -b 64K --direct"
    "--queue-depth=3 --block-size=12K --no-direct"
  )
  i=0
  for size in "${sizes[@]}"; do
    make_file "src_$size" "$size" "${modes[$i]}"
    i=$((i + 1))
  done
  for combo in "${combos[@]}"; do
    for size in "${sizes[@]}"; do
      rm -f dst
      # shellcheck disable=SC2086
      if expect_exit 0 "$COPY" --no-progress $combo "src_$size" dst; then
        check_copy "src_$size" dst
        grep -q "^aio-copy: $size bytes in .* I/Os, .* syscalls" out || fail "summary line missing: $(cat out)"
        [ "$(wc -l <out)" = 1 ] || fail "more than one line on stdout: $(cat out)"
      fi
    done
  done
  # Overwriting an existing destination replaces it (and its mode).
  make_file old 5000 600
  expect_exit 0 "$COPY" src_4097 old && check_copy src_4097 old
  # --progress forced on: the bar goes to stderr, the copy is still exact.
  expect_exit 0 "$COPY" --progress -b 64K src_3670016 prog && check_copy src_3670016 prog
  grep -q '100.0%' err || fail "--progress printed no bar: $(cat err)"
  # --stats: the observer's summary on stderr, counting the submits and the latency.
  expect_exit 0 "$COPY" --stats -q 4 -b 64K src_3670016 stats && check_copy src_3670016 stats
  grep -q 'io_submit' err || fail "--stats printed no syscall counts: $(cat err)"
  grep -q 'latency (submit->reap' err || fail "--stats printed no latency: $(cat err)"
  no_leftovers .
  ;;

copy_dir)
  make_file src 100000 640
  mkdir d
  expect_exit 0 "$COPY" src d && check_copy src d/src
  expect_exit 0 "$COPY" "$PWD/src" "$PWD/d/" && check_copy src d/src
  # Copying a file into its own directory is a self-copy.
  expect_exit 1 "$COPY" d/src d && expect_one_line_error "aio-copy: .*same file"
  # Through a symlink: the target is written, the link kept.
  make_file target 10 644
  ln -s target link
  expect_exit 0 "$COPY" src link && check_copy src target
  [ -L link ] || fail "the symlink was replaced"
  no_leftovers .
  no_leftovers d
  ;;

copy_errors)
  make_file src 70000 644
  make_file keep 1234 600
  cp keep keep.orig
  # Self-copy, directly and through a hard link: refused, DST untouched.
  expect_exit 1 "$COPY" src src && expect_one_line_error "aio-copy: 'src' and 'src' are the same file"
  ln src hard
  expect_exit 1 "$COPY" src hard && expect_one_line_error "aio-copy: .*same file"
  cmp -s src hard || fail "self-copy changed the file"
  # Missing SRC.
  expect_exit 1 "$COPY" missing keep && expect_one_line_error "aio-copy: missing: No such file or directory"
  cmp -s keep keep.orig || fail "missing SRC changed DST"
  # SRC not a regular file.
  mkdir dir
  expect_exit 1 "$COPY" dir x && expect_one_line_error "aio-copy: dir: Is a directory"
  expect_exit 1 "$COPY" /dev/null x && expect_one_line_error "aio-copy: /dev/null: not a regular file"
  # DST in a directory that does not exist / is not a directory.
  expect_exit 1 "$COPY" src nodir/x && expect_one_line_error "aio-copy: nodir/x: No such file or directory"
  expect_exit 1 "$COPY" src keep/x && expect_one_line_error "aio-copy: keep/x: Not a directory"
  expect_exit 1 "$COPY" src newdir/ && expect_one_line_error "aio-copy: newdir/: Not a directory"
  # Unwritable DST directory (permissions do not stop root: then only when not root).
  mkdir ro
  chmod 555 ro
  if [ "$(id -u)" != 0 ]; then
    expect_exit 1 "$COPY" src ro/x && expect_one_line_error "aio-copy: ro/x: Permission denied"
  fi
  # A directory where no file can be created, even by root.
  if [ -d /proc/self ]; then
    expect_exit 1 "$COPY" src /proc/self/x && expect_one_line_error "aio-copy: /proc/self/x: "
  fi
  # Unreadable SRC (not testable as root).
  make_file secret 10 000
  if [ "$(id -u)" != 0 ]; then
    expect_exit 1 "$COPY" secret y && expect_one_line_error "aio-copy: secret: Permission denied"
  fi
  chmod 755 ro
  no_leftovers .
  no_leftovers ro
  [ ! -e x ] && [ ! -e y ] && [ ! -e ro/x ] || fail "a partial destination was left behind"
  ;;

usage)
  make_file src 10 644
  for bad in "-q 0" "-q 65537" "-q abc" "-b 0" "-b 12Q" "-b 4X" "--direct -b 1000" "-b 2G" "--bogus" "-z" "-q"; do
    # shellcheck disable=SC2086
    expect_exit 2 "$COPY" $bad src dst && expect_one_line_error "aio-copy: "
  done
  expect_exit 2 "$COPY" && expect_one_line_error "aio-copy: missing file operand"
  expect_exit 2 "$COPY" src && expect_one_line_error "aio-copy: missing file operand"
  expect_exit 1 "$COPY" src a b && expect_one_line_error "aio-copy: target 'b': No such file or directory"
  expect_exit 1 "$COPY" src src b && expect_one_line_error "aio-copy: target 'b': No such file or directory"
  expect_exit 2 "$COPY" --sparse=sometimes src b && expect_one_line_error "aio-copy: invalid --sparse 'sometimes'"
  expect_exit 2 "$COPY" --rate-limit 0 src b && expect_one_line_error "aio-copy: rate limit must be"
  expect_exit 2 "$COPY" src "" && expect_one_line_error "aio-copy: empty file operand"
  expect_exit 2 "$POLL" "" && expect_one_line_error "aio-poll: empty path operand"
  [ ! -e dst ] || fail "a usage error created dst"
  for bad in "--timeout" "--timeout -1" "--timeout x" "--nope" "- -"; do
    # shellcheck disable=SC2086
    expect_exit 2 "$POLL" $bad </dev/null && expect_one_line_error "aio-poll: "
  done
  for bad in "" "--file f --rw sideways" "--file f --qd 0" "--file f --qd 4 --batch 5" "--file f --bs 0" \
             "--file f --direct --bs 100" "--file f --time 0" "--file f --time abc" "--file f --size 0" \
             "--file f extra" "--file"; do
    # shellcheck disable=SC2086
    expect_exit 2 "$BENCH" $bad && expect_one_line_error "aio-bench: "
  done
  [ ! -e f ] || fail "a usage error created the bench file"
  # Runtime errors of the other tools: exit 1, one line.
  expect_exit 1 "$POLL" no/such/fifo && expect_one_line_error "aio-poll: no/such/fifo: No such file or directory"
  expect_exit 1 "$BENCH" --file no/such/file --time 0.1 && expect_one_line_error "aio-bench: no/such/file: "
  make_file tiny 100 644
  expect_exit 1 "$BENCH" --file tiny --time 0.1 && expect_one_line_error "aio-bench: tiny: file .* smaller"
  # --help everywhere: exit 0, usage on stdout.
  for tool in "$COPY" "$POLL" "$BENCH"; do
    expect_exit 0 "$tool" --help && grep -q '^Usage: ' out || fail "$tool --help"
  done
  ;;

poll_fifo)
  mkfifo f1 f2
  # Background writers: one line and a partial line on f1, a line on f2 a bit later.
  # (timeout: a writer's open() would block forever if aio-poll never opened the FIFO.)
  timeout 10 bash -c "printf 'hello from f1\npartial' >f1" &
  timeout 10 bash -c "sleep 0.3; echo 'second source' >f2" &
  expect_exit 0 "$POLL" --timeout 5 f1 f2
  wait
  grep -qx 'f1: hello from f1' out || fail "line from f1 missing: $(cat out)"
  grep -qx 'f1: partial' out || fail "partial line from f1 missing: $(cat out)"
  grep -qx 'f2: second source' out || fail "line from f2 missing: $(cat out)"
  grep -q 'every source at EOF' err || fail "summary missing: $(cat err)"
  grep -q 'f1: .* 21 bytes' err || fail "per-source summary wrong: $(cat err)"
  # The timeout with a FIFO nobody writes to: exit 0 and a summary.
  mkfifo quiet
  start=$(date +%s%N)
  expect_exit 0 "$POLL" --timeout 0.3 quiet
  elapsed=$((($(date +%s%N) - start) / 1000000))
  grep -q 'timeout' err || fail "timeout summary missing: $(cat err)"
  grep -q '1 polls cancelled' err || fail "the poll was not cancelled: $(cat err)"
  [ "$elapsed" -lt 3000 ] || fail "timeout took ${elapsed} ms"
  # stdin (no PATH, and '-').
  printf 'a\nb\n' | "$POLL" >out 2>err || fail "aio-poll on stdin exited non-zero"
  [ "$(cat out)" = $'stdin: a\nstdin: b' ] || fail "stdin output wrong: $(cat out)"
  echo x | "$POLL" - >out 2>err || fail "aio-poll - exited non-zero"
  [ "$(cat out)" = 'stdin: x' ] || fail "stdin output wrong: $(cat out)"
  ;;

poll_refuse)
  # IOCB_CMD_POLL cannot wait on a regular file (always ready) or a terminal (refused by the
  # kernel): aio-poll says so at once, in one line, and exits 1.
  echo data >file
  expect_exit 1 "$POLL" file &&
    expect_one_line_error "aio-poll: file: cannot be polled with IOCB_CMD_POLL (a regular file is always ready): pipe it in, e.g. 'tail -f file | aio-poll'"
  expect_exit 1 "$POLL" </etc/hostname &&
    expect_one_line_error "aio-poll: stdin: cannot be polled with IOCB_CMD_POLL (a regular file is always ready): pipe the input in, e.g. 'cmd | aio-poll'"
  [ ! -s out ] || fail "output for a refused source: $(cat out)"
  # A terminal as stdin and as a PATH: a pseudo-terminal from script(1), else python3's pty.
  # (--timeout: were the terminal not refused, aio-poll would wait for input.)
  for how in stdin path; do
    if [ $how = stdin ]; then cmd="'$POLL' --timeout 5"; else cmd="'$POLL' --timeout 5 \"\$(tty)\""; fi
    if command -v script >/dev/null; then
      timeout 20 script -qec "$cmd" /dev/null </dev/null >out 2>&1
      rc=$?
    elif python3 -c 'import pty' 2>/dev/null; then
      timeout 20 python3 -c 'import os,pty,sys; sys.exit(os.waitstatus_to_exitcode(pty.spawn(["bash","-c",sys.argv[1]])))' "$cmd" </dev/null >out 2>&1
      rc=$?
    else
      [ "$failures" = 0 ] || exit 1
      echo "SKIP: the terminal part needs script(1) (bsdutils) or python3's pty module to make a pseudo-terminal"
      exit 77
    fi
    tr -d '\r' <out >err
    [ "$rc" = 1 ] || fail "aio-poll on a terminal ($how) exited $rc, expected 1: $(cat err)"
    if [ $how = stdin ]; then
      expect_one_line_error "aio-poll: stdin: cannot be polled with IOCB_CMD_POLL (a terminal): pipe the input in, e.g. 'cmd | aio-poll'"
    else
      expect_one_line_error "aio-poll: /dev/pts/[0-9]*: cannot be polled with IOCB_CMD_POLL (a terminal): pipe the input in"
    fi
  done
  ;;

poll_signal)
  for sig in TERM INT; do
    rm -f fifo
    mkfifo fifo
    # Keep a writer open so the FIFO never reaches EOF; aio-poll must stop on the signal.
    timeout 30 sleep 30 >fifo &
    holder=$!
    "$POLL" fifo >out 2>err &
    pid=$!
    sleep 0.3
    timeout 5 bash -c "echo 'line before $sig' >fifo"
    sleep 0.3
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
    [ "$rc" = 0 ] || fail "aio-poll exited $rc on SIG$sig; stderr: $(cat err)"
    grep -qx "fifo: line before $sig" out || fail "output missing: $(cat out)"
    grep -q "SIG$sig" err || fail "SIG$sig summary missing: $(cat err)"
    grep -q '1 polls cancelled' err || fail "outstanding poll not cancelled: $(cat err)"
  done
  ;;

bench)
  expect_exit 0 "$BENCH" --file bench.dat --size 8M --time 0.3
  [ "$(stat -c %s bench.dat)" = 8388608 ] || fail "bench file not created at --size"
  for key in IOPS bandwidth 'latency p50' 'latency p99' 'latency p99.9' 'CPU per I/O' 'syscalls per I/O'; do
    grep -q "$key" out || fail "table lacks '$key': $(cat out)"
  done
  # --stats: the observer summary on stderr.
  expect_exit 0 "$BENCH" --file bench.dat --time 0.2 --qd 4 --stats
  grep -q 'most repeated calls' err || fail "--stats printed no summary: $(cat err)"
  grep -q 'io_submit' err || fail "--stats printed no syscall counts: $(cat err)"
  for args in "--rw randread --qd 8 --batch 4" "--rw read --bs 64K --direct" "--rw randwrite --direct --qd 4" \
              "--rw write --qd 1"; do
    # shellcheck disable=SC2086
    if expect_exit 0 "$BENCH" --file bench.dat --time 0.2 --json $args; then
      python3 -m json.tool <out >/dev/null || fail "invalid JSON for $args: $(cat out)"
      python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ios"] > 0 and d["iops"] > 0 and "p99.9" in d["lat_us"], d' \
        <out || fail "JSON lacks results for $args: $(cat out)"
    fi
  done
  ;;

bench_features)
  # --probe: the system's capabilities, then the file's (exit 0 when AIO works).
  expect_exit 0 "$BENCH" --probe
  for key in 'io_setup: ok' 'io_pgetevents:' 'IOCB_CMD_POLL:' 'ring reaping:'; do
    grep -q "$key" out || fail "--probe lacks '$key': $(cat out)"
  done
  make_file bench.dat 8388608
  expect_exit 0 "$BENCH" --probe --file bench.dat
  for key in 'O_DIRECT alignment' 'RWF_NOWAIT read' 'IOCB_FLAG_IOPRIO best-effort' 'IOCB_CMD_POLL: always ready'; do
    grep -q "$key" out || fail "--probe --file lacks '$key': $(cat out)"
  done
  expect_exit 1 "$BENCH" --probe --file missing.dat && expect_one_line_error "aio-bench: missing.dat: "
  # --nowait on a file evicted from the page cache: buffered RWF_NOWAIT reads of pages not in
  # the cache complete with -EAGAIN (filemap_read under IOCB_NOWAIT) and are resubmitted.
  python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd); os.posix_fadvise(fd,0,0,os.POSIX_FADV_DONTNEED)' bench.dat
  if expect_exit 0 "$BENCH" --file bench.dat --time 0.3 --qd 8 --nowait --json; then
    python3 -c 'import json,sys; d=json.load(sys.stdin); assert d["ios"] > 0 and d["would_block"] > 0, d' <out ||
      fail "--nowait on a cold file saw no would-block completion: $(cat out)"
  fi
  # RWF_NOWAIT buffered writes: ext4 refuses them with EOPNOTSUPP (pinned in test_nowait);
  # a file system that accepts them runs normally. Either way: no crash, a clear outcome.
  "$BENCH" --file bench.dat --time 0.2 --rw randwrite --nowait >out 2>err
  rc=$?
  if [ $rc = 1 ]; then
    expect_one_line_error "aio-bench: bench.dat: RWF_NOWAIT write is not supported here"
  elif [ $rc != 0 ]; then
    fail "--nowait randwrite exited $rc: $(cat err)"
  fi
  # --prio: per-request best-effort / idle priorities are accepted; bad values are usage errors.
  expect_exit 0 "$BENCH" --file bench.dat --time 0.2 --prio be:2
  expect_exit 0 "$BENCH" --file bench.dat --time 0.2 --prio idle
  expect_exit 2 "$BENCH" --file bench.dat --prio fast && expect_one_line_error "aio-bench: invalid --prio 'fast'"
  expect_exit 2 "$BENCH" --file bench.dat --prio be:8 && expect_one_line_error "aio-bench: --prio level must be"
  ;;

aio_max_nr)
  # fs.aio-max-nr lowered for a moment (ctest label system, RUN_SERIAL) to just above what is
  # in use: aio-bench, which needs its exact queue depth, says how to raise the limit;
  # aio-copy shrinks its queue depth to what fits and still copies correctly.
  if [ "${AIOPP_TEST_SYSTEM:-}" != 1 ]; then
    echo "SKIP: changes machine-wide state (fs.aio-max-nr / the system-wide AIO quota); set AIOPP_TEST_SYSTEM=1 or use the system preset"
    exit 77
  fi
  limit=/proc/sys/fs/aio-max-nr
  if ! [ -w $limit ] || ! saved=$(cat $limit) || ! echo "$saved" >$limit 2>/dev/null; then
    echo "SKIP: $limit is not writable (needs root)"
    exit 77
  fi
  trap 'echo "$saved" >'$limit EXIT
  trap 'exit 1' INT TERM
  make_file bench.dat 1048576
  make_file src 1048576
  echo $(($(cat /proc/sys/fs/aio-nr) + 10)) >$limit
  expect_exit 1 "$BENCH" --file bench.dat --time 0.2 --qd 64
  expect_one_line_error "aio-bench: io_setup(64) needs 64 free AIO slots but only"
  grep -q 'raise fs.aio-max-nr to [0-9]* (sysctl -w fs.aio-max-nr=[0-9]*)' err || fail "no advice: $(cat err)"
  expect_exit 0 "$COPY" -q 64 -b 4K src dst
  grep -q 'aio-copy: queue depth reduced to' err || fail "aio-copy did not report the smaller queue depth: $(cat err)"
  cmp -s src dst || fail "copy with a reduced queue depth differs"
  echo "$saved" >$limit
  trap - EXIT
  ;;

copy_multi)
  # Several sources into a directory, as cp: a missing (or unreadable) one is reported in one
  # line, the others are copied, and the exit status is 1.
  make_file a 5000 640
  make_file b 1048577 600
  make_file c 0 644
  mkdir outdir
  expect_exit 0 "$COPY" --no-progress a b c outdir/ && check_copy a outdir/a && check_copy b outdir/b && check_copy c outdir/c
  [ "$(grep -c '^aio-copy: .* bytes in' out)" = 3 ] || fail "expected one summary line per file: $(cat out)"
  rm -r outdir && mkdir outdir
  make_file secret 10 000
  expect_exit 1 "$COPY" --no-progress a missing b outdir && expect_one_line_error "aio-copy: missing: No such file or directory"
  check_copy a outdir/a
  check_copy b outdir/b
  [ ! -e outdir/missing ] || fail "a missing source produced a file"
  mkdir sub
  expect_exit 1 "$COPY" --no-progress sub c outdir && expect_one_line_error "aio-copy: sub: Is a directory"
  check_copy c outdir/c
  # Unreadable: as root, run as nobody (setpriv) when the work directory is reachable.
  as_user=()
  if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
    # A coverage build's profile files belong to root: nobody's counters go to a directory
    # of its own (GCOV_PREFIX) instead of a "profiling: cannot open" line on stderr.
    mkdir -m 777 gcov-nobody
    as_user=(setpriv --reuid=65534 --regid=65534 --clear-groups env "GCOV_PREFIX=$PWD/gcov-nobody")
    chmod 777 outdir && rm -f outdir/c
  fi
  if [ "$(id -u)" != 0 ] || "${as_user[@]}" test -r c; then
    expect_exit 1 "${as_user[@]}" "$COPY" --no-progress secret c outdir &&
      expect_one_line_error "aio-copy: secret: Permission denied"
    check_copy c outdir/c
  fi
  expect_exit 1 "$COPY" a b c && expect_one_line_error "aio-copy: target 'c' is not a directory"
  no_leftovers outdir
  ;;

copy_sparse)
  # A 1 GiB file with 4 KiB of data in the middle copies identical and stays sparse, with
  # and without O_DIRECT; --sparse=always also punches blocks of zeros; never writes all.
  truncate -s 1G sparse
  printf 'data in the middle' | dd of=sparse bs=4096 seek=131072 conv=notrunc status=none
  if ! python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); sys.exit(0 if os.lseek(fd, 0, os.SEEK_DATA) > 0 else 1)' sparse; then
    [ "$failures" = 0 ] || exit 1
    echo "SKIP: this file system reports no holes (SEEK_DATA/SEEK_HOLE)"
    exit 77
  fi
  for opts in "" "--no-direct" "--direct -b 64K" "-q 1 -b 4K"; do
    rm -f copy
    # shellcheck disable=SC2086
    if expect_exit 0 "$COPY" --no-progress $opts sparse copy; then
      if [ -z "$opts" ]; then cmp -s sparse copy; else same_data sparse copy; fi || fail "sparse copy differs ($opts)"
      [ "$(stat -c %s copy)" = 1073741824 ] || fail "sparse copy has the wrong size ($opts)"
      [ "$(stat -c %b copy)" -le 256 ] || fail "copy not sparse ($opts): $(stat -c %b copy) blocks of 512"
    fi
  done
  # A hole at the end only (the size comes from ftruncate).
  truncate -s 10M tail && printf x | dd of=tail conv=notrunc status=none
  expect_exit 0 "$COPY" --no-progress tail tailcopy && cmp -s tail tailcopy || fail "trailing hole copy differs"
  # Zeros written out: kept by auto, punched by always, and never writes everything.
  head -c 8M /dev/zero >zeros && printf 'end' >>zeros
  expect_exit 0 "$COPY" --no-progress zeros auto && cmp -s zeros auto || fail "zeros copy differs (auto)"
  [ "$(stat -c %b auto)" -ge 16384 ] || fail "--sparse=auto punched written zeros: $(stat -c %b auto) blocks"
  expect_exit 0 "$COPY" --no-progress --sparse=always zeros always && cmp -s zeros always || fail "zeros copy differs (always)"
  [ "$(stat -c %b always)" -le 2048 ] || fail "--sparse=always left zeros allocated: $(stat -c %b always) blocks"
  expect_exit 0 "$COPY" --no-progress --sparse=never tail never && cmp -s tail never || fail "copy differs (never)"
  [ "$(stat -c %b never)" -ge 20480 ] || fail "--sparse=never left holes: $(stat -c %b never) blocks"
  no_leftovers .
  ;;

copy_special)
  # A FIFO with no writer, a socket, a device: refused at once (never opened for reading).
  mkfifo fifo
  start=$(date +%s%N)
  expect_exit 1 timeout 5 "$COPY" fifo dst && expect_one_line_error "aio-copy: fifo: not a regular file (a FIFO)"
  [ $((($(date +%s%N) - start) / 1000000)) -lt 2000 ] || fail "refusing the FIFO took too long"
  python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])' sock
  expect_exit 1 timeout 5 "$COPY" sock dst && expect_one_line_error "aio-copy: sock: not a regular file (a socket)"
  expect_exit 1 timeout 5 "$COPY" /dev/zero dst && expect_one_line_error "aio-copy: /dev/zero: not a regular file (a character device)"
  # Among several sources, the others are still copied.
  make_file a 100 644
  mkdir outdir
  expect_exit 1 timeout 5 "$COPY" --no-progress fifo a outdir && expect_one_line_error "aio-copy: fifo: not a regular file"
  check_copy a outdir/a
  [ ! -e dst ] || fail "a refused source created dst"
  no_leftovers .
  ;;

copy_overwrite)
  # Default: a new inode renamed over DST (a hard link keeps the old content, SRC's mode).
  make_file src 300000 640
  make_file dst 5000 600
  ln dst link
  ino=$(stat -c %i dst)
  expect_exit 0 "$COPY" --no-progress src dst && check_copy src dst
  [ "$(stat -c %i dst)" != "$ino" ] || fail "default copy kept DST's inode"
  [ "$(stat -c %h dst)" = 1 ] || fail "default copy: DST has $(stat -c %h dst) links"
  cmp -s dst link && fail "default copy wrote through the hard link"
  # --in-place: same inode, links kept, DST's mode kept, the content replaced (shorter too).
  rm -f dst link
  make_file dst 500000 600
  ln dst link
  ino=$(stat -c %i dst)
  expect_exit 0 "$COPY" --no-progress --in-place src dst && cmp -s src dst || fail "--in-place copy differs"
  [ "$(stat -c %i dst)" = "$ino" ] || fail "--in-place changed DST's inode"
  [ "$(stat -c %h dst)" = 2 ] || fail "--in-place: DST has $(stat -c %h dst) links, expected 2"
  cmp -s src link || fail "--in-place: the hard link does not see the new content"
  [ "$(stat -c %a dst)" = 600 ] || fail "--in-place changed DST's mode to $(stat -c %a dst)"
  # --in-place to a new file: created with SRC's mode.
  expect_exit 0 "$COPY" --no-progress --in-place src new && cmp -s src new || fail "--in-place to a new file differs"
  grep -q 'replaces the inode\|new inode' <("$COPY" --help) || fail "--help does not say DST becomes a new inode"
  grep -q 'not atomic' <("$COPY" --help) || fail "--help does not say --in-place is not atomic"
  no_leftovers .
  ;;

copy_progress)
  # In a real 50-column terminal the bar never wraps and follows a resize (SIGWINCH).
  need_tmux
  make_file src 6291456
  tm new-session -d -x 50 -y 10 "'$COPY' --rate-limit 2M -b 128K src dst; echo rc=\$?; sleep 30" ||
    fail "tmux new-session failed"
  wait_pane '%' 3
  sleep 0.5
  # The joined (-J) and the plain capture are compared only when the bar did not redraw in
  # between: the plain capture is taken again after the joined one until both agree.
  for _ in 1 2 3 4 5 6 7 8 9 10; do
    tm capture-pane -p >plain
    tm capture-pane -p -J >joined
    tm capture-pane -p >plain2
    cmp -s plain plain2 && break
  done
  grep -q '%.*ETA' joined || fail "no bar with an ETA in the terminal: $(cat joined)"
  awk 'length > 50 { bad = 1 } END { exit bad }' joined || fail "a line wider than 50 columns: $(cat joined)"
  diff -q <(sed 's/ *$//' joined) <(sed 's/ *$//' plain) >/dev/null || fail "a wrapped line: $(cat joined)"
  tm resize-window -x 100 -y 10
  sleep 0.6
  tm capture-pane -p -J >wide
  awk '/%/ && length > 50 && length < 100 { ok = 1 } END { exit !ok }' wide ||
    fail "the bar did not widen after the resize: $(cat wide)"
  wait_pane 'rc=' 10 && grep -q 'rc=0' pane || fail "the copy failed: $(cat pane)"
  cmp -s src dst || fail "the copy differs"
  # Before a rate is known there is no ETA; the last frame says how long it took.
  expect_exit 0 "$COPY" --progress --rate-limit 8M -b 256K src dst2
  tr '\r' '\n' <err | grep '%' >frames
  head -1 frames | grep -q 'ETA --:--' || fail "first frame shows an ETA: $(head -1 frames)"
  tail -1 frames | grep -q '100.0%.* in 0:0' || fail "last frame: $(tail -1 frames)"
  ;;

copy_signal)
  # SIGINT/SIGTERM during a copy: the temp file is removed, DST untouched, exit 130/143.
  make_file src 8388608
  echo old >dst
  for sig in INT TERM; do
    "$COPY" --no-progress --rate-limit 4M -b 256K src dst >out 2>err &
    pid=$!
    sleep 0.5
    compgen -G '.dst.aio-copy.*' >/dev/null || fail "no temp file while copying"
    kill -s "$sig" "$pid"
    wait "$pid"
    rc=$?
    want=$([ $sig = INT ] && echo 130 || echo 143)
    [ "$rc" = "$want" ] || fail "SIG$sig: exit $rc, expected $want; stderr: $(cat err)"
    [ "$(cat dst)" = old ] || fail "SIG$sig changed DST"
    no_leftovers .
  done
  ;;

version)
  for tool in "$COPY" "$POLL" "$BENCH"; do
    expect_exit 0 "$tool" --version
    grep -qE '^aio-[a-z]+ \(aiopp\) [0-9]+\.[0-9]+\.[0-9]+$' out || fail "$tool --version: $(cat out)"
  done
  expect_exit 2 "$COPY" --version=1 && expect_one_line_error "aio-copy: option '--version' doesn't allow"
  ;;

poll_terminal)
  # In a real terminal with no PATH, aio-poll fails at once and says to pipe the input in.
  need_tmux
  tm new-session -d -x 200 -y 10 "'$POLL'; echo rc=\$?; sleep 30" || fail "tmux new-session failed"
  start=$(date +%s%N)
  if wait_pane 'rc=' 5; then
    [ $((($(date +%s%N) - start) / 1000000)) -lt 3000 ] || fail "refusing the terminal took too long"
    grep -qx 'rc=1' pane || fail "aio-poll in a terminal: $(cat pane)"
    grep -qx "aio-poll: stdin: cannot be polled with IOCB_CMD_POLL (a terminal): pipe the input in, e.g. 'cmd | aio-poll'" pane ||
      fail "message: $(cat pane)"
    [ "$(grep -c . pane)" = 2 ] || fail "expected the message and rc only: $(cat pane)"
  fi
  ;;

*)
  echo "unknown case $case_name" >&2
  exit 2
  ;;
esac

[ "$failures" != 0 ] || rm -rf "$work"
finish
