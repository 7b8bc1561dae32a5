// Lossless batch submission (include/aio/batch.hpp) under fault injection.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;

// Reaps the completions of `r` not in `evs` (reaped already); then every read of `r` has
// completed once, whole, with the file's bytes.
void reap_rest_and_expect_all_once(aio::Context& ctx, const Requests& r, std::vector<io_event> evs) {
  const std::vector<io_event> more = reap(ctx, r.size() - evs.size());
  evs.insert(evs.end(), more.begin(), more.end());
  for (const io_event& ev : evs) EXPECT_EQ(ev.res, 16);
  EXPECT_TRUE(r.each_once(evs));
  EXPECT_TRUE(r.data_ok());
}

TEST(BatchFi, PartialSubmitsAreContinued) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(10);
  std::vector<long> sizes;
  ScopedHook hook([&](fi::Args& a) {
    if (a.call == Call::submit) {
      sizes.push_back(a.nr);
      a.nr = a.nr < 3 ? a.nr : 3;  // the kernel takes at most 3 per call
    }
    return fi::passthrough(a);
  });
  const aio::SubmitAll s = aio::submit_all(*ctx, p.batch());
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.submitted, 10U);
  EXPECT_EQ(s.failed_index, 10U);
  EXPECT_EQ(sizes, (std::vector<long>{10, 7, 4, 1}));
  EXPECT_EQ(reap(*ctx, 10).size(), 10U);
}

// The kernel takes a prefix and stops at the first request it cannot queue (the count is
// returned; an error only if the very first fails). submit_all continues from there; when
// the rest fails, failed_index names the first request not accepted and everything before
// it completes.
TEST(BatchFi, FailureAtEveryPositionKeepsTheAcceptedPrefix) {
  constexpr std::size_t n = 8;
  for (int err : {EAGAIN, ENOMEM, EBADF, EINVAL}) {
    for (std::size_t accepted = 0; accepted <= n; ++accepted) {
      SCOPED_TRACE("errno " + std::to_string(err) + ", accepted " + std::to_string(accepted));
      auto c = aio::Context::create(16, aio::ReapMode::syscall);
      ASSERT_TRUE(c);
      const Requests b = Requests::file_reads(n);
      // Accepts `accepted` requests over two io_submit calls (a partial one, then the
      // rest of the prefix), then fails the next call with err.
      std::size_t calls = 0;
      ScopedHook hook([&](fi::Args& a) -> long {
        if (a.call != Call::submit) return fi::passthrough(a);
        const std::size_t done = static_cast<std::size_t>(a.iocbs - b.ptrs.data());
        if (done >= accepted) return -err;
        ++calls;
        const std::size_t step = calls == 1 && accepted > 1 ? accepted / 2 : accepted - done;
        a.nr = static_cast<long>(step);
        return fi::passthrough(a);
      });
      const aio::SubmitAll r = aio::submit_all(*c, b.batch());
      EXPECT_EQ(r.submitted, accepted);
      if (accepted == n) {
        EXPECT_TRUE(r.ok());
        EXPECT_EQ(r.failed_index, n);
      } else {
        ASSERT_FALSE(r.ok());
        EXPECT_EQ(r.error, std::error_code(err, std::system_category()));
        EXPECT_EQ(r.failed_index, accepted);
      }
      std::vector<io_event> evs = reap(*c, accepted);
      ASSERT_EQ(evs.size(), accepted);
      // The rest, resubmitted without the fault, completes too: no request twice.
      hook.fn = [](fi::Args& a) { return fi::passthrough(a); };
      const aio::SubmitAll rest = aio::submit_all(*c, b.batch(accepted));
      ASSERT_TRUE(rest.ok()) << rest.error.message();
      reap_rest_and_expect_all_once(*c, b, std::move(evs));
    }
  }
}

TEST(BatchFi, ZeroAcceptedIsReportedNotSpun) {
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(3);
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit) {
      ++calls;
      return 0;
    }
    return fi::passthrough(a);
  });
  const aio::SubmitAll s = aio::submit_all(*ctx, p.batch());
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(s.submitted, 0U);
  EXPECT_EQ(calls, 1);
}

TEST(BatchFi, EagainRetriesReapIntoCallback) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(6);
  int submits = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit) {
      ++submits;
      if (submits == 1) {
        a.nr = 2;  // two in, then "ring full" twice
        return fi::passthrough(a);
      }
      if (submits <= 3) return -EAGAIN;
    }
    return fi::passthrough(a);
  });
  std::array<io_event, 1> scratch{};
  std::vector<std::uint64_t> got;
  const aio::SubmitAll s =
      aio::submit_all(*ctx, p.batch(), scratch, [&](const io_event& ev) noexcept { got.push_back(ev.data); });
  EXPECT_TRUE(s.ok()) << s.error.message();
  EXPECT_EQ(s.submitted, 6U);
  EXPECT_EQ(s.retries, 2U);
  EXPECT_EQ(s.reaped, 2U);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(reap(*ctx, 4).size(), 4U);
}

