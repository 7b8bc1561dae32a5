// Deadline waits (include/aio/wait.hpp) under fault injection: EINTR, short returns,
// errors after completions were copied, and the remaining time handed to the kernel.
#include <gtest/gtest.h>

#include <array>
#include <functional>
#include <thread>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;

long long ns_of(const aio::sys::KernelTimespec* t) {
  return t == nullptr ? -1 : t->tv_sec * 1'000'000'000LL + t->tv_nsec;
}

// A syscall-mode Context (the hook sees every reap) with `n` completed polls waiting.
struct Ready {
  aio::Context ctx;
  Fd efd = make_eventfd();
  std::vector<iocb> cbs;
  explicit Ready(std::size_t n) : cbs(n) {
    ctx = std::move(aio::Context::create(16, aio::ReapMode::syscall).value());
    const std::uint64_t one = 1;
    (void)!::write(efd.get(), &one, sizeof one);
    std::vector<iocb*> ptrs;
    for (std::size_t i = 0; i < n; ++i) {
      cbs[i] = aio::make_poll(efd.get(), aio::PollEvents::in);
      aio::set_user_data(cbs[i], 100 + i);
      ptrs.push_back(&cbs[i]);
    }
    if (n != 0) (void)ctx.submit(ptrs);
  }
};

TEST(WaitFi, EintrIsRetriedAndEventsAccumulate) {
  Ready r(2);
  std::vector<long> mins;
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    mins.push_back(a.min_nr);
    switch (++calls) {
      case 1: a.nr = a.min_nr = 1; return fi::passthrough(a);  // one event, then...
      case 2: return -EINTR;                         // ...a signal
      default: return fi::passthrough(a);
    }
  });
  std::array<io_event, 4> evs{};
  auto n = aio::wait_for(r.ctx, 2, evs, 5s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2U);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(mins, (std::vector<long>{2, 1, 1}));  // asks only for what is still missing
  EXPECT_NE(evs[0].data, evs[1].data);
  EXPECT_GE(evs[0].data, 100U);
  EXPECT_GE(evs[1].data, 100U);
}

TEST(WaitFi, RetryGetsTheRemainingTime) {
  Ready r(0);
  std::vector<long long> timeouts;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    timeouts.push_back(ns_of(a.timeout));
    if (timeouts.size() <= 3) {
      std::this_thread::sleep_for(50ms);  // a signal arrives after 50 ms of waiting
      return -EINTR;
    }
    return fi::passthrough(a);
  });
  std::array<io_event, 1> evs{};
  const auto t0 = Clock::now();
  auto n = aio::wait_for(r.ctx, 1, evs, 300ms);
  const auto took = Clock::now() - t0;
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  ASSERT_EQ(timeouts.size(), 4U);
  EXPECT_LE(timeouts[0], 300'000'000LL);
  EXPECT_GT(timeouts[0], 250'000'000LL);
  for (std::size_t i = 1; i < timeouts.size(); ++i) {
    EXPECT_LE(timeouts[i], timeouts[i - 1] - 50'000'000LL) << i;
    EXPECT_GE(timeouts[i], 0);
  }
  EXPECT_GE(took, 300ms);
  EXPECT_LT(took, 1s);
}

TEST(WaitFi, ErrorAfterEventsReturnsTheEvents) {
  Ready r(2);
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    if (++calls == 1) {
      a.nr = a.min_nr = 1;
      return fi::passthrough(a);
    }
    return -EFAULT;
  });
  std::array<io_event, 4> evs{};
  auto n = aio::wait_for(r.ctx, 2, evs, 5s);
  ASSERT_TRUE(n) << "a completion already copied must not be dropped for an error";
  EXPECT_EQ(*n, 1U);
  EXPECT_GE(evs[0].data, 100U);

  // With nothing copied yet, the error is the result.
  n = aio::wait_for(r.ctx, 1, evs, 5s);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_address);
}

TEST(WaitFi, ShortReturnBeforeTheDeadlineWaitsOn) {
  Ready r(1);
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    if (++calls <= 2) return 0;  // spurious early return with nothing
    return fi::passthrough(a);
  });
  std::array<io_event, 2> evs{};
  auto n = aio::wait_for(r.ctx, 1, evs, 5s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(calls, 3);
}

TEST(WaitFi, SigmaskGoesToPgeteventsEveryTime) {
  Ready r(1);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  std::vector<const sigset_t*> seen;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::getevents) ADD_FAILURE() << "a sigmask wait must use io_pgetevents";
    if (a.call != Call::pgetevents) return fi::passthrough(a);
    seen.push_back(a.sig != nullptr ? a.sig->sigmask : nullptr);
    if (seen.size() == 1) return -EINTR;
    return fi::passthrough(a);
  });
  std::array<io_event, 2> evs{};
  auto n = aio::wait_for(r.ctx, 1, evs, 5s, &mask);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(seen, (std::vector<const sigset_t*>{&mask, &mask}));
}

TEST(WaitFi, NoDeadlineWaitsWithoutTimeout) {
  Ready r(1);
  std::vector<long long> timeouts;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    timeouts.push_back(ns_of(a.timeout));
    return timeouts.size() == 1 ? -EINTR : fi::passthrough(a);
  });
  std::array<io_event, 2> evs{};
  auto n = aio::wait_until(r.ctx, 1, evs, Clock::time_point::max());
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(timeouts, (std::vector<long long>{-1, -1}));
  timeouts.clear();
  Ready r2(1);
  n = aio::wait_for(r2.ctx, 1, evs, std::chrono::hours(24 * 365 * 1000));
  ASSERT_TRUE(n);
  EXPECT_EQ(timeouts, (std::vector<long long>{-1, -1}));
}

}  // namespace
