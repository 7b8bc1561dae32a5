// pgetevents() with a signal mask behaves exactly like the kernel's io_pgetevents, whatever the
// reap mode: the kernel installs the mask before it looks at the ring, so a pending signal the
// mask unblocks is delivered even when completions are ready, and with none ready and a zero
// timeout the call fails with EINTR. Each case runs against the raw syscall too, as the
// reference. Without a mask the ring fast path still answers.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <optional>

#include "test_util.hpp"

namespace {

using namespace std::chrono_literals;
using aiotest::Pipe;
using aiotest::ScopedSignalHandler;
using aiotest::ScopedThreadMask;

std::atomic<int> g_handled{0};
void count_signal(int) { g_handled.fetch_add(1, std::memory_order_relaxed); }

// Who answers the call: aiopp in either reap mode, or the raw syscall.
enum class Arm { automatic, syscall, raw };

const char* name_of(Arm a) {
  switch (a) {
    case Arm::automatic: return "automatic";
    case Arm::syscall: return "syscall";
    case Arm::raw: return "raw";
  }
  return "?";
}

// The kernel's __kernel_timespec and __aio_sigset, for the raw reference calls.
struct RawTimespec {
  long long tv_sec, tv_nsec;
};
struct RawSigset {
  const sigset_t* mask;
  std::size_t size;
};

class PgeteventsWithMask : public ::testing::TestWithParam<Arm> {
 protected:
  void SetUp() override {
    g_handled = 0;
    auto c = aio::Context::create(8, GetParam() == Arm::syscall ? aio::ReapMode::syscall : aio::ReapMode::automatic,
                                  &observer_);
    ASSERT_TRUE(c) << c.error().message();
    ctx_ = std::move(*c);
    ASSERT_TRUE(handler_.ok());
    // SIGUSR2 blocked in the thread and pending; the mask passed to the call unblocks it.
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &usr2, nullptr), 0);
    wait_mask_ = aiotest::current_thread_mask();
    sigdelset(&wait_mask_, SIGUSR2);
  }

  void TearDown() override {
    // Nothing of this test may stay pending for the next one.
    sigset_t usr2;
    sigemptyset(&usr2);
    sigaddset(&usr2, SIGUSR2);
    const timespec zero{0, 0};
    while (::sigtimedwait(&usr2, nullptr, &zero) == SIGUSR2) {
    }
  }

  static void make_pending() {
    ASSERT_EQ(::pthread_kill(::pthread_self(), SIGUSR2), 0);
    sigset_t pending;
    sigemptyset(&pending);
    ASSERT_EQ(::sigpending(&pending), 0);
    ASSERT_EQ(sigismember(&pending, SIGUSR2), 1);
  }

  // One completed poll waiting in the ring (a pipe with data polls ready at submit).
  void make_ready() {
    ASSERT_TRUE(pipe_.ok());
    ASSERT_EQ(::write(pipe_.wr.get(), "x", 1), 1);
    cb_ = aio::make_poll(pipe_.rd.get(), aio::PollEvents::in);
    ASSERT_TRUE(ctx_.submit(cb_));
    if (ctx_.ring_reaping()) {
      const auto until = std::chrono::steady_clock::now() + 2s;
      while (ctx_.ready() == 0 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(100us);
      ASSERT_EQ(ctx_.ready(), 1u) << "the ring path would have answered without the kernel";
    }
  }

  // pgetevents(min_nr = 1) with the mask, through the arm under test.
  aio::Result<std::size_t> call(std::optional<std::chrono::nanoseconds> timeout) {
    if (GetParam() != Arm::raw) return ctx_.pgetevents(1, events_, timeout, &wait_mask_);
    RawTimespec ts{};
    if (timeout) ts = {timeout->count() / 1'000'000'000, timeout->count() % 1'000'000'000};
    const RawSigset sig{&wait_mask_, _NSIG / 8};
    const long r = ::syscall(SYS_io_pgetevents, static_cast<long>(ctx_.native_handle()), 1L,
                             static_cast<long>(events_.size()), events_.data(), timeout ? &ts : nullptr, &sig);
    if (r < 0) return aio::fail(errno);
    return static_cast<std::size_t>(r);
  }

  aio::Observer observer_;
  aio::Context ctx_;
  ScopedThreadMask restore_mask_;
  ScopedSignalHandler handler_{SIGUSR2, count_signal};
  sigset_t wait_mask_{};
  Pipe pipe_;
  iocb cb_{};
  std::array<io_event, 4> events_{};
};

