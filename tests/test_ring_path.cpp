// Context's userspace ring reaping (ReapMode::automatic) against the real kernel, with the
// fault-injection seam used only to *count* the syscalls made (every call passes through).
//
// Kernel behaviour relied on: a buffered read of page-cached data and a poll on a readable
// eventfd complete inside io_submit, so their events are in the ring when submit returns;
// the ring's head is "written to by userland or under ring_lock" (fs/aio.c).
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <set>
#include <thread>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;

// The reaps a Recorder saw.
std::size_t reaps(const Recorder& rec) { return rec.count(Call::getevents) + rec.count(Call::pgetevents); }

// The tests that need the userspace path: skipped where it is off (valgrind, AIOPP_REAP).
class RingPath : public ::testing::Test {
 protected:
  void SetUp() override {
    auto probe = aio::Context::create(1);
    ASSERT_TRUE(probe) << probe.error().message();
    if (!probe->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here (valgrind or AIOPP_REAP)";
  }
  static aio::Context make(unsigned n) {
    auto c = aio::Context::create(n);
    EXPECT_TRUE(c) << c.error().message();
    return c ? std::move(*c) : aio::Context{};
  }
};

TEST_F(RingPath, ReadyEventsAreReapedWithoutASyscall) {
  aio::Context ctx = make(64);
  const Requests r = Requests::ready_polls(16, 100);
  ASSERT_TRUE(r.submit_to(ctx));
  EXPECT_EQ(ctx.ready(), 16u);

  Recorder rec;
  std::array<io_event, 16> ev{};
  auto n = ctx.getevents(16, ev);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 16u);
  EXPECT_EQ(reaps(rec), 0u) << "16 ready events must come from the ring";
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(aio::user_data(ev[i]), 100 + i);
    EXPECT_EQ(aio::request_of(ev[i]), &r.cbs[i]);
    auto res = aio::result(ev[i]);
    ASSERT_TRUE(res);
    EXPECT_NE(*res & POLLIN, 0u);
  }
  EXPECT_EQ(ctx.ready(), 0u);
}

// pgetevents() without a mask answers from the ring like getevents(); with one it is
// io_pgetevents' own call (the kernel installs the mask before it looks at the ring; the
// signal side of that is in test_pgetevents_mask).
TEST_F(RingPath, PgeteventsAnswersFromTheRingOnlyWithoutAMask) {
  aio::Context ctx = make(8);
  const Requests r = Requests::ready_polls(3);
  ASSERT_TRUE(r.submit_to(ctx));
  Recorder rec;
  std::array<io_event, 8> ev{};
  auto n = ctx.pgetevents(2, std::span(ev).first(2), std::chrono::seconds(5), nullptr);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(reaps(rec), 0u);
  sigset_t mask;
  sigemptyset(&mask);
  n = ctx.pgetevents(1, ev, std::chrono::seconds(5), &mask);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(rec.count(Call::pgetevents), 1u);
}

TEST_F(RingPath, ZeroTimeoutPollsTheRingEvenBelowMinNr) {
  aio::Context ctx = make(8);
  const Requests r = Requests::ready_polls(2);
  ASSERT_TRUE(r.submit_to(ctx));
  Recorder rec;
  std::array<io_event, 8> ev{};
  // Like the kernel with a zero timeout: whatever is there, even fewer than min_nr.
  auto n = ctx.getevents(5, ev, std::chrono::nanoseconds(0));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  n = ctx.getevents(1, ev, std::chrono::nanoseconds(0));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(reaps(rec), 0u);
}

TEST_F(RingPath, TooFewReadyFallsBackToTheKernelAndLosesNothing) {
  aio::Context ctx = make(8);
  const Requests r = Requests::ready_polls(2, 7);
  ASSERT_TRUE(r.submit_to(ctx));
  Recorder rec;
  std::array<io_event, 8> ev{};
  // 2 ready, 3 wanted: the call must wait in the kernel, which returns the 2 at the timeout.
  auto n = ctx.getevents(3, ev, std::chrono::milliseconds(20));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(rec.count(Call::getevents), 1u);
  EXPECT_EQ(aio::user_data(ev[0]), 7u);
  EXPECT_EQ(aio::user_data(ev[1]), 8u);
}

// Many more completions than the ring holds, reaped in odd-sized batches: every one comes
// back exactly once and in order across many wraps of head at ring->nr.
TEST_F(RingPath, WrapsAroundTheRingManyTimesInOrder) {
  aio::Context ctx = make(1);  // the kernel makes this 127 slots or so
  Fd efd = make_eventfd(1);
  Recorder rec;
  std::uint64_t next_submit = 0;
  std::uint64_t next_reap = 0;
  std::array<io_event, 13> ev{};
  while (next_reap < 5000) {
    const Requests r = Requests::polls(efd.get(), 11, next_submit);
    ASSERT_TRUE(r.submit_to(ctx));
    next_submit += 11;
    auto n = ctx.getevents(1, ev, std::chrono::seconds(5));
    ASSERT_TRUE(n);
    for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(aio::user_data(ev[i]), next_reap++);
    while (next_reap < next_submit) {
      n = ctx.getevents(1, ev, std::chrono::seconds(5));
      ASSERT_TRUE(n);
      for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(aio::user_data(ev[i]), next_reap++);
    }
  }
  EXPECT_EQ(reaps(rec), 0u);
  EXPECT_EQ(ctx.ready(), 0u);
}

