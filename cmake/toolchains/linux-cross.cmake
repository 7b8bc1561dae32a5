# Cross build for another Linux ABI with Debian's cross compilers (g++-<triple>), chosen by the
# cache variable AIOPP_CROSS_TRIPLE (the presets in cmake/presets/abi.json set it):
#   i686-linux-gnu       i386, ILP32; its binaries run natively on an x86-64 kernel with IA-32
#                        emulation (they name the cross sysroot's loader and libraries, so no
#                        i386 multiarch packages are needed to run them)
#   arm-linux-gnueabihf  armhf (ARMv7 EABI hard-float), ILP32
#   aarch64-linux-gnu    aarch64, LP64
#   riscv64-linux-gnu    riscv64, LP64
# By hand: cmake --toolchain cmake/toolchains/linux-cross.cmake -DAIOPP_CROSS_TRIPLE=<triple> ...
set(AIOPP_CROSS_TRIPLE "${AIOPP_CROSS_TRIPLE}" CACHE STRING "Target triple of the cross compiler (g++-<triple>)")
if(NOT AIOPP_CROSS_TRIPLE)
  message(FATAL_ERROR "linux-cross.cmake: set AIOPP_CROSS_TRIPLE (i686-linux-gnu, arm-linux-gnueabihf, "
                      "aarch64-linux-gnu or riscv64-linux-gnu)")
endif()
# try_compile() projects read this file again: they need the triple too.
list(APPEND CMAKE_TRY_COMPILE_PLATFORM_VARIABLES AIOPP_CROSS_TRIPLE)

string(REGEX MATCH "^[^-]+" aiopp_cross_cpu "${AIOPP_CROSS_TRIPLE}")
if(aiopp_cross_cpu STREQUAL "arm")
  set(aiopp_cross_cpu armv7l)
endif()
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR ${aiopp_cross_cpu})
set(CMAKE_C_COMPILER ${AIOPP_CROSS_TRIPLE}-gcc)
set(CMAKE_CXX_COMPILER ${AIOPP_CROSS_TRIPLE}-g++)
set(CMAKE_FIND_ROOT_PATH /usr/${AIOPP_CROSS_TRIPLE})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

# 64-bit off_t and time_t in glibc's own interfaces (lseek, fstat, clock_gettime, ...) on the
# ILP32 targets, as on LP64 (where these are no-ops): the tools handle files beyond 2 GiB and
# no call truncates time in 2038.
set(CMAKE_C_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64")
set(CMAKE_CXX_FLAGS_INIT "-D_FILE_OFFSET_BITS=64 -D_TIME_BITS=64")
if(aiopp_cross_cpu STREQUAL "armv7l")
  # GCC's notes that passing std::span changed ABI in GCC 7.1: nothing here mixes compilers.
  string(APPEND CMAKE_CXX_FLAGS_INIT " -Wno-psabi")
endif()

# Programs run in place, here: they load the cross sysroot's libc and libstdc++ (x86-64 runs
# i386 directly; qemu-user finds the sysroot with -L /usr/<triple> either way).
set(CMAKE_EXE_LINKER_FLAGS_INIT "-Wl,-rpath,/usr/${AIOPP_CROSS_TRIPLE}/lib")
if(AIOPP_CROSS_TRIPLE STREQUAL "i686-linux-gnu")
  string(APPEND CMAKE_EXE_LINKER_FLAGS_INIT " -Wl,--dynamic-linker=/usr/${AIOPP_CROSS_TRIPLE}/lib/ld-linux.so.2")
endif()
set(CMAKE_SHARED_LINKER_FLAGS_INIT "-Wl,-rpath,/usr/${AIOPP_CROSS_TRIPLE}/lib")
