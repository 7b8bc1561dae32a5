// aiopp — lossless batch submission (see include/aio/batch.hpp for the contract).
#include "aio/batch.hpp"

#include <cerrno>

namespace aio {
namespace {

// One io_submit on the rest of the batch. Returns false (with out.error set) when the
// request at out.submitted was refused; a count beyond what was asked is clamped.
[[nodiscard]] bool submit_step(Context& ctx, std::span<iocb* const> iocbs, SubmitAll& out) noexcept {
  const auto rest = iocbs.subspan(out.submitted);
  auto n = ctx.submit(rest);
  if (!n) {
    out.error = n.error();
    return false;
  }
  if (*n == 0) {
    // The kernel never accepts nothing without an error for a non-empty batch; if it ever
    // does, report it as "ring full" instead of spinning.
    out.error = make_error_code(EAGAIN);
    return false;
  }
  out.submitted += *n < rest.size() ? *n : rest.size();
  return true;
}

[[nodiscard]] SubmitAll finish(SubmitAll out, std::size_t size) noexcept {
  out.failed_index = out.error ? out.submitted : size;
  return out;
}

}  // namespace

SubmitAll submit_all(Context& ctx, std::span<iocb* const> iocbs) noexcept {
  SubmitAll out;
  while (out.submitted < iocbs.size()) {
    if (!submit_step(ctx, iocbs, out)) break;
  }
  if (iocbs.empty() && !ctx.valid()) out.error = make_error_code(EINVAL);
  return finish(out, iocbs.size());
}

namespace detail {

SubmitAll submit_all_retry(Context& ctx, std::span<iocb* const> iocbs, std::span<io_event> scratch,
                           ReapSink sink, void* user, const RetryPolicy& policy) noexcept {
  SubmitAll out;
  if (iocbs.empty() && !ctx.valid()) out.error = make_error_code(EINVAL);
  while (out.submitted < iocbs.size()) {
    if (submit_step(ctx, iocbs, out)) continue;
    if (out.error != std::errc::resource_unavailable_try_again || out.retries >= policy.max_retries)
      break;
    // Ring full: make room by reaping at least one completion, then retry. With no sink the
    // events accumulate in scratch; with a sink scratch is reused for every reap.
    const std::span<io_event> room = sink == nullptr ? scratch.subspan(out.reaped) : scratch;
    if (room.empty()) break;  // nowhere to reap into: report the EAGAIN
    ++out.retries;
    auto got = ctx.getevents(1, room, policy.reap_timeout);
    if (!got) {
      if (got.error() == std::errc::interrupted) {
        out.error.clear();
        continue;  // a signal: counts as a retry, try again
      }
      out.error = got.error();
      out.reap_failed = true;
      break;
    }
    out.reaped += *got;
    if (sink != nullptr && *got != 0) sink(user, room.first(*got));
    out.error.clear();  // timed out with nothing reaped: retry anyway (it counts)
  }
  return finish(out, iocbs.size());
}

}  // namespace detail

SubmitAll submit_all(Context& ctx, std::span<iocb* const> iocbs, std::span<io_event> events,
                     const RetryPolicy& policy) noexcept {
  return detail::submit_all_retry(ctx, iocbs, events, nullptr, nullptr, policy);
}

}  // namespace aio
