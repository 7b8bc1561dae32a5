// Lossless batch submission (include/aio/batch.hpp) under fault injection.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;

// The test's hook: a std::function (tests may allocate), removed on scope exit.
struct Polls {
  Fd efd = make_eventfd();
  std::vector<iocb> cbs;
  std::vector<iocb*> ptrs;
  explicit Polls(std::size_t n) : cbs(n), ptrs(n) {
    const std::uint64_t one = 1;
    (void)!::write(efd.get(), &one, sizeof one);  // readable: polls complete at submit
    for (std::size_t i = 0; i < n; ++i) {
      cbs[i] = aio::make_poll(efd.get(), aio::PollEvents::in);
      aio::set_user_data(cbs[i], i);
      ptrs[i] = &cbs[i];
    }
  }
};

TEST(BatchFi, PartialSubmitsAreContinued) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(10);
  std::vector<long> sizes;
  ScopedHook hook([&](fi::Args& a) {
    if (a.call == aio::sys::Call::submit) {
      sizes.push_back(a.nr);
      a.nr = a.nr < 3 ? a.nr : 3;  // the kernel takes at most 3 per call
    }
    return fi::passthrough(a);
  });
  const aio::SubmitAll s = aio::submit_all(*ctx, p.ptrs);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.submitted, 10U);
  EXPECT_EQ(s.failed_index, 10U);
  EXPECT_EQ(sizes, (std::vector<long>{10, 7, 4, 1}));
  EXPECT_EQ(reap(*ctx, 10).size(), 10U);
}

TEST(BatchFi, FailureAfterPartialSubmitNamesTheRequest) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(8);
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == aio::sys::Call::submit) {
      // Like the kernel: accept the prefix before request 5, refuse 5 when it comes first.
      long take = a.nr < 2 ? a.nr : 2;
      for (long i = 0; i < take; ++i) {
        if (a.iocbs[i] != p.ptrs[5]) continue;
        if (i == 0) return -EINVAL;
        take = i;
      }
      a.nr = take;
    }
    return fi::passthrough(a);
  });
  const aio::SubmitAll s = aio::submit_all(*ctx, p.ptrs);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.submitted, 5U);
  EXPECT_EQ(s.failed_index, 5U);
  EXPECT_EQ(s.error, std::errc::invalid_argument);
  EXPECT_EQ(reap(*ctx, 5).size(), 5U);
}

TEST(BatchFi, ZeroAcceptedIsReportedNotSpun) {
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(3);
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == aio::sys::Call::submit) {
      ++calls;
      return 0;
    }
    return fi::passthrough(a);
  });
  const aio::SubmitAll s = aio::submit_all(*ctx, p.ptrs);
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(s.submitted, 0U);
  EXPECT_EQ(calls, 1);
}

TEST(BatchFi, EagainRetriesReapIntoCallback) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(6);
  int submits = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == aio::sys::Call::submit) {
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
      aio::submit_all(*ctx, p.ptrs, scratch, [&](const io_event& ev) noexcept { got.push_back(ev.data); });
  EXPECT_TRUE(s.ok()) << s.error.message();
  EXPECT_EQ(s.submitted, 6U);
  EXPECT_EQ(s.retries, 2U);
  EXPECT_EQ(s.reaped, 2U);
  EXPECT_EQ(got, (std::vector<std::uint64_t>{0, 1}));
  EXPECT_EQ(reap(*ctx, 4).size(), 4U);
}

TEST(BatchFi, RetryBudgetIsBounded) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(4);
  int submits = 0;
  int reaps = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == aio::sys::Call::submit) {
      if (++submits == 1) {
        a.nr = 1;
        return fi::passthrough(a);
      }
      return -EAGAIN;
    }
    if (a.call == aio::sys::Call::getevents) ++reaps;
    return fi::passthrough(a);
  });
  std::array<io_event, 8> events{};
  const aio::SubmitAll s = aio::submit_all(*ctx, p.ptrs, events, aio::RetryPolicy{3, std::chrono::milliseconds(1)});
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
  const aio::SubmitAll t = aio::submit_all(*ctx, p.ptrs, events, aio::RetryPolicy{0, std::nullopt});
  EXPECT_EQ(t.error, std::errc::resource_unavailable_try_again);
  EXPECT_EQ(t.retries, 0U);
  EXPECT_EQ(reaps, 0);
}

TEST(BatchFi, ReapFailureAndInterruption) {
  auto ctx = aio::Context::create(64, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  Polls p(3);
  int getevents = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == aio::sys::Call::submit) return -EAGAIN;
    if (a.call == aio::sys::Call::getevents) return ++getevents == 1 ? -EINTR : -EFAULT;
    return fi::passthrough(a);
  });
  std::array<io_event, 8> events{};
  const aio::SubmitAll s = aio::submit_all(*ctx, p.ptrs, events);
  EXPECT_EQ(s.error, std::errc::bad_address);
  EXPECT_TRUE(s.reap_failed);
  EXPECT_EQ(s.retries, 2U);  // the interrupted reap counted as one
  EXPECT_EQ(s.submitted, 0U);
  EXPECT_EQ(s.failed_index, 0U);
}

}  // namespace
