// aiopp — wait.hpp: waiting for completions until a deadline, through signals.
//
// Context::getevents() fails with `interrupted` when a signal handler runs and takes a
// relative timeout, so a caller that simply retries waits longer than it meant to.
// wait_until()/wait_for() wait against an absolute std::chrono::steady_clock deadline:
// EINTR is retried with the time that is left, completions already copied are never lost,
// and reaching the deadline is not an error (whatever was reaped by then is returned).
//
//     std::array<io_event, 64> evs;
//     auto n = aio::wait_for(ctx, 8, evs, 250ms);   // >= 8 events, or what came in 250 ms
//
// Errors: returned only when no completion was copied; once some were, a later error ends
// the wait and the count is returned (like a short read()), and the next call reports it.
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
namespace detail {

// wait_until()'s loop. events[0, got) are already copied; `polled`: the ring or the kernel
// was looked at just now, so a deadline that has passed ends the wait without a second look.
[[nodiscard]] Result<std::size_t> wait_loop(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                            std::chrono::steady_clock::time_point deadline, const sigset_t* sigmask,
                                            std::size_t got, bool polled) noexcept;

// What follows a mask-less zero-timeout getevents() (`first`) that did not copy min_nr events.
[[nodiscard]] Result<std::size_t> wait_after_poll(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                                  std::chrono::steady_clock::time_point deadline,
                                                  const Result<std::size_t>& first) noexcept;

// steady_clock::now() + timeout rounded up to the clock's tick; now() for timeout <= 0;
// time_point::max() beyond ~146 years (half the clock's remaining range).
template <class Rep, class Period>
[[nodiscard]] std::chrono::steady_clock::time_point deadline_after(
    std::chrono::duration<Rep, Period> timeout) noexcept {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point now = Clock::now();
  if (timeout <= timeout.zero()) return now;
  // Overflow-safe comparison in double seconds.
  const std::chrono::duration<double> left = Clock::time_point::max() - now;
  if (std::chrono::duration<double>(timeout) < left / 2) return now + std::chrono::ceil<Clock::duration>(timeout);
  return Clock::time_point::max();
}

}  // namespace detail

/// Waits until at least min_nr completions are copied into `events` or `deadline` passes,
/// retrying signal interruptions.
/// Returns: how many were copied to events[0, n), at most events.size(); fewer than min_nr
/// when the deadline passed (or an error ended the wait after some were copied). A deadline
/// in the past polls once; steady_clock::time_point::max() waits without a time limit.
/// Errors: only with nothing copied: invalid_argument (min_nr > events.size(), empty
/// Context, Context destroyed while waiting); with a sigmask, function_not_supported /
/// operation_not_permitted (io_pgetevents refused); any other getevents() error.
/// Notes: without a sigmask and when ctx.ring_reaping(), completions already in the ring are
/// taken first with no syscall and no clock read (with another thread reaping the Context
/// at that moment, that look is an io_getevents poll); the clock is read only to wait. With
/// a sigmask every look is an io_pgetevents with that mask (see Context::pgetevents()).
[[nodiscard]] inline Result<std::size_t> wait_until(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                                    std::chrono::steady_clock::time_point deadline,
                                                    const sigset_t* sigmask = nullptr) noexcept {
  if (sigmask == nullptr && ctx.ring_reaping()) {
    Result<std::size_t> n = ctx.getevents(min_nr, events, std::chrono::nanoseconds(0));
    if (n && *n >= min_nr) [[likely]]
      return n;
    return detail::wait_after_poll(ctx, min_nr, events, deadline, n);
  }
  return detail::wait_loop(ctx, min_nr, events, deadline, sigmask, 0, false);
}

/// wait_until(ctx, min_nr, events, steady_clock::now() + timeout, sigmask), the deadline
/// rounded up to the clock's tick.
/// Returns: as wait_until(); a timeout <= 0 polls once; one beyond ~146 years means no
/// time limit.
/// Errors: as wait_until().
/// Notes: as wait_until(). Without a sigmask, a timeout <= 0 is one getevents() with a zero
/// timeout and no clock read.
template <class Rep, class Period>
[[nodiscard]] Result<std::size_t> wait_for(Context& ctx, std::size_t min_nr, std::span<io_event> events,
                                           std::chrono::duration<Rep, Period> timeout,
                                           const sigset_t* sigmask = nullptr) noexcept {
  const bool poll_only = timeout <= timeout.zero();
  // The first look is free from the ring, and with a timeout <= 0 it is the whole call.
  if (sigmask == nullptr && (poll_only || ctx.ring_reaping())) {
    Result<std::size_t> n = ctx.getevents(min_nr, events, std::chrono::nanoseconds(0));
    if (n && (*n >= min_nr || poll_only)) [[likely]]
      return n;
    return detail::wait_after_poll(ctx, min_nr, events, detail::deadline_after(timeout), n);
  }
  return detail::wait_loop(ctx, min_nr, events, detail::deadline_after(timeout), sigmask, 0, false);
}

}  // namespace aio
