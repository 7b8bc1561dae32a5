// Counting allocations for the no-allocation tests: Counting::begin()/end() count the calls
// of the malloc family and of global operator new made by this thread in between. The
// replacements themselves are defined once, in test_no_alloc.cpp; under ASan, TSan, HWASan or
// MSan, whose runtimes own malloc and operator new, nothing is replaced
// (AIOPP_NO_ALLOC_SANITIZER is 1) and the tests skip.
#pragma once

#include <cstddef>

// A sanitizer runtime replaces the malloc family and operator new itself; replacing them again
// would bypass its bookkeeping (and crash), so then nothing below is replaced. UBSan alone
// leaves malloc alone: the tests run.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define AIOPP_NO_ALLOC_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(hwaddress_sanitizer)
#define AIOPP_NO_ALLOC_SANITIZER 1
#endif
#endif
#ifndef AIOPP_NO_ALLOC_SANITIZER
#define AIOPP_NO_ALLOC_SANITIZER 0
#endif

namespace noalloc {
// Per thread, so that nothing another thread does (gtest, the kernel's helpers) is counted.
extern thread_local bool t_counting;
extern thread_local std::size_t t_allocs;

struct Counting {
  static void begin() noexcept {
    t_allocs = 0;
    t_counting = true;
  }
  [[nodiscard]] static std::size_t end() noexcept {
    t_counting = false;
    return t_allocs;
  }
};
}  // namespace noalloc
using noalloc::Counting;