TEST_P(PgeteventsWithMask, ReadyCompletionWithTimeoutReturnsItAndDeliversThePendingSignal) {
  make_ready();
  make_pending();
  auto n = call(100ms);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(aio::request_of(events_[0]), &cb_);
  EXPECT_EQ(g_handled.load(), 1) << "the handler must run, as with io_pgetevents";
  EXPECT_EQ(observer_.events_via_ring(), 0u);
}

TEST_P(PgeteventsWithMask, NothingReadyZeroTimeoutFailsWithEintrAndDeliversThePendingSignal) {
  make_pending();
  auto n = call(0ns);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::interrupted);
  EXPECT_EQ(g_handled.load(), 1);
}

TEST_P(PgeteventsWithMask, ReadyCompletionZeroTimeoutReturnsItAndDeliversThePendingSignal) {
  make_ready();
  make_pending();
  auto n = call(0ns);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(g_handled.load(), 1);
  EXPECT_EQ(observer_.events_via_ring(), 0u);
}

TEST_P(PgeteventsWithMask, ThreadMaskIsRestoredAfterTheCall) {
  const sigset_t before = aiotest::current_thread_mask();
  make_ready();
  make_pending();
  ASSERT_TRUE(call(0ns));
  const sigset_t after = aiotest::current_thread_mask();
  EXPECT_EQ(sigismember(&after, SIGUSR2), 1);
  for (int sig = 1; sig < NSIG; ++sig) EXPECT_EQ(sigismember(&before, sig), sigismember(&after, sig)) << sig;
}

// The same situations through aiopp only (no raw reference): wait_for, and the mask-less path.
using AioppWithMask = PgeteventsWithMask;

TEST_P(AioppWithMask, WaitForWithAMaskDeliversThePendingSignalWhenEventsAreReady) {
  make_ready();
  make_pending();
  auto n = aio::wait_for(ctx_, 1, events_, 100ms, &wait_mask_);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(g_handled.load(), 1);
  EXPECT_EQ(observer_.events_via_ring(), 0u);
}

TEST_P(AioppWithMask, WaitForWithAMaskAndNothingReadyDeliversTheSignalAndReturnsAtTheDeadline) {
  make_pending();
  auto n = aio::wait_for(ctx_, 1, events_, 0ms, &wait_mask_);
  ASSERT_TRUE(n) << n.error().message();  // EINTR is retried; the deadline is no error
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(g_handled.load(), 1);
}

TEST_P(AioppWithMask, WithoutAMaskTheRingStillAnswersAndThePendingSignalStaysPending) {
  make_ready();
  make_pending();
  auto n = ctx_.pgetevents(1, events_, 100ms, nullptr);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(g_handled.load(), 0) << "no mask: the thread's mask (SIGUSR2 blocked) stays";
  EXPECT_EQ(observer_.events_via_ring(), ctx_.ring_reaping() ? 1u : 0u);
}

std::string arm_name(const ::testing::TestParamInfo<Arm>& i) { return name_of(i.param); }

INSTANTIATE_TEST_SUITE_P(AllArms, PgeteventsWithMask, ::testing::Values(Arm::automatic, Arm::syscall, Arm::raw),
                         arm_name);
INSTANTIATE_TEST_SUITE_P(ReapModes, AioppWithMask, ::testing::Values(Arm::automatic, Arm::syscall), arm_name);

}  // namespace
