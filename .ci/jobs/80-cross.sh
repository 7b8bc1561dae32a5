#!/usr/bin/env bash
# Cross builds of the library and the tools, warnings as errors, for the other ABIs Linux AIO
# has: aarch64 and riscv64 (LP64, the generic syscall table) and armhf (ILP32 with its own
# table: io_pgetevents_time64 and the time32 calls). The test suite cannot run there: it needs
# a kernel of that architecture, and qemu-user answers io_setup with ENOSYS. What runs under
# qemu-user is time64_smoke (tests/time64_smoke.cpp): it checks that the library reports AIO
# as missing (function_not_supported) cleanly, from Context::create() and from probe().
# Compilers: Debian's g++-<triple> cross packages, which install side by side (gcc-multilib
# would remove them: the i386 job uses g++-i686-linux-gnu instead).
# Budget: about 4 min on 2 cores (three builds of the library and tools).
#   By hand: cmake --workflow --preset cross-aarch64 (or cross-riscv64, cross-armhf), then
#   qemu-aarch64 -L /usr/aarch64-linux-gnu build/cross-aarch64/time64_smoke --expect-enosys
set -euo pipefail
cd "$(dirname "$0")/../.."

if declare -F apt_need >/dev/null; then
  apt_need g++-aarch64-linux-gnu g++-riscv64-linux-gnu g++-arm-linux-gnueabihf qemu-user
fi

# preset triple qemu
targets=(
  "aarch64 aarch64-linux-gnu qemu-aarch64"
  "riscv64 riscv64-linux-gnu qemu-riscv64"
  "armhf arm-linux-gnueabihf qemu-arm"
)
for t in "${targets[@]}"; do
  read -r arch triple qemu <<<"$t"
  start=$SECONDS
  echo "80-cross: === $arch ==="
  rm -rf "build/cross-$arch"
  cmake --workflow --preset "cross-$arch" >"build/cross-$arch.log" 2>&1 || {
    cat "build/cross-$arch.log"
    echo "80-cross: $arch: the build failed" >&2
    exit 1
  }
  # The binaries load the cross sysroot's libc and libstdc++ (-L: qemu's root for them).
  "$qemu" -L "/usr/$triple" "build/cross-$arch/time64_smoke" --expect-enosys
  "$qemu" -L "/usr/$triple" "build/cross-$arch/examples/aio-copy" --version >/dev/null
  echo "80-cross: --- $arch: $((SECONDS - start)) s"
done
