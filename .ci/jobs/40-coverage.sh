#!/usr/bin/env bash
# Branch coverage of src/ (gcov + lcov 1.16): a Debug -O0 --coverage build, the test suite
# without the soak label, then lcov with branch coverage on and exception branches off
# (aiopp throws nothing; the only exception edges are the compiler's, in std::string code).
# Prints the per-file line/branch table, the totals and every branch never taken, and fails
# if src/ branch coverage is below AIOPP_MIN_BRANCH_COVERAGE (default 95 %).
#
# What is measured: src/*.cpp and src/*.hpp (the inline shim, the ring reader and the fork
# guard live in headers), compiled into both libraries the tests link: aiopp (the shipped
# one: the x86-64 `syscall` instruction path) and aiopp_fi (the same sources with the
# fault-injection seam). lcov merges the two per source line. The asm path has no branch;
# the seam's dispatch does and is counted.
#
# The coverage preset compiles with -fprofile-update=atomic (threads in the tests would
# otherwise lose counter increments: lcov then finds negative derived branch counts) and
# -DAIOPP_COVERAGE=1 (tests/fi_child.hpp: forked children write their counters with
# __gcov_dump() before _exit, and fork through a pointer so that libgcov does not zero the
# child's counters after the fork guard's atfork handler ran).
#
# Debian's lcov 1.16 accepts geninfo_no_exception_branch=1 but ignores it with GCC's JSON
# gcov format (its geninfo defines intermediate_json_to_info twice; the copy that wins
# never reads the "throw" flag), so .ci/coverage-report.py drops the exception edges itself,
# from gcov's own JSON, and writes build/coverage/src.info without them.
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$(pwd)
min=${AIOPP_MIN_BRANCH_COVERAGE:-95}
apt_need lcov python3

build=build/coverage
rc=(--rc lcov_branch_coverage=1 --rc geninfo_no_exception_branch=1)

cmake --preset coverage >/dev/null
cmake --build --preset coverage
# Counters from an earlier run would add up with this one's.
lcov --quiet "${rc[@]}" --zerocounters --directory "$build"
# AIOPP_TEST_SYSTEM=1: the system tests (label system) count too; they take paths of
# create_shrinking() and the limits code that only an exhausted quota reaches.
AIOPP_TEST_SYSTEM=1 ctest --preset coverage

# geninfo (perl) warns about its own duplicate subroutines on every run: not ours to fix.
lcov --quiet "${rc[@]}" --capture --directory "$build" --output-file "$build/all.info" 2> >(grep -v "redefined at" >&2)
lcov --quiet "${rc[@]}" --extract "$build/all.info" "$repo/src/*" --output-file "$build/src-with-throw.info"
python3 .ci/coverage-report.py "$build/src-with-throw.info" "$build/src.info" "$build" "$repo" "$min"
