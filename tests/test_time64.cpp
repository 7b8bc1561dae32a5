// Timeouts beyond the 32-bit time_t range, and the ABI facts the shim relies on (handle
// width, pointers through io_event's 64-bit fields, the ring), on the ABI this is built for.
// On ILP32 (i386 on an x86-64 kernel) waits use io_pgetevents_time64; the time32 fallback
// (kernels < 5.1) is forced through the shim's test seam.
#include <gtest/gtest.h>

#include <cstdint>
#include <thread>

#include "fi_child.hpp"
#include "syscall_testing.hpp"
#include "test_util.hpp"


namespace {

using namespace aiotest;

// 2^32 s: its low 32 bits are 0, so a timeout truncated to a 32-bit time_t is a zero
// timeout (an immediate return with nothing), never a wait.
constexpr std::chrono::nanoseconds beyond_time32 = std::chrono::seconds(std::int64_t{1} << 32);
// 2^31 s: one past the largest 32-bit time_t (negative once truncated).
constexpr std::chrono::nanoseconds just_beyond_time32 = std::chrono::seconds(std::int64_t{1} << 31);
constexpr std::chrono::nanoseconds time32_max = std::chrono::seconds(0x7fff'ffff);

// An IOCB_CMD_POLL on an eventfd that becomes readable `after` the submit: a completion the
// kernel must wait for.
class PendingPoll {
 public:
  explicit PendingPoll(aio::Context& ctx) : efd_(make_eventfd()), cb_(aio::make_poll(efd_.get(), aio::PollEvents::in)) {
    iocb* list[] = {&cb_};
    auto n = ctx.submit(list);
    submitted_ = n && *n == 1;
  }
  PendingPoll(const PendingPoll&) = delete;
  PendingPoll& operator=(const PendingPoll&) = delete;
  ~PendingPoll() {
    if (writer_.joinable()) writer_.join();
  }
  [[nodiscard]] bool submitted() const noexcept { return submitted_; }
  [[nodiscard]] const iocb* request() const noexcept { return &cb_; }
  void fire_after(std::chrono::milliseconds after) {
    writer_ = std::thread([fd = efd_.get(), after] {
      std::this_thread::sleep_for(after);
      const std::uint64_t one = 1;
      (void)!::write(fd, &one, sizeof one);
    });
  }

 private:
  Fd efd_;
  iocb cb_;
  bool submitted_ = false;
  std::thread writer_;
};

aio::Context make_context(aio::ReapMode mode) {
  auto c = aio::Context::create(8, mode);
  EXPECT_TRUE(c) << c.error().message();
  return c ? std::move(*c) : aio::Context{};
}

// Waits with `timeout` for a completion that arrives after ~100 ms: the call must return it
// (a truncated timeout would return at once with nothing, or never).
void expect_waits_for_completion(aio::ReapMode mode, std::chrono::nanoseconds timeout, bool masked) {
  aio::Context ctx = make_context(mode);
  ASSERT_TRUE(ctx.valid());
  PendingPoll poll(ctx);
  ASSERT_TRUE(poll.submitted());
  poll.fire_after(100ms);
  std::array<io_event, 2> ev{};
  sigset_t mask = current_thread_mask();
  const auto t0 = Clock::now();
  auto n = masked ? ctx.pgetevents(1, ev, timeout, &mask) : ctx.getevents(1, ev, timeout);
  const auto waited = Clock::now() - t0;
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, 1U);
  EXPECT_EQ(aio::request_of(ev[0]), poll.request()) << "io_event::obj narrows back to the iocb's address";
  EXPECT_GE(waited, 50ms);
  EXPECT_LT(waited, 30s);
}

TEST(Time64, TimeoutOf2Pow32SecondsWaitsForAPendingCompletion) {
  expect_waits_for_completion(aio::ReapMode::syscall, beyond_time32, false);
  expect_waits_for_completion(aio::ReapMode::automatic, beyond_time32, false);
}

TEST(Time64, MaskedTimeoutBeyondTime32WaitsForAPendingCompletion) {
  expect_waits_for_completion(aio::ReapMode::syscall, just_beyond_time32, true);
  expect_waits_for_completion(aio::ReapMode::syscall, beyond_time32, true);
}

TEST(Time64, ReadyCompletionReturnsAtOnceWithTheLargestTimeout) {
  // ~292 years: the largest nanosecond count, about 2^33 seconds.
  const auto largest = std::chrono::nanoseconds(std::numeric_limits<std::int64_t>::max());
  for (aio::ReapMode mode : {aio::ReapMode::syscall, aio::ReapMode::automatic}) {
    aio::Context ctx = make_context(mode);
    ASSERT_TRUE(ctx.valid());
    Fd efd = make_eventfd(1);  // readable: the poll completes inside io_submit
    iocb cb = aio::make_poll(efd.get(), aio::PollEvents::in);
    iocb* list[] = {&cb};
    ASSERT_EQ(ctx.submit(list).value_or(0), 1U);
    std::array<io_event, 1> ev{};
    const auto t0 = Clock::now();
    auto n = ctx.getevents(1, ev, largest);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, 1U);
    EXPECT_LT(Clock::now() - t0, 5s);
  }
}

