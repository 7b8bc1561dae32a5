// Deadline waits (include/aio/wait.hpp) under fault injection: EINTR, short returns,
// errors after completions were copied, the remaining time handed to the kernel, and the
// syscalls and clock reads of the first look (counted through the hook and clock_gettime).
#include <gtest/gtest.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {
thread_local int t_clock_reads = 0;
}  // namespace

// Counts this thread's clock reads: libstdc++'s steady_clock::now() calls clock_gettime,
// which this definition interposes for the whole test binary.
#if defined(__USE_TIME_BITS64) && __TIMESIZE == 32
// 64-bit time_t on a 32-bit ABI (_TIME_BITS=64): the header names this definition
// __clock_gettime64, what code built that way calls. libstdc++, built with 32-bit time_t,
// calls the time32 symbol clock_gettime: interposed too, below, under that name.
extern "C" int clock_gettime(clockid_t id, timespec* ts) noexcept {
  ++t_clock_reads;
  return static_cast<int>(::syscall(SYS_clock_gettime64, id, ts));
}
struct Timespec32 {
  std::int32_t tv_sec;
  std::int32_t tv_nsec;
};
extern "C" int aiotest_clock_gettime32(clockid_t id, Timespec32* ts) noexcept __asm__("clock_gettime");
extern "C" int aiotest_clock_gettime32(clockid_t id, Timespec32* ts) noexcept {
  ++t_clock_reads;
  return static_cast<int>(::syscall(SYS_clock_gettime, id, ts));
}
#else
extern "C" int clock_gettime(clockid_t id, timespec* ts) noexcept {
  ++t_clock_reads;
  return static_cast<int>(::syscall(SYS_clock_gettime, id, ts));
}
#endif

