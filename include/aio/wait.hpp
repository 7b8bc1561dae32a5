// aiopp — wait.hpp: waiting for completions until a deadline, through signals.
//
// Context::getevents() returns `interrupted` when a signal handler runs and takes a
// relative timeout, so a caller that simply retries waits longer than it meant to.
// wait_until()/wait_for() wait against an absolute std::chrono::steady_clock deadline:
//   - EINTR is retried with the time that is left, recomputed from steady_clock;
//   - completions already copied are never lost: every call appends to `events`, and the
//     total is returned;
//   - reaching the deadline is not an error: whatever was reaped by then (maybe 0) is
//     returned.
//
//     std::array<io_event, 64> evs;
//     auto n = aio::wait_for(ctx, 8, evs, 250ms);   // >= 8 events, or what came in 250ms
//
// Errors (returned only when no completion has been copied yet): invalid_argument
// (min_nr > events.size(), empty Context, Context destroyed while waiting), and with a
// sigmask function_not_supported / operation_not_permitted when io_pgetevents is refused.
// Once some completions were copied, a later error ends the wait early and the count is
// returned (like a short read()); the error, if it persists, is reported by the next call.
//
// Thread safety: as Context::getevents() (several waiters on one Context share out the
// completions). Never throws, never allocates.
#pragma once

#include <linux/aio_abi.h>
#include <signal.h>

#include <chrono>
#include <cstddef>
#include <span>

#include "aio/context.hpp"
#include "aio/result.hpp"

namespace aio {

/// Waits until at least min_nr completions have been copied into `events` (more, up to
/// events.size(), may be copied) or `deadline` passes, retrying signal interruptions.
/// Returns how many were copied to events[0, n). A deadline in the past polls once;
/// steady_clock::time_point::max() waits without a time limit. With a non-null sigmask
/// each wait is an io_pgetevents with that signal mask (see Context::pgetevents()).
[[nodiscard]] Result<std::size_t> wait_until(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                             std::chrono::steady_clock::time_point deadline,
                                             const sigset_t* sigmask = nullptr) noexcept;

/// wait_until(ctx, min_nr, events, steady_clock::now() + timeout, sigmask); the deadline is
/// rounded up to the clock's tick; a timeout beyond ~146 years means no time limit. A
/// negative timeout polls once.
template <class Rep, class Period>
[[nodiscard]] Result<std::size_t> wait_for(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                           std::chrono::duration<Rep, Period> timeout,
                                           const sigset_t* sigmask = nullptr) noexcept {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  Clock::time_point deadline = Clock::time_point::max();
  // Overflow-safe comparison in double seconds; anything beyond half the clock's
  // remaining range (~146 years) means "no time limit".
  const std::chrono::duration<double> left = Clock::time_point::max() - now;
  if (timeout <= timeout.zero()) {
    deadline = now;
  } else if (std::chrono::duration<double>(timeout) < left / 2) {
    deadline = now + std::chrono::ceil<Clock::duration>(timeout);
  }
  return wait_until(ctx, min_nr, events, deadline, sigmask);
}

}  // namespace aio
