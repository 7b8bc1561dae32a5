// io_getevents() / io_pgetevents() argument checks, timeouts and signal interruption.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "test_util.hpp"

namespace {

using namespace aiotest;

std::atomic<int> g_handled{0};
void count_signal(int) { g_handled.fetch_add(1, std::memory_order_relaxed); }

using Getevents = ContextTest;

TEST_F(Getevents, MinNrGreaterThanSpanSizeIsEinval) {
  io_event ev[2];
  auto g = ctx.getevents(3, ev, 0ns);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::invalid_argument);
  auto p = ctx.pgetevents(3, ev, 0ns, nullptr);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), std::errc::invalid_argument);
  auto e = ctx.getevents(1, std::span<io_event>{}, std::nullopt);  // would otherwise block forever
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::invalid_argument);
}

// The kernel does not validate the timespec (a negative one blocks forever), so the library
// must refuse it before the syscall; a hang here is caught by the bound and the ctest timeout.
TEST_F(Getevents, NegativeTimeoutIsEinvalAndDoesNotBlock) {
  io_event ev[1];
  const auto t0 = Clock::now();
  auto g = ctx.getevents(1, ev, -1ns);
  auto g2 = ctx.getevents(1, ev, std::chrono::nanoseconds(-1s));
  sigset_t mask = current_thread_mask();
  auto p = ctx.pgetevents(1, ev, -5ms, &mask);
  auto p2 = ctx.pgetevents(1, ev, -1ns, nullptr);
  EXPECT_LT(Clock::now() - t0, 2s);
  for (const auto* r : {&g, &g2, &p, &p2}) {
    ASSERT_FALSE(*r);
    EXPECT_EQ(r->error(), std::errc::invalid_argument);
  }
}

TEST_F(Getevents, ZeroTimeoutPollsAndReturnsZeroWhenNothingPending) {
  io_event ev[4];
  const auto t0 = Clock::now();
  auto g = ctx.getevents(1, ev, 0ns);
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(*g, 0u);
  auto p = ctx.pgetevents(1, ev, 0ns, nullptr);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, 0u);
  EXPECT_LT(Clock::now() - t0, 1s);
}

TEST_F(Getevents, MinNrZeroReturnsImmediatelyEvenWithoutTimeout) {
  io_event ev[4];
  const auto t0 = Clock::now();
  auto g = ctx.getevents(0, ev, std::nullopt);
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(*g, 0u);
  EXPECT_LT(Clock::now() - t0, 2s);
}

TEST_F(Getevents, TimeoutExpiresWithZeroEvents) {
  io_event ev[4];
  for (int pg = 0; pg < 2; ++pg) {
    const auto t0 = Clock::now();
    auto g = pg ? ctx.pgetevents(1, ev, 50ms, nullptr) : ctx.getevents(1, ev, 50ms);
    const auto elapsed = Clock::now() - t0;
    ASSERT_TRUE(g) << g.error().message();
    EXPECT_EQ(*g, 0u);
    EXPECT_GE(elapsed, 45ms);
    EXPECT_LT(elapsed, 2s);
  }
}

TEST_F(Getevents, CopiesAtMostSpanSizeAndKeepsTheRest) {
  const Requests r = Requests::file_reads(5, 10);
  ASSERT_TRUE(r.submit_to(ctx));
  io_event ev[2];
  auto g = ctx.getevents(2, ev, 2s);
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(*g, 2u);
  auto rest = reap(ctx, 3);
  EXPECT_EQ(rest.size(), 3u);
  io_event none[1];
  auto z = ctx.getevents(0, none, 0ns);
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, 0u);
}