namespace {

using namespace aiotest;
using aio::sys::Call;

long long ns_of(const aio::sys::KernelTimespec* t) {
  return t == nullptr ? -1 : t->tv_sec * 1'000'000'000LL + t->tv_nsec;
}

// A Context (by default syscall-mode: the hook sees every reap) with `n` completed polls
// waiting, user data 100, 101, ...
struct Ready {
  aio::Context ctx;
  Fd efd = make_eventfd();
  std::vector<iocb> cbs;
  explicit Ready(std::size_t n, aio::ReapMode mode = aio::ReapMode::syscall) : cbs(n) {
    ctx = std::move(aio::Context::create(16, mode).value());
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
      case 2: return -EINTR;                                   // ...a signal
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

// Every reap syscall the shim makes (ring reaps make none): kind, min_nr, nr, timeout.
struct Reaps {
  struct Seen {
    Call call;
    long min_nr, nr;
    long long timeout_ns;
    const sigset_t* mask;
  };
  std::vector<Seen> calls;
  std::function<long(fi::Args&)> on_call;  // optional: replaces the passthrough
  ScopedHook hook{[this](fi::Args& a) -> long {
    if (a.call != Call::getevents && a.call != Call::pgetevents) return fi::passthrough(a);
    calls.push_back({a.call, a.min_nr, a.nr, ns_of(a.timeout), a.sig != nullptr ? a.sig->sigmask : nullptr});
    return on_call ? on_call(a) : fi::passthrough(a);
  }};
};

TEST(WaitFi, ClockInterposerCounts) {
  const int before = t_clock_reads;
  (void)Clock::now();
  EXPECT_EQ(t_clock_reads, before + 1) << "steady_clock::now() does not go through clock_gettime here";
}

TEST(WaitFi, ReadyBatchIsReapedFromTheRingWithNoSyscallAndNoClockRead) {
  Ready r(4, aio::ReapMode::automatic);
  if (!r.ctx.ring_reaping()) GTEST_SKIP() << "ring reaping is off (AIOPP_REAP=syscall or valgrind)";
  ASSERT_EQ(r.ctx.ready(), 4U);
  Reaps reaps;
  std::array<io_event, 8> evs{};
  int clocks = t_clock_reads;
  auto n = aio::wait_for(r.ctx, 3, evs, 5s);
  EXPECT_EQ(t_clock_reads - clocks, 0);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 4U) << "all that is ready, up to events.size()";
  EXPECT_TRUE(reaps.calls.empty());

  Ready r2(2, aio::ReapMode::automatic);
  const auto deadline = Clock::now() + 5s;
  clocks = t_clock_reads;
  n = aio::wait_until(r2.ctx, 2, evs, deadline);
  EXPECT_EQ(t_clock_reads - clocks, 0);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2U);
  n = aio::wait_until(r2.ctx, 0, evs, Clock::time_point::max());  // min_nr 0: a look, no wait
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_TRUE(reaps.calls.empty());
}

TEST(WaitFi, ReadyBatchTakesExactlyOneSyscallInSyscallMode) {
  Ready r(4);
  ASSERT_FALSE(r.ctx.ring_reaping());
  Reaps reaps;
  std::array<io_event, 8> evs{};
  auto n = aio::wait_for(r.ctx, 4, evs, 5s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 4U);
  ASSERT_EQ(reaps.calls.size(), 1U) << "no zero-timeout look before the wait";
  EXPECT_EQ(reaps.calls[0].call, Call::getevents);
  EXPECT_EQ(reaps.calls[0].min_nr, 4);
  EXPECT_GT(reaps.calls[0].timeout_ns, 4'000'000'000LL);

  Ready r2(2);
  reaps.calls.clear();
  n = aio::wait_until(r2.ctx, 2, evs, Clock::now() + 5s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2U);
  ASSERT_EQ(reaps.calls.size(), 1U);
  EXPECT_GT(reaps.calls[0].timeout_ns, 4'000'000'000LL);
}

TEST(WaitFi, PartialBatchIsCarriedOverAndTheRestWaitedFor) {
  Ready r(1, aio::ReapMode::automatic);
  if (!r.ctx.ring_reaping()) GTEST_SKIP() << "ring reaping is off (AIOPP_REAP=syscall or valgrind)";
  Pipe p;
  ASSERT_TRUE(p.ok());
  iocb late = aio::make_poll(p.rd.get(), aio::PollEvents::in);
  aio::set_user_data(late, 7);
  ASSERT_TRUE(r.ctx.submit(late));
  ASSERT_EQ(r.ctx.ready(), 1U);
  Reaps reaps;
  // The pipe becomes readable only once the wait is in the kernel.
  reaps.on_call = [&](fi::Args& a) -> long {
    (void)!::write(p.wr.get(), "x", 1);
    return fi::passthrough(a);
  };
  std::array<io_event, 4> evs{};
  const int clocks = t_clock_reads;
  auto n = aio::wait_for(r.ctx, 2, evs, 5s);
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, 2U);
  EXPECT_EQ(evs[0].data, 100U) << "the ready one, copied by the first look, is kept";
  EXPECT_EQ(evs[1].data, 7U);
  ASSERT_EQ(reaps.calls.size(), 1U);
  EXPECT_EQ(reaps.calls[0].call, Call::getevents);
  EXPECT_EQ(reaps.calls[0].min_nr, 1) << "only what is still missing";
  EXPECT_EQ(reaps.calls[0].nr, 3) << "into the room after the copied one";
  EXPECT_GT(reaps.calls[0].timeout_ns, 0);
  EXPECT_LE(reaps.calls[0].timeout_ns, 5'000'000'000LL);
  EXPECT_GE(t_clock_reads - clocks, 1) << "waiting reads the clock for the deadline";
}

TEST(WaitFi, PastDeadlineLooksOnceAtTheRing) {
  Ready r(0, aio::ReapMode::automatic);
  if (!r.ctx.ring_reaping()) GTEST_SKIP() << "ring reaping is off (AIOPP_REAP=syscall or valgrind)";
  Reaps reaps;
  std::array<io_event, 4> evs{};
  const int clocks = t_clock_reads;
  auto n = aio::wait_for(r.ctx, 1, evs, -5ms);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(t_clock_reads - clocks, 0) << "a timeout <= 0 needs no clock";
  n = aio::wait_until(r.ctx, 1, evs, Clock::now() - 1s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_TRUE(reaps.calls.empty()) << "the ring answers a poll";
}

TEST(WaitFi, PastDeadlineIsOneZeroTimeoutSyscallInSyscallMode) {
  Ready r(1);
  Reaps reaps;
  std::array<io_event, 4> evs{};
  const int clocks = t_clock_reads;
  auto n = aio::wait_for(r.ctx, 2, evs, 0ms);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(t_clock_reads - clocks, 0) << "a timeout <= 0 needs no clock";
  n = aio::wait_until(r.ctx, 1, evs, Clock::now() - 1s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  ASSERT_EQ(reaps.calls.size(), 2U) << "one io_getevents per poll";
  EXPECT_EQ(reaps.calls[0].timeout_ns, 0);
  EXPECT_EQ(reaps.calls[1].timeout_ns, 0);
}

TEST(WaitFi, InterruptedOrFailedPollIsRetriedOrReported) {
  Ready r(1);
  Reaps reaps;
  reaps.on_call = [&](fi::Args& a) -> long { return reaps.calls.size() == 1 ? -EINTR : fi::passthrough(a); };
  std::array<io_event, 2> evs{};
  auto n = aio::wait_for(r.ctx, 1, evs, 0ms);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  ASSERT_EQ(reaps.calls.size(), 2U);
  EXPECT_EQ(reaps.calls[1].timeout_ns, 0);

  reaps.calls.clear();
  reaps.on_call = [](fi::Args&) -> long { return -EFAULT; };
  n = aio::wait_for(r.ctx, 1, evs, 0ms);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_address);
  EXPECT_EQ(reaps.calls.size(), 1U);
}

TEST(WaitFi, SigmaskNeverTakesTheRingShortcut) {
  Ready r(2, aio::ReapMode::automatic);
  if (!r.ctx.ring_reaping()) GTEST_SKIP() << "ring reaping is off (AIOPP_REAP=syscall or valgrind)";
  ASSERT_EQ(r.ctx.ready(), 2U);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  Reaps reaps;
  std::array<io_event, 4> evs{};
  auto n = aio::wait_for(r.ctx, 1, evs, 5s, &mask);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2U);
  ASSERT_EQ(reaps.calls.size(), 1U) << "ready completions, but a masked wait is io_pgetevents";
  EXPECT_EQ(reaps.calls[0].call, Call::pgetevents);
  EXPECT_EQ(reaps.calls[0].mask, &mask);

  Ready r2(1, aio::ReapMode::automatic);
  reaps.calls.clear();
  n = aio::wait_until(r2.ctx, 1, evs, Clock::now() - 1s, &mask);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  ASSERT_EQ(reaps.calls.size(), 1U);
  EXPECT_EQ(reaps.calls[0].call, Call::pgetevents);
  EXPECT_EQ(reaps.calls[0].timeout_ns, 0);
}

}  // namespace
