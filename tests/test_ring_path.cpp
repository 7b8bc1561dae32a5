// Context's userspace ring reaping (ReapMode::automatic) against the real kernel, with the
// fault-injection seam used only to *count* the syscalls made (every call passes through).
//
// Kernel behaviour relied on: a buffered read of page-cached data and a poll on a readable
// eventfd complete inside io_submit, so their events are in the ring when submit returns;
// the ring's head is "written to by userland or under ring_lock" (fs/aio.c).
#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include <aio/aio.hpp>
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "syscall_testing.hpp"

namespace {

using aio::sys::Call;

struct SyscallCounter {
  SyscallCounter() { aio::sys::testing::set_hook(&hook, this); }
  ~SyscallCounter() { aio::sys::testing::set_hook(nullptr, nullptr); }
  SyscallCounter(const SyscallCounter&) = delete;
  SyscallCounter& operator=(const SyscallCounter&) = delete;
  static long hook(aio::sys::testing::Args& a, void* self) {
    static_cast<SyscallCounter*>(self)->count[static_cast<std::size_t>(a.call)].fetch_add(1);
    return aio::sys::testing::passthrough(a);
  }
  int of(Call c) const { return count[static_cast<std::size_t>(c)].load(); }
  int reaps() const { return of(Call::getevents) + of(Call::pgetevents); }
  std::array<std::atomic<int>, 6> count{};
};

// An always-readable eventfd: a POLLIN poll on it completes inside io_submit.
struct ReadableEventfd {
  ReadableEventfd() : fd(::eventfd(1, EFD_CLOEXEC)) {}
  ~ReadableEventfd() { ::close(fd); }
  ReadableEventfd(const ReadableEventfd&) = delete;
  ReadableEventfd& operator=(const ReadableEventfd&) = delete;
  int fd;
};

// Submits n polls on a readable eventfd, with user data first, first+1, ...
void submit_ready_polls(aio::Context& ctx, int fd, std::size_t n, std::uint64_t first,
                        std::vector<iocb>& cbs) {
  cbs.resize(n);
  std::vector<iocb*> ptrs(n);
  for (std::size_t i = 0; i < n; ++i) {
    cbs[i] = aio::make_poll(fd, POLLIN);
    aio::set_user_data(cbs[i], first + i);
    ptrs[i] = &cbs[i];
  }
  std::size_t done = 0;
  while (done < n) {
    auto r = ctx.submit(std::span(ptrs).subspan(done));
    ASSERT_TRUE(r) << r.error().message();
    done += *r;
  }
}

TEST(RingPath, ReadyEventsAreReapedWithoutASyscall) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(64);
  ASSERT_TRUE(ctx) << ctx.error().message();
  if (!ctx->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here (valgrind or AIOPP_REAP)";
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 16, 100, cbs);
  EXPECT_EQ(ctx->ready(), 16u);

  SyscallCounter calls;
  std::array<io_event, 16> ev{};
  auto n = ctx->getevents(16, ev);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 16u);
  EXPECT_EQ(calls.reaps(), 0) << "16 ready events must come from the ring";
  for (std::size_t i = 0; i < 16; ++i) {
    EXPECT_EQ(aio::user_data(ev[i]), 100 + i);
    EXPECT_EQ(aio::request_of(ev[i]), &cbs[i]);
    auto res = aio::result(ev[i]);
    ASSERT_TRUE(res);
    EXPECT_NE(*res & POLLIN, 0u);
  }
  EXPECT_EQ(ctx->ready(), 0u);
}

TEST(RingPath, PgeteventsWithReadyEventsSkipsTheSyscallToo) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  if (!ctx->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here";
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 3, 0, cbs);
  SyscallCounter calls;
  sigset_t mask;
  sigemptyset(&mask);
  std::array<io_event, 8> ev{};
  auto n = ctx->pgetevents(2, ev, std::chrono::seconds(5), &mask);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
  EXPECT_EQ(calls.reaps(), 0);
}

TEST(RingPath, ZeroTimeoutPollsTheRingEvenBelowMinNr) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  if (!ctx->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here";
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 2, 0, cbs);
  SyscallCounter calls;
  std::array<io_event, 8> ev{};
  // Like the kernel with a zero timeout: whatever is there, even fewer than min_nr.
  auto n = ctx->getevents(5, ev, std::chrono::nanoseconds(0));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  n = ctx->getevents(1, ev, std::chrono::nanoseconds(0));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0u);
  EXPECT_EQ(calls.reaps(), 0);
}

TEST(RingPath, TooFewReadyFallsBackToTheKernelAndLosesNothing) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  if (!ctx->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here";
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 2, 7, cbs);
  SyscallCounter calls;
  std::array<io_event, 8> ev{};
  // 2 ready, 3 wanted: the call must wait in the kernel, which returns the 2 at the timeout.
  auto n = ctx->getevents(3, ev, std::chrono::milliseconds(20));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2u);
  EXPECT_EQ(calls.of(Call::getevents), 1);
  EXPECT_EQ(aio::user_data(ev[0]), 7u);
  EXPECT_EQ(aio::user_data(ev[1]), 8u);
}

