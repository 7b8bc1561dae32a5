// aiopp benchmarks — the previous deadline-wait loop (see wait_reference.hpp).
#include "wait_reference.hpp"

#include <cerrno>

namespace bench {

aio::Result<std::size_t> reference_wait_until(aio::Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                              std::chrono::steady_clock::time_point deadline) noexcept {
  using Clock = std::chrono::steady_clock;
  if (min_nr > events.size() || !ctx.valid()) return aio::fail(EINVAL);
  std::size_t got = 0;
  for (;;) {
    aio::Timeout timeout;
    if (deadline != Clock::time_point::max()) {
      const Clock::time_point now = Clock::now();
      timeout = deadline > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now)
                               : std::chrono::nanoseconds(0);
    }
    const std::size_t want = min_nr > got ? min_nr - got : 0;
    auto n = ctx.getevents(want, events.subspan(got), timeout);
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      if (got != 0) return got;
      return std::unexpected(n.error());
    }
    got += *n;
    if (got >= min_nr) return got;
    if (timeout && *timeout == std::chrono::nanoseconds(0)) return got;
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return got;
  }
}

}  // namespace bench