// io_getevents returns -EINTR (never -ERESTARTSYS) when a handler runs, so it is not
// restarted even under SA_RESTART. The signal is sent repeatedly from another thread until
// the wait ends, so it does not matter whether the first one arrives before the syscall.
void expect_interrupted_by_handler(aio::Context& ctx, int sa_flags, bool use_pgetevents) {
  ScopedSignalHandler handler(SIGUSR1, count_signal, sa_flags);
  ASSERT_TRUE(handler.ok());
  ScopedThreadMask restore_mask;
  sigset_t unblock;
  sigemptyset(&unblock);
  sigaddset(&unblock, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &unblock, nullptr), 0);
  g_handled = 0;
  std::atomic<bool> done{false};
  const pthread_t target = ::pthread_self();
  std::thread sender([&] {
    while (!done.load()) {
      ::pthread_kill(target, SIGUSR1);
      std::this_thread::sleep_for(10ms);
    }
  });
  io_event ev[1];
  const auto t0 = Clock::now();
  auto g = use_pgetevents ? ctx.pgetevents(1, ev, 10s, nullptr) : ctx.getevents(1, ev, 10s);
  const auto elapsed = Clock::now() - t0;
  done = true;
  sender.join();
  ASSERT_FALSE(g) << "returned " << *g << " events";
  EXPECT_EQ(g.error(), std::errc::interrupted);
  EXPECT_GE(g_handled.load(), 1);
  EXPECT_LT(elapsed, 5s);
}

TEST_F(Getevents, SignalHandlerInterruptsWaitWithEintr) { expect_interrupted_by_handler(ctx, 0, false); }
TEST_F(Getevents, SignalHandlerInterruptsWaitWithEintrEvenUnderSaRestart) {
  expect_interrupted_by_handler(ctx, SA_RESTART, false);
}
TEST_F(Getevents, PgeteventsWithNullMaskIsInterruptedLikeGetevents) {
  expect_interrupted_by_handler(ctx, 0, true);
}

TEST_F(Getevents, PgeteventsWithNullMaskReapsCompletions) {
  TempDir dir;
  Fd fd = dir.make_file("f", "hello");
  ASSERT_TRUE(fd.ok());
  std::string buf(5, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[2];
  auto p = ctx.pgetevents(1, ev, 2s, nullptr);
  ASSERT_TRUE(p) << p.error().message();
  ASSERT_EQ(*p, 1u);
  EXPECT_EQ(ev[0].res, 5);
  EXPECT_EQ(aio::request_of(ev[0]), &cb);
  EXPECT_EQ(buf, "hello");
}

// ---- io_pgetevents signal-mask semantics (like ppoll) ------------------------------------

class PgeteventsMask : public Getevents {
 protected:
  /// The set holding just `sig`.
  static sigset_t only(int sig) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    return set;
  }
  /// Every signal is blocked in `after` exactly when it was in `before`.
  static void expect_same_mask(const sigset_t& before, const sigset_t& after) {
    for (int s = 1; s < NSIG; ++s) EXPECT_EQ(sigismember(&after, s), sigismember(&before, s)) << "signal " << s;
  }
};

// The mask passed in blocks SIGUSR1 (unblocked in the thread): a SIGUSR1 sent during the wait
// stays pending, so the wait runs to its timeout instead of returning EINTR; only when the
// thread's own mask is restored on return is it delivered.
TEST_F(PgeteventsMask, SignalBlockedByPassedMaskDoesNotInterruptTheWait) {
  ScopedSignalHandler handler(SIGUSR1, count_signal);
  ASSERT_TRUE(handler.ok());
  ScopedThreadMask restore_mask;
  const sigset_t usr1 = only(SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_UNBLOCK, &usr1, nullptr), 0);
  const sigset_t before = current_thread_mask();
  sigset_t wait_mask = before;
  sigaddset(&wait_mask, SIGUSR1);
  g_handled = 0;

  std::atomic<bool> sent{false};
  const pthread_t target = ::pthread_self();
  std::thread sender([&] {
    std::this_thread::sleep_for(50ms);
    ::pthread_kill(target, SIGUSR1);
    sent = true;
  });
  io_event ev[1];
  const auto t0 = Clock::now();
  auto g = ctx.pgetevents(1, ev, 400ms, &wait_mask);
  const auto elapsed = Clock::now() - t0;
  const bool sent_before_return = sent.load();
  sender.join();
  ASSERT_TRUE(sent_before_return) << "sender was too slow; the test proves nothing";
  ASSERT_TRUE(g) << "wait ended with " << g.error().message() << " after "
                 << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
  EXPECT_EQ(*g, 0u);
  EXPECT_GE(elapsed, 350ms);
  // Delivered exactly once, after the thread's mask (SIGUSR1 unblocked) came back.
  EXPECT_EQ(g_handled.load(), 1);
  expect_same_mask(before, current_thread_mask());
}

