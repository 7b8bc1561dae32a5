#!/usr/bin/env bash
# The whole test suite as i386 (ILP32) binaries, run natively: this x86-64 kernel executes them
# through its IA-32 emulation (compat syscalls), so io_pgetevents_time64, the time32 fallback,
# the 32-bit aio_context_t and the ring are tested against the real kernel. The system tests
# too (label system, AIOPP_TEST_SYSTEM=1); only the soak is left to the 64-bit run.
#
# Compiler: g++-i686-linux-gnu with libc6-dev-i386-cross, not gcc-multilib (-m32), which Debian
# cannot install next to the other cross compilers (.ci/jobs/80-cross.sh). The binaries name
# the cross sysroot's loader and libraries (cmake/toolchains/linux-cross.cmake); GoogleTest is
# built for i386 from /usr/src/googletest (package googletest; there is no libgtest-dev:i386).
# Budget: about 7 min on 2 cores (the build about 4, the tests about 2.5).
#   By hand: cmake --workflow --preset m32 (the system tests skip unless AIOPP_TEST_SYSTEM=1)
set -euo pipefail
cd "$(dirname "$0")/../.."

if declare -F apt_need >/dev/null; then apt_need g++-i686-linux-gnu libc6-dev-i386-cross googletest; fi

# The kernel must run i386 binaries (CONFIG_IA32_EMULATION, not disabled by ia32_emulation=0).
probe_dir=$(mktemp -d)
trap 'rm -rf "$probe_dir"' EXIT
echo 'int main(void) { return 0; }' >"$probe_dir/p.c"
i686-linux-gnu-gcc -static -o "$probe_dir/p" "$probe_dir/p.c"
if ! "$probe_dir/p"; then
  echo "70-m32: this kernel does not run i386 binaries (IA-32 emulation off): cannot test the 32-bit ABI" >&2
  exit 1
fi

export AIOPP_TEST_SYSTEM=1
cmake --workflow --preset m32
