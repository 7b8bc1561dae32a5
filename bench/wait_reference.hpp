// aiopp benchmarks — the previous aio::wait_for / wait_until, kept as a reference arm: it read
// the clock and called the out-of-line wait_until before looking at the ring.
#pragma once

#include <chrono>
#include <cstddef>
#include <span>

#include "aio/context.hpp"

namespace bench {

/// The former wait_until(), compiled in its own translation unit as it was in the library.
[[nodiscard]] aio::Result<std::size_t> reference_wait_until(aio::Context& ctx, std::size_t min_nr,
                                                            std::span<io_event> events,
                                                            std::chrono::steady_clock::time_point deadline) noexcept;

/// The former wait_for(): a clock read and the deadline, then reference_wait_until().
template <class Rep, class Period>
[[nodiscard]] aio::Result<std::size_t> reference_wait_for(aio::Context& ctx, std::size_t min_nr,
                                                          std::span<io_event> events,
                                                          std::chrono::duration<Rep, Period> timeout) noexcept {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  const std::chrono::duration<double> left = Clock::time_point::max() - now;
  if (timeout <= timeout.zero()) {
    deadline = now;
  } else if (std::chrono::duration<double>(timeout) < left / 2) {
    deadline = now + std::chrono::ceil<Clock::duration>(timeout);
  }
  return reference_wait_until(ctx, min_nr, events, deadline);
}

}  // namespace bench