// EAGAIN after a partial submit, with the overload that reaps into a span: it reaps to make
// room and goes on; the completions it reaped are handed back, the others are reaped
// afterwards: each once.
TEST(BatchFi, EagainAfterAPartialSubmitIsRetriedWithNothingLost) {
  constexpr std::size_t n = 8;
  for (std::size_t accepted = 1; accepted < n; ++accepted) {
    SCOPED_TRACE("accepted " + std::to_string(accepted));
    auto c = aio::Context::create(16, aio::ReapMode::syscall);
    ASSERT_TRUE(c);
    const Requests b = Requests::file_reads(n);
    int eagains = 0;
    ScopedHook hook([&](fi::Args& a) -> long {
      if (a.call != Call::submit) return fi::passthrough(a);
      if (a.iocbs == b.ptrs.data()) {
        a.nr = static_cast<long>(accepted);
        return fi::passthrough(a);
      }
      if (eagains++ == 0) return -EAGAIN;  // ring full once
      return fi::passthrough(a);
    });
    std::array<io_event, n> scratch{};
    const aio::SubmitAll r = aio::submit_all(*c, b.batch(), scratch);
    ASSERT_TRUE(r.ok()) << r.error.message();
    EXPECT_EQ(r.submitted, n);
    EXPECT_EQ(r.retries, 1U);
    EXPECT_GE(r.reaped, 1U);
    reap_rest_and_expect_all_once(
        *c, b, std::vector<io_event>(scratch.begin(), scratch.begin() + static_cast<std::ptrdiff_t>(r.reaped)));
  }
}

TEST(BatchFi, RetryBudgetIsBounded) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(4);
  int submits = 0;
  int reaps = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit) {
      if (++submits == 1) {
        a.nr = 1;
        return fi::passthrough(a);
      }
      return -EAGAIN;
    }
    if (a.call == Call::getevents) ++reaps;
    return fi::passthrough(a);
  });
  std::array<io_event, 8> events{};
  const aio::SubmitAll s = aio::submit_all(*ctx, p.batch(), events, aio::RetryPolicy{3, std::chrono::milliseconds(1)});
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(s.reap_failed);
  EXPECT_EQ(s.submitted, 1U);
  EXPECT_EQ(s.failed_index, 1U);
  EXPECT_EQ(s.retries, 3U);
  EXPECT_EQ(reaps, 3);
  EXPECT_EQ(submits, 5);  // the partial one, the first EAGAIN, one per retry
  EXPECT_EQ(s.reaped, 1U);  // the one accepted request, reaped on the first retry
  EXPECT_EQ(events[0].data, 0U);

  // max_retries 0: the first EAGAIN is reported, nothing reaped.
  submits = 1;
  reaps = 0;
  const aio::SubmitAll t = aio::submit_all(*ctx, p.batch(), events, aio::RetryPolicy{0, std::nullopt});
  EXPECT_EQ(t.error, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(t.retries, 0U);
  EXPECT_EQ(reaps, 0);
}

// The callback overload when each reap times out with nothing: retries until the budget is
// spent, never calls the callback, reports the EAGAIN.
TEST(BatchFi, CallbackRetriesUntilTheBudgetWhenNothingCanBeReaped) {
  auto ctx = aio::Context::create(16, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(8);
  ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::submit ? -EAGAIN : fi::passthrough(a); });
  std::array<io_event, 4> scratch{};
  int called = 0;
  const aio::SubmitAll r = aio::submit_all(*ctx, p.batch(), scratch, [&](const io_event&) noexcept { ++called; },
                                           aio::RetryPolicy{2, std::chrono::milliseconds(1)});
  EXPECT_EQ(r.error, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(r.retries, 2U);
  EXPECT_EQ(r.reaped, 0U);
  EXPECT_EQ(called, 0);
}

TEST(BatchFi, ReapFailureAndInterruption) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  const Requests p = Requests::ready_polls(3);
  int getevents = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit) return -EAGAIN;
    if (a.call == Call::getevents) return ++getevents == 1 ? -EINTR : -EFAULT;
    return fi::passthrough(a);
  });
  std::array<io_event, 8> events{};
  const aio::SubmitAll s = aio::submit_all(*ctx, p.batch(), events);
  EXPECT_EQ(s.error, std::errc::bad_address);
  EXPECT_TRUE(s.reap_failed);
  EXPECT_EQ(s.retries, 2U);  // the interrupted reap counted as one
  EXPECT_EQ(s.submitted, 0U);
  EXPECT_EQ(s.failed_index, 0U);
}

}  // namespace
