// aiopp — deadline waits (see include/aio/wait.hpp for the contract).
#include "aio/wait.hpp"

namespace aio::detail {

Result<std::size_t> wait_loop(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                              std::chrono::steady_clock::time_point deadline, const sigset_t* sigmask, std::size_t got,
                              bool polled) noexcept {
  using Clock = std::chrono::steady_clock;
  // min_nr > events.size() and an empty Context fail in the first getevents() (invalid_argument).
  for (;;) {
    Timeout timeout;  // nullopt: no time limit
    if (deadline != Clock::time_point::max()) {
      const Clock::time_point now = Clock::now();
      if (polled && now >= deadline) return got;  // that look was the last one
      timeout = deadline > now ? std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now)
                               : std::chrono::nanoseconds(0);
      // ILP32: a kernel without io_pgetevents_time64 refuses a timeout beyond 2^31 s (the
      // time32 calls); a deadline that far is waited for in 2^31 - 1 s steps instead.
      if constexpr (sizeof(long) == 4) {
        constexpr std::chrono::nanoseconds time32_max = std::chrono::seconds(0x7fff'ffff);
        if (*timeout > time32_max) timeout = time32_max;
      }
    }
    const std::size_t want = min_nr > got ? min_nr - got : 0;
    const std::span<io_event> room = events.subspan(got);
    auto n = sigmask != nullptr ? ctx.pgetevents(want, room, timeout, sigmask) : ctx.getevents(want, room, timeout);
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;  // recompute what is left, retry
      if (got != 0) return got;                           // never lose reaped completions
      return std::unexpected(n.error());
    }
    got += *n;
    if (got >= min_nr) return got;
    // Fewer than asked: the kernel's timer expired, or a signal arrived after some were
    // copied (io_getevents then returns the count). Go on only while time is left.
    if (timeout && *timeout == std::chrono::nanoseconds(0)) return got;
    if (deadline != Clock::time_point::max() && Clock::now() >= deadline) return got;
  }
}

Result<std::size_t> wait_after_poll(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                    std::chrono::steady_clock::time_point deadline,
                                    const Result<std::size_t>& first) noexcept {
  if (first) return wait_loop(ctx, min_nr, events, deadline, nullptr, *first, true);
  // A signal during the look (possible only when it went to the kernel): look again.
  if (first.error() == std::errc::interrupted) return wait_loop(ctx, min_nr, events, deadline, nullptr, 0, false);
  return std::unexpected(first.error());
}

}  // namespace aio::detail
