// aiopp — batch.hpp: lossless batch submission.
//
// io_submit() may accept only a prefix of a batch: it stops at the first request it
// refuses (and reports that request's error only if it was the first of the call), or
// when the ring is full. submit_all() keeps calling it on the rest until every request is
// in, or one fails, and always says exactly which prefix the kernel accepted — those
// requests are in flight and their completions must be reaped, whatever else happened.
//
//     aio::SubmitAll r = aio::submit_all(ctx, batch);
//     // batch[0, r.submitted) are in flight. On failure batch[r.failed_index] was refused
//     // with r.error and batch[r.failed_index + 1, end) were never looked at.
//
// The retrying overloads also get through a full ring (EAGAIN): they reap completions
// (handing each one to the caller) and retry, a bounded number of times.
//
// Errors: never throws, never allocates. Thread safety: as Context::submit()/getevents():
// several threads may submit to one Context at once; the retrying overloads reap, so
// their reaped completions may belong to requests other threads submitted.
#pragma once

#include <linux/aio_abi.h>

#include <chrono>
#include <concepts>
#include <cstddef>
#include <memory>
#include <span>
#include <system_error>
#include <type_traits>
#include <utility>

#include "aio/context.hpp"

namespace aio {

/// What submit_all() achieved.
///
/// On success (every request accepted): submitted == failed_index == iocbs.size(),
/// error is empty (false) and ok() is true.
/// On failure: requests [0, submitted) were accepted and are in flight (reap them!);
/// failed_index == submitted is the first request not accepted; error says why —
/// the kernel's error for that request (e.g. bad_file_descriptor, invalid_argument,
/// resource_unavailable_try_again when the ring stayed full), or invalid_argument for an
/// empty Context (then submitted == 0). With the retrying overloads, when reaping itself
/// failed, error is that getevents() error and reap_failed is true.
/// Requests after failed_index were not submitted.
struct SubmitAll {
  std::size_t submitted = 0;    ///< accepted requests: always the prefix [0, submitted)
  std::size_t failed_index = 0; ///< the first request not accepted; == size on success
  std::error_code error;        ///< empty on success
  std::size_t reaped = 0;       ///< completions reaped (and handed over) while retrying
  unsigned retries = 0;         ///< EAGAIN retries used
  bool reap_failed = false;     ///< error came from getevents() during a retry
  [[nodiscard]] bool ok() const noexcept { return !error; }
  explicit operator bool() const noexcept { return ok(); }
};

/// Bounds of the EAGAIN (ring full) retry loop.
struct RetryPolicy {
  /// EAGAIN retries allowed over the whole call (0: report the first EAGAIN).
  unsigned max_retries = 16;
  /// How long each reap may wait for at least one completion. std::nullopt waits forever —
  /// only safe if requests in flight are sure to complete (not with never-ready polls).
  Timeout reap_timeout = std::chrono::milliseconds(100);
};

/// Submits every request of `iocbs`, in order, through as many io_submit calls as needed.
/// Stops at the first error, which includes EAGAIN (ring full): nothing is reaped.
[[nodiscard]] SubmitAll submit_all(Context& ctx, std::span<iocb* const> iocbs) noexcept;

/// submit_all() that, on EAGAIN, reaps at least one completion into `events` (starting at
/// events[result.reaped]; waiting up to policy.reap_timeout) and retries, up to
/// policy.max_retries times. Afterwards events[0, result.reaped) hold every completion it
/// reaped. When `events` is full it cannot reap: the EAGAIN is reported.
[[nodiscard]] SubmitAll submit_all(Context& ctx, std::span<iocb* const> iocbs, std::span<io_event> events,
                                   const RetryPolicy& policy = {}) noexcept;

namespace detail {
using ReapSink = void (*)(void* user, std::span<const io_event> reaped) noexcept;
[[nodiscard]] SubmitAll submit_all_retry(Context& ctx, std::span<iocb* const> iocbs,
                                         std::span<io_event> scratch, ReapSink sink, void* user,
                                         const RetryPolicy& policy) noexcept;
}  // namespace detail

/// submit_all() that, on EAGAIN, reaps completions into `scratch` (any size >= 1; reused)
/// and calls on_event(const io_event&) for each, then retries, up to policy.max_retries
/// times. The callback runs on the calling thread, must not throw (it would terminate) and
/// must not submit to or reap from `ctx`. No allocation: the callback is called through a
/// plain function pointer. An empty scratch reports the EAGAIN.
template <class OnEvent>
  requires std::invocable<OnEvent&, const io_event&>
[[nodiscard]] SubmitAll submit_all(Context& ctx, std::span<iocb* const> iocbs, std::span<io_event> scratch,
                                   OnEvent&& on_event, const RetryPolicy& policy = {}) noexcept {
  using Fn = std::remove_reference_t<OnEvent>;
  detail::ReapSink sink = [](void* user, std::span<const io_event> reaped) noexcept {
    Fn& fn = *static_cast<Fn*>(user);
    for (const io_event& ev : reaped) fn(ev);
  };
  return detail::submit_all_retry(ctx, iocbs, scratch, sink,
                                  // sink casts back to Fn*, const if Fn is
                                  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast)
                                  const_cast<void*>(static_cast<const void*>(std::addressof(on_event))),
                                  policy);
}

}  // namespace aio