// Many more completions than the ring holds, reaped in odd-sized batches: every one comes
// back exactly once and in order across many wraps of head at ring->nr.
TEST(RingPath, WrapsAroundTheRingManyTimesInOrder) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(1);  // the kernel makes this 127 slots or so
  ASSERT_TRUE(ctx);
  if (!ctx->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here";
  SyscallCounter calls;
  std::uint64_t next_submit = 0;
  std::uint64_t next_reap = 0;
  std::vector<iocb> cbs;
  std::array<io_event, 13> ev{};
  while (next_reap < 5000) {
    submit_ready_polls(*ctx, efd.fd, 11, next_submit, cbs);
    next_submit += 11;
    auto n = ctx->getevents(1, ev, std::chrono::seconds(5));
    ASSERT_TRUE(n);
    for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(aio::user_data(ev[i]), next_reap++);
    while (next_reap < next_submit) {
      n = ctx->getevents(1, ev, std::chrono::seconds(5));
      ASSERT_TRUE(n);
      for (std::size_t i = 0; i < *n; ++i) ASSERT_EQ(aio::user_data(ev[i]), next_reap++);
    }
  }
  EXPECT_EQ(calls.reaps(), 0);
  EXPECT_EQ(ctx->ready(), 0u);
}

TEST(RingPath, SyscallModeAlwaysAsksTheKernel) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  EXPECT_FALSE(ctx->ring_reaping());
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 4, 0, cbs);
  EXPECT_EQ(ctx->ready(), 4u);  // ready() reads the ring in either mode
  SyscallCounter calls;
  std::array<io_event, 8> ev{};
  auto n = ctx->getevents(4, ev);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(calls.of(Call::getevents), 1);
}

TEST(RingPath, EnvironmentCanForceTheSyscallPath) {
  ASSERT_EQ(::setenv("AIOPP_REAP", "syscall", 1), 0);
  auto forced = aio::Context::create(8);
  ASSERT_EQ(::unsetenv("AIOPP_REAP"), 0);
  ASSERT_TRUE(forced);
  EXPECT_FALSE(forced->ring_reaping());
  auto normal = aio::Context::create(8);
  ASSERT_TRUE(normal);
  if (std::getenv("LD_PRELOAD") == nullptr) {
    EXPECT_TRUE(normal->ring_reaping());
  }
}

// Two reapers and two submitters at once: each completion is delivered exactly once.
TEST(RingPath, ConcurrentReapersSeeEveryCompletionOnce) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(256);
  ASSERT_TRUE(ctx);
  constexpr std::uint64_t per_submitter = 20000;
  std::atomic<std::uint64_t> reaped{0};
  std::vector<std::vector<std::uint64_t>> seen(2);
  std::atomic<bool> failed{false};
  auto submitter = [&](std::uint64_t base) {
    std::vector<iocb> cbs(8);
    std::array<iocb*, 8> ptrs{};
    std::uint64_t sent = 0;
    while (sent < per_submitter && !failed) {
      const std::size_t k = std::min<std::uint64_t>(8, per_submitter - sent);
      for (std::size_t i = 0; i < k; ++i) {
        cbs[i] = aio::make_poll(efd.fd, POLLIN);
        aio::set_user_data(cbs[i], base + sent + i);
        ptrs[i] = &cbs[i];
      }
      auto r = ctx->submit(std::span(ptrs.data(), k));
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
TEST(RingPath, DestroyWhileOthersReadTheRingDoesNotFault) {
  for (int round = 0; round < 20; ++round) {
    ReadableEventfd efd;
    auto ctx = aio::Context::create(32);
    ASSERT_TRUE(ctx);
    std::vector<iocb> cbs;
    submit_ready_polls(*ctx, efd.fd, 8, 0, cbs);
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

// In a forked child the inherited Context never reads the shared ring: ready() is 0 and
// getevents fails, and the parent still reaps every completion afterwards.
TEST(RingPath, ForkedChildNeverReadsOrAdvancesTheParentsRing) {
  ReadableEventfd efd;
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::vector<iocb> cbs;
  submit_ready_polls(*ctx, efd.fd, 4, 40, cbs);
  ASSERT_EQ(ctx->ready(), 4u);
  const pid_t pid = ::fork();
  ASSERT_NE(pid, -1);
  if (pid == 0) {
    int bad = 0;
    if (ctx->ready() != 0) bad |= 1;
    std::array<io_event, 8> ev{};
    auto n = ctx->getevents(0, ev, std::chrono::nanoseconds(0));
    if (n || n.error() != std::errc::invalid_argument) bad |= 2;
    if (ctx->valid()) bad |= 4;
    ::_exit(bad);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
  std::array<io_event, 8> ev{};
  auto n = ctx->getevents(4, ev, std::chrono::seconds(5));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 4u);
  EXPECT_EQ(aio::user_data(ev[0]), 40u);
}

}  // namespace
