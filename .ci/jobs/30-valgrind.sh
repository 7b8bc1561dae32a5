#!/usr/bin/env bash
# The test suite under valgrind memcheck: the tests ctest would run (labels and names
# excluded below) run as
#   valgrind --tool=memcheck --error-exitcode=99 --leak-check=full
#            --errors-for-leak-kinds=definite,indirect --track-fds=no ...
# one valgrind process per test program with a --gtest_filter naming its cases, two programs
# at a time, a program with a RUN_SERIAL case alone (.ci/valgrind-run.py: one process per case
# would spend most of the job starting valgrind). Any invalid read/write, use of
# uninitialised memory, bad free or definite/indirect leak makes that process exit 99 and
# fails the job; the output and valgrind log of each failed program are printed.
#
# The ring path is off: AIOPP_REAP=syscall (the library also turns it off by itself under
# valgrind, seeing vgpreload in LD_PRELOAD): the kernel writes the completion ring behind
# valgrind's back, so every event is reaped by io_getevents, whose output valgrind knows.
#
# Build: the tests of build/default, which .ci/run has just built with the README's
# `cmake --workflow --preset test` (RelWithDebInfo, uninstrumented: what valgrind needs).
# AIOPP_VALGRIND_BUILD=<dir> uses another build; build/valgrind (cmake/presets/valgrind.json)
# is configured and built first when that is the one asked for or build/default is absent.
#
# What cannot run under valgrind is listed below (excluded), each with its reason; the one
# suppression in .ci/valgrind.supp is explained there. The soak test (label soak) runs, for
# AIOPP_SOAK_SECONDS=20 (for time only: AIOPP_SOAK_MIN_OPS=0): several threads, both reap
# modes, long mixed I/O, then the leak check.
set -euo pipefail
cd "$(dirname "$0")/../.."

apt_need valgrind

build=${AIOPP_VALGRIND_BUILD:-build/default}
if [ "$build" = build/valgrind ] || [ ! -f "$build/CTestTestfile.cmake" ]; then
  build=build/valgrind
  cmake --preset valgrind
  cmake --build --preset valgrind
fi

# AIOPP_TEST_SYSTEM=1: the system tests (label system: the AIO quota filled) run too.
export AIOPP_REAP=syscall AIOPP_SOAK_SECONDS=20 AIOPP_SOAK_MIN_OPS=0 AIOPP_TEST_SYSTEM=1
vg_options=(
  --tool=memcheck
  --error-exitcode=99
  --leak-check=full
  --errors-for-leak-kinds=definite,indirect
  --show-leak-kinds=definite,indirect
  --track-fds=no
  --num-callers=40
)
# Labels: not gtest programs.
#   examples: bash scripts driving the example tools (valgrind would trace bash);
#   package:  cmake/ctest configuring and building consumer projects.
exclude_labels='examples|package'
# Tests (ctest name regexes):
excluded=(
  # valgrind 3.19 (Debian bookworm) has no io_pgetevents (x86-64 syscall 333): it warns
  # "unhandled syscall" and returns ENOSYS, so what needs a working pgetevents fails.
  '^PgeteventsMask\.'
  '^(AllArms/PgeteventsWithMask|ReapModes/AioppWithMask)\.'
  '^Wait\.Sigmask'
  '^WaitFi\.Sigmask'
  '^Time64\.MaskedTimeoutBeyondTime32WaitsForAPendingCompletion$'
  '^Probe\.EverythingWorksHere$'
  '^Observer\.HookSeesKindArgumentsResultAndDuration$'
  '^FiErrors\.(ObservedReapsRecordKindMaskAndFallback|ProbePollAndPgeteventsPaths)$'
  # valgrind 3.19 has no seccomp(2) (syscall 317, ENOSYS): the filters cannot be installed.
  '^Seccomp\.(PgeteventsBlockedWithEperm|PgeteventsMissingLikeBefore418|ProbeFdWithoutStatx|IoSetupBlocked)'
  # valgrind's io_submit wrapper reads every iocb before the kernel does: a NULL or unmapped
  # iocb pointer (the EFAULT tests; the args fuzzer's corpus has them too) kills valgrind
  # itself with SIGSEGV ("the 'impossible' happened").
  '^Submit\.(NullFirstIocbPointerIsEfault|UnmappedIocbPointerIsEfault)$'
  '^fuzz_args_replay$'
  # It needs the userspace ring, which the library turns off under valgrind by design
  # (vgpreload in LD_PRELOAD: the kernel writes the ring behind valgrind's back).
  '^FiErrors\.ProbeWaitsForTheRingToShowThePoll$'
  # They re-execute /proc/self/exe, which under valgrind is the memcheck tool itself ("You
  # cannot run '/proc/self/exe' directly"; with --trace-children=yes valgrind cannot load
  # the child either: "mmap(0x58000000) failed in UME").
  '^ForkGuardFresh\.'
  # test_no_alloc (NoAlloc, EngineNoAlloc) replaces the global operator new/delete to count
  # allocations; valgrind replaces them too, so they count nothing, and memcheck reports a
  # mismatched free for every block gtest frees at exit.
  '^NoAlloc\.'
  '^EngineNoAlloc\.'
)
exclude_tests=$(IFS='|'; echo "${excluded[*]}")

python3 .ci/valgrind-run.py "$build" "$PWD/.ci/valgrind.supp" "$exclude_labels" "$exclude_tests" "${vg_options[@]}"
