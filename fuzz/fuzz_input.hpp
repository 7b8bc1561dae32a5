// aiopp fuzzers — what both fuzzers share: the input reader and the invariant check.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace aiofuzz {

/// A violated invariant: stop here, so libFuzzer (or the replay runner) reports this input.
inline void check(bool ok) {
  if (!ok) __builtin_trap();
}

/// Reads fixed-size values off the front of the fuzzer's input; past its end, zeros.
struct Input {
  const std::uint8_t* p;
  std::size_t n;
  template <class T>
  T get() noexcept {
    T v{};
    const std::size_t k = n < sizeof(T) ? n : sizeof(T);
    if (k != 0) std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
  [[nodiscard]] bool empty() const noexcept { return n == 0; }
};

}  // namespace aiofuzz