TEST(RingPathOff, SyscallModeAlwaysAsksTheKernel) {
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  EXPECT_FALSE(ctx->ring_reaping());
  const Requests r = Requests::ready_polls(4);
  ASSERT_TRUE(r.submit_to(*ctx));
  EXPECT_EQ(ctx->ready(), 4u);  // ready() reads the ring in either mode
  Recorder rec;
  std::array<io_event, 8> ev{};
  auto n = ctx->getevents(4, ev);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(rec.count(Call::getevents), 1u);
}

// AIOPP_REAP=syscall turns the ring path off, any other value keeps it; so does valgrind
// (it preloads vgpreload_*.so: the kernel writes the ring behind its back), another preload
// does not.
TEST(RingPathOff, EnvironmentSwitches) {
  const auto ring_reaping = [] {
    auto c = aio::Context::create(8, aio::ReapMode::automatic);
    EXPECT_TRUE(c) << c.error().message();
    return c && c->ring_reaping();
  };
  {
    ScopedEnv reap("AIOPP_REAP", "syscall");
    EXPECT_FALSE(ring_reaping());
  }
  {
    ScopedEnv reap("AIOPP_REAP", "ring");
    ScopedEnv preload("LD_PRELOAD", "/usr/lib/libsomething.so");
    EXPECT_TRUE(ring_reaping());
  }
  {
    ScopedEnv reap("AIOPP_REAP", nullptr);
    ScopedEnv preload("LD_PRELOAD", "/usr/libexec/valgrind/vgpreload_memcheck-amd64-linux.so");
    EXPECT_FALSE(ring_reaping());
  }
}

// Two reapers and two submitters at once: each completion is delivered exactly once.
TEST(RingPathThreads, ConcurrentReapersSeeEveryCompletionOnce) {
  Fd efd = make_eventfd(1);
  auto ctx = aio::Context::create(256);
  ASSERT_TRUE(ctx);
  constexpr std::uint64_t per_submitter = 20000;
  std::atomic<std::uint64_t> reaped{0};
  std::vector<std::vector<std::uint64_t>> seen(2);
  std::atomic<bool> failed{false};
  auto submitter = [&](std::uint64_t base) {
    std::uint64_t sent = 0;
    while (sent < per_submitter && !failed) {
      const auto k = static_cast<std::size_t>(std::min<std::uint64_t>(8, per_submitter - sent));
      const Requests batch = Requests::polls(efd.get(), k, base + sent);
      auto r = ctx->submit(batch.batch());
      if (!r) {
        if (r.error() == std::errc::resource_unavailable_try_again) { std::this_thread::yield(); continue; }
        failed = true;
        return;
      }
      sent += *r;
    }
  };
  auto reaper = [&](std::size_t id) {
    std::array<io_event, 7> ev{};
    while (reaped.load() < 2 * per_submitter && !failed) {
      auto n = ctx->getevents(1, ev, std::chrono::milliseconds(10));
      if (!n) { failed = true; return; }
      for (std::size_t i = 0; i < *n; ++i) seen[id].push_back(aio::user_data(ev[i]));
      reaped += *n;
    }
  };
  std::thread r0(reaper, 0), r1(reaper, 1), s0(submitter, 0), s1(submitter, 1'000'000);
  s0.join();
  s1.join();
  r0.join();
  r1.join();
  ASSERT_FALSE(failed);
  std::set<std::uint64_t> all;
  for (auto& v : seen) {
    for (auto d : v) EXPECT_TRUE(all.insert(d).second) << "duplicate " << d;
  }
  EXPECT_EQ(all.size(), 2 * per_submitter);
}

// destroy() while other threads hammer ready() and zero-timeout getevents(): the ring is
// unmapped by io_destroy only after they have left it, so nothing faults.
TEST(RingPathThreads, DestroyWhileOthersReadTheRingDoesNotFault) {
  for (int round = 0; round < 20; ++round) {
    auto ctx = aio::Context::create(32);
    ASSERT_TRUE(ctx);
    const Requests r = Requests::ready_polls(8);
    ASSERT_TRUE(r.submit_to(*ctx));
    std::atomic<bool> stop{false};
    auto spin = [&] {
      std::array<io_event, 4> ev{};
      while (!stop) {
        (void)ctx->ready();
        auto n = ctx->getevents(0, ev, std::chrono::nanoseconds(0));
        if (!n && n.error() != std::errc::invalid_argument) ADD_FAILURE() << n.error().message();
      }
    };
    std::thread a(spin), b(spin);
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_TRUE(ctx->destroy());
    stop = true;
    a.join();
    b.join();
    EXPECT_EQ(ctx->ready(), 0u);
  }
}

}  // namespace