// SIGUSR2 is blocked in the thread and already pending; the mask passed in unblocks it,
// so the wait is interrupted at once, the handler runs, and the thread's mask (SIGUSR2
// blocked) is back afterwards.
TEST_F(PgeteventsMask, PendingSignalUnblockedByPassedMaskInterruptsAndThreadMaskIsRestored) {
  ScopedSignalHandler handler(SIGUSR2, count_signal);
  ASSERT_TRUE(handler.ok());
  ScopedThreadMask restore_mask;
  const sigset_t usr2 = only(SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, nullptr), 0);
  g_handled = 0;
  ASSERT_EQ(::pthread_kill(::pthread_self(), SIGUSR2), 0);
  sigset_t pending;
  ASSERT_EQ(::sigpending(&pending), 0);
  ASSERT_EQ(sigismember(&pending, SIGUSR2), 1);
  EXPECT_EQ(g_handled.load(), 0);

  const sigset_t before = current_thread_mask();
  sigset_t wait_mask = before;
  sigdelset(&wait_mask, SIGUSR2);
  io_event ev[1];
  const auto t0 = Clock::now();
  auto g = ctx.pgetevents(1, ev, 5s, &wait_mask);
  EXPECT_LT(Clock::now() - t0, 2s);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::interrupted);
  EXPECT_EQ(g_handled.load(), 1);
  EXPECT_TRUE(is_blocked(SIGUSR2));
  expect_same_mask(before, current_thread_mask());
  ASSERT_EQ(::sigpending(&pending), 0);
  EXPECT_EQ(sigismember(&pending, SIGUSR2), 0);
}

// Same, with the signal arriving from another thread while the wait is in progress.
TEST_F(PgeteventsMask, SignalBlockedInThreadButUnblockedByPassedMaskInterruptsTheWait) {
  ScopedSignalHandler handler(SIGUSR2, count_signal);
  ASSERT_TRUE(handler.ok());
  ScopedThreadMask restore_mask;
  const sigset_t usr2 = only(SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, nullptr), 0);
  g_handled = 0;
  sigset_t wait_mask = current_thread_mask();
  sigdelset(&wait_mask, SIGUSR2);

  std::atomic<bool> done{false};
  const pthread_t target = ::pthread_self();
  std::thread sender([&] {
    std::this_thread::sleep_for(30ms);
    while (!done.load()) {
      ::pthread_kill(target, SIGUSR2);
      std::this_thread::sleep_for(20ms);
    }
  });
  io_event ev[1];
  const auto t0 = Clock::now();
  auto g = ctx.pgetevents(1, ev, 10s, &wait_mask);
  const auto elapsed = Clock::now() - t0;
  done = true;
  sender.join();
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::interrupted);
  EXPECT_LT(elapsed, 5s);
  EXPECT_GE(g_handled.load(), 1);
  EXPECT_TRUE(is_blocked(SIGUSR2));
  // Signals the sender raised after the wait ended stay pending (blocked): drain them.
  const int handled_after_wait = g_handled.load();
  sigset_t pending;
  ASSERT_EQ(::sigpending(&pending), 0);
  if (sigismember(&pending, SIGUSR2) == 1) {
    timespec zero{0, 0};
    EXPECT_EQ(::sigtimedwait(&usr2, nullptr, &zero), SIGUSR2);
  }
  EXPECT_EQ(g_handled.load(), handled_after_wait);
}

}  // namespace
