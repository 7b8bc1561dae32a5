# AIOPP_NEEDS_LIBATOMIC: whether the atomics the library uses (1-byte exchange, 64-bit
# load/store/compare-exchange) link only with libatomic. On x86-64, i386, aarch64 and armhf
# the compiler inlines them; GCC 12 on riscv64 calls libatomic for 1- and 2-byte exchange.
include(CheckCXXSourceCompiles)
include(CMakePushCheckState)
set(aiopp_atomic_probe [[
#include <atomic>
#include <cstdint>
std::atomic<bool> flag{false};
std::atomic<std::uint64_t> id{0};
int main() {
  std::uint64_t expected = 0;
  const bool was = flag.exchange(true);
  const bool swapped = id.compare_exchange_strong(expected, 1);
  return static_cast<int>(was) + static_cast<int>(swapped) + static_cast<int>(id.load() & 1U);
}
]])
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_QUIET ON)
check_cxx_source_compiles("${aiopp_atomic_probe}" AIOPP_ATOMICS_WITHOUT_LIBATOMIC)
if(NOT AIOPP_ATOMICS_WITHOUT_LIBATOMIC)
  set(CMAKE_REQUIRED_LIBRARIES atomic)
  check_cxx_source_compiles("${aiopp_atomic_probe}" AIOPP_ATOMICS_WITH_LIBATOMIC)
  if(NOT AIOPP_ATOMICS_WITH_LIBATOMIC)
    message(FATAL_ERROR "aiopp: std::atomic does not link, not even with libatomic")
  endif()
endif()
cmake_pop_check_state()
if(AIOPP_ATOMICS_WITHOUT_LIBATOMIC)
  set(AIOPP_NEEDS_LIBATOMIC OFF)
else()
  set(AIOPP_NEEDS_LIBATOMIC ON)
  message(STATUS "aiopp: std::atomic needs libatomic here: aiopp links it")
endif()
