#!/usr/bin/env bash
# Tests of the engine examples: read_file and asio_engine print "<size> bytes, sum <byte sum>"
# for a file, equal to a sum computed here, at several queue depths; bad input gives a
# one-line error and a non-zero exit.
#   test_engine_examples.sh CASE TOOL WORK_DIR      CASE: read_file | asio_engine
set -euo pipefail
case_name=$1 tool=$2 work=$3
mkdir -p "$work"
dir=$(mktemp -d "$work/$case_name.XXXXXX")
trap 'rm -rf "$dir"' EXIT

fail() { echo "FAIL: $*" >&2; exit 1; }

expected() {  # expected FILE: the line the tools print for FILE
  python3 -c 'import sys; d=open(sys.argv[1],"rb").read(); print(f"{len(d)} bytes, sum {sum(d) % 2**64}")' "$1"
}

# Sizes: empty, one byte, one block minus one, several blocks plus a tail.
head -c 0 /dev/null >"$dir/empty"
printf x >"$dir/one"
head -c $((65536 - 1)) /dev/urandom >"$dir/block"
head -c $((5 * 1048576 + 12345)) /dev/urandom >"$dir/big"
for f in empty one block big; do
  want=$(expected "$dir/$f")
  for depth in 1 3 64; do
    got=$("$tool" --depth "$depth" "$dir/$f") || fail "$f --depth $depth: exit $?"
    [ "$got" = "$want" ] || fail "$f --depth $depth: got '$got', want '$want'"
  done
done
[ "$("$tool" "$dir/big")" = "$(expected "$dir/big")" ] || fail "default depth"

"$tool" --help | grep -q usage || fail "--help"
"$tool" --version | grep -q aiopp || fail "--version"

# Bad input: one line on stderr, non-zero exit, nothing on stdout.
expect_error() {  # expect_error STATUS ARGS...
  local want=$1 rc=0
  shift
  "$tool" "$@" >"$dir/out" 2>"$dir/err" || rc=$?
  [ "$rc" = "$want" ] || fail "$*: exit $rc, want $want"
  [ ! -s "$dir/out" ] || fail "$*: wrote to stdout"
  [ "$(wc -l <"$dir/err")" = 1 ] || fail "$*: want one line on stderr, got: $(cat "$dir/err")"
}
expect_error 1 "$dir/missing"
expect_error 1 "$dir"
expect_error 2 --depth 0 "$dir/one"
expect_error 2 --depth x "$dir/one"
expect_error 2
echo "ok: $case_name"
