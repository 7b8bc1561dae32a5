# Shared by the tool test scripts (sourced): failure counting and exit/stderr checks.
#   fail MSG                      counts a failure and prints it
#   expect_exit CODE CMD...       runs CMD with stdout/stderr captured in ./out ./err
#   expect_one_line_stderr ERE    stderr is exactly one line matching the extended regex
#   finish                        exits 1 with a count if anything failed, else prints ok

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

expect_exit() {
  local want=$1
  shift
  "$@" >out 2>err
  local got=$?
  if [ "$got" != "$want" ]; then
    fail "'$*' exited $got, expected $want; stderr: $(cat err)"
    return 1
  fi
  return 0
}

expect_one_line_stderr() {
  if [ "$(wc -l <err)" != 1 ] || ! grep -Eq "$1" err; then
    fail "expected one stderr line matching '$1', got: $(cat err)"
  fi
}

finish() {
  if [ "$failures" != 0 ]; then
    echo "$case_name: $failures failure(s)" >&2
    exit 1
  fi
  echo "$case_name: ok"
}