// A deadline a century away (beyond time32) still returns the completion that comes first.
void expect_century_deadline_returns_completion(aio::ReapMode mode) {
  aio::Context ctx = make_context(mode);
  ASSERT_TRUE(ctx.valid());
  PendingPoll poll(ctx);
  ASSERT_TRUE(poll.submitted());
  poll.fire_after(100ms);
  std::array<io_event, 1> ev{};
  auto n = aio::wait_for(ctx, 1, ev, std::chrono::hours(24 * 365 * 100));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
}

TEST(Time64, DeadlineWaitBeyondTime32ReturnsTheCompletion) {
  expect_century_deadline_returns_completion(aio::ReapMode::automatic);
}

// ---- The ABI facts the shim and the ring reader rely on --------------------------------

TEST(Abi, HandleIsTheRingAddressAndPointersRoundTripThroughIoEvent) {
  static_assert(sizeof(aio_context_t) == sizeof(void*));
  static_assert(sizeof(io_event) == 32 && sizeof(iocb) == 64);
  aio::Observer obs;
  auto c = aio::Context::create(8, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(c) << c.error().message();
  // The ring is read at the handle's address, unless the ring path is off (valgrind,
  // AIOPP_REAP=syscall): then the same checks go through io_getevents.
  const bool ring = c->ring_reaping();
  Fd efd = make_eventfd(1);
  iocb cb = aio::make_poll(efd.get(), aio::PollEvents::in);
  cb.aio_data = 0x1234'5678'9abc'def0ULL;  // all 64 bits of user data survive on every ABI
  iocb* list[] = {&cb};
  ASSERT_EQ(c->submit(list).value_or(0), 1U);
  if (ring) {
    EXPECT_EQ(c->ready(), 1U) << "the ring header is read at the handle's address";
  }
  std::array<io_event, 1> ev{};
  auto n = c->getevents(1, ev, 0ns);
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, 1U);
  EXPECT_EQ(obs.events_via_ring(), ring ? 1U : 0U) << "reaped from the ring, no syscall";
  EXPECT_EQ(ev[0].data, 0x1234'5678'9abc'def0ULL);
  EXPECT_EQ(ev[0].obj, static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(&cb)))
      << "the kernel zero-extends the iocb's address";
  EXPECT_EQ(aio::request_of(ev[0]), &cb);
}

#if __SIZEOF_LONG__ == 4
// ---- ILP32: the time32 fallback (as on a kernel without io_pgetevents_time64) -----------

class Time32Fallback : public ::testing::Test {
 protected:
  void SetUp() override {
    // This kernel's own answer first: io_pgetevents_time64 exists since Linux 5.1.
    aio::Context ctx = make_context(aio::ReapMode::syscall);
    ASSERT_TRUE(ctx.valid());
    std::array<io_event, 1> ev{};
    ASSERT_TRUE(ctx.getevents(0, ev, 0ns));
    if (aio::sys::raw::time64_missing.load()) GTEST_SKIP() << "kernel without io_pgetevents_time64";
    aio::sys::testing::force_time32(true);
  }
  void TearDown() override { aio::sys::testing::force_time32(false); }
};

