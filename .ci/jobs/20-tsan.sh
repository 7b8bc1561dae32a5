#!/usr/bin/env bash
# The test suite under ThreadSanitizer (cmake/presets/tsan.json): every concurrency test
# (several submitters/reapers on one Context, the userspace ring with concurrent reapers,
# observers shared between threads, waits interrupted from other threads, fork), the soak
# test (label soak) for AIOPP_SOAK_SECONDS=20 (AIOPP_SOAK_MIN_OPS=0: TSan slows it, so it
# runs for time only), and the rest of the suite, which is cheap under TSan (~40 s).
# TSAN_OPTIONS (in the preset) has halt_on_error=1:exitcode=66: the first report kills the
# test process with status 66, ctest marks it failed and the job fails.
#
# fork: TSan's die_after_fork=1 (default) only matters when a child of a multi-threaded
# process starts threads; no forked child does (they call the wrapper, set up mounts,
# seccomp or rlimits, exec or _exit), so the default is kept and flags a test that would.
set -euo pipefail
cd "$(dirname "$0")/../.."

# GCC 12's ThreadSanitizer runtime (libtsan.so.2; a dependency of libgcc-12-dev, listed
# here so the job says what it uses).
apt_need g++ libtsan2

# This TSan runtime maps its shadow memory at fixed addresses and can die with "unexpected
# memory mapping" when the kernel randomizes mmap with more than 28 bits (some distro
# kernels use 32). Lower it when possible, else run the tests without ASLR.
launcher=()
rnd_bits=$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)
if [ "$rnd_bits" -gt 28 ]; then
  if ! { echo 28 >/proc/sys/vm/mmap_rnd_bits; } 2>/dev/null; then
    echo "tsan: vm.mmap_rnd_bits=$rnd_bits and read-only: running without ASLR"
    launcher=(setarch "$(uname -m)" -R)
  fi
fi

# The system tests too (label system: the AIO quota filled), asked for with AIOPP_TEST_SYSTEM=1.
export AIOPP_TEST_SYSTEM=1
"${launcher[@]}" cmake --workflow --preset tsan

tests=$(ctest --preset tsan -N | sed -n 's/^Total Tests: //p')
echo "tsan: $tests tests (threads, ring, observer, waits, fork, soak for 20 s) ran clean under ThreadSanitizer"
