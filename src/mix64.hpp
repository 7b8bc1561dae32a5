#pragma once
// Private: the hash the Observer's call table and the trace records share.

#include <cstdint>

namespace aio::detail {

/// splitmix64's finaliser: a bijective 64-bit mix. Returns x's hash.
[[nodiscard]] constexpr std::uint64_t mix64(std::uint64_t x) noexcept {
  x ^= x >> 30U;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27U;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31U;
  return x;
}

}  // namespace aio::detail