TEST_F(Time32Fallback, TimeoutBeyondTime32IsRefusedNotTruncated) {
  for (aio::ReapMode mode : {aio::ReapMode::syscall, aio::ReapMode::automatic}) {
    aio::Context ctx = make_context(mode);
    ASSERT_TRUE(ctx.valid());
    std::array<io_event, 1> ev{};
    sigset_t mask = current_thread_mask();
    const auto t0 = Clock::now();
    for (auto timeout : {just_beyond_time32, beyond_time32}) {
      auto g = ctx.getevents(1, ev, timeout);
      ASSERT_FALSE(g);
      EXPECT_EQ(g.error(), std::errc::value_too_large);
      auto p = ctx.pgetevents(1, ev, timeout, &mask);
      ASSERT_FALSE(p);
      EXPECT_EQ(p.error(), std::errc::value_too_large);
    }
    EXPECT_LT(Clock::now() - t0, 5s);
  }
}

TEST_F(Time32Fallback, TimeoutsInRangeWork) {
  aio::Context ctx = make_context(aio::ReapMode::syscall);
  ASSERT_TRUE(ctx.valid());
  std::array<io_event, 1> ev{};
  sigset_t mask = current_thread_mask();
  const auto t0 = Clock::now();
  auto g = ctx.getevents(1, ev, 30ms);  // io_getevents (time32): times out with nothing
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(*g, 0U);
  auto p = ctx.pgetevents(1, ev, 30ms, &mask);  // io_pgetevents (time32)
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, 0U);
  EXPECT_GE(Clock::now() - t0, 50ms);
  EXPECT_TRUE(aio::sys::raw::time64_missing.load());
  expect_waits_for_completion(aio::ReapMode::syscall, time32_max, false);
  expect_waits_for_completion(aio::ReapMode::syscall, time32_max, true);
}

TEST_F(Time32Fallback, DeadlineWaitBeyondTime32WaitsInSteps) {
  expect_century_deadline_returns_completion(aio::ReapMode::syscall);
}
#endif

#if defined(__i386__)
// ---- i386: a kernel that really answers ENOSYS for io_pgetevents_time64 -----------------

int time32_kernel_child() {
  // io_pgetevents_time64 fails with ENOSYS, as on Linux < 5.1 or under a sandbox that does
  // not know the call; everything else runs.
  if (!seccomp_fail_syscall(SYS_io_pgetevents_time64, ENOSYS)) return child_cannot;
  AIOTEST_CHILD_CHECK(!aio::sys::raw::time64_missing.load(), 2);
  const aio::Capabilities caps = aio::probe();
  AIOTEST_CHILD_CHECK(!caps.setup && !caps.pgetevents && !caps.poll, 3);
  AIOTEST_CHILD_CHECK(aio::sys::raw::time64_missing.load(), 4);  // ENOSYS seen once, remembered
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  AIOTEST_CHILD_CHECK(ctx, 5);
  std::array<io_event, 1> ev{};
  sigset_t mask;
  sigemptyset(&mask);
  auto g = ctx->getevents(1, ev, 20ms);
  AIOTEST_CHILD_CHECK(g && *g == 0, 6);
  auto p = ctx->pgetevents(1, ev, 20ms, &mask);
  AIOTEST_CHILD_CHECK(p && *p == 0, 7);
  g = ctx->getevents(1, ev, beyond_time32);
  AIOTEST_CHILD_CHECK(!g && g.error() == std::errc::value_too_large, 8);
  p = ctx->pgetevents(1, ev, just_beyond_time32, &mask);
  AIOTEST_CHILD_CHECK(!p && p.error() == std::errc::value_too_large, 9);
  Fd efd = make_eventfd(1);
  iocb cb = aio::make_poll(efd.get(), aio::PollEvents::in);
  iocb* list[] = {&cb};
  AIOTEST_CHILD_CHECK(ctx->submit(list).value_or(0) == 1, 10);
  g = ctx->getevents(1, ev, time32_max);
  AIOTEST_CHILD_CHECK(g && *g == 1 && aio::request_of(ev[0]) == &cb, 11);
  return 0;
}

TEST(Time32Kernel, EnosysForTime64FallsBackToTheTime32Calls) {
  const int rc = run_in_child(time32_kernel_child);
  if (rc == child_cannot) GTEST_SKIP() << "seccomp(2) refused here";
  EXPECT_EQ(rc, 0);
}
#endif

}  // namespace
