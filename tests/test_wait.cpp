// Deadline waits (include/aio/wait.hpp) against the real kernel, with real signals.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

std::atomic<int> g_signals{0};
void count_signal(int) { g_signals.fetch_add(1, std::memory_order_relaxed); }

// Sends SIGUSR1 to `target` every `period` until stopped.
class Interrupter {
 public:
  Interrupter(pthread_t target, std::chrono::microseconds period)
      : thread_([this, target, period] {
          while (!stop_.load()) {
            ::pthread_kill(target, SIGUSR1);
            std::this_thread::sleep_for(period);
          }
        }) {}
  Interrupter(const Interrupter&) = delete;
  Interrupter& operator=(const Interrupter&) = delete;
  ~Interrupter() {
    stop_ = true;
    thread_.join();
  }

 private:
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(Wait, ReturnsWhatItHasAtTheDeadline) {
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::array<io_event, 4> evs{};
  const auto t0 = Clock::now();
  auto n = aio::wait_for(*ctx, 1, evs, 100ms);
  const auto took = Clock::now() - t0;
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(took, 100ms);
  EXPECT_LT(took, 2s);
}

TEST(Wait, PastDeadlinePollsOnce) {
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  Fd efd = make_eventfd();
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, sizeof one), 8);
  std::array<iocb, 2> cbs{aio::make_poll(efd.get(), aio::PollEvents::in),
                          aio::make_poll(efd.get(), aio::PollEvents::in)};
  std::array<iocb*, 2> ptrs{&cbs[0], &cbs[1]};
  ASSERT_EQ(ctx->submit(ptrs).value_or(0), 2U);
  std::array<io_event, 4> evs{};
  auto n = aio::wait_until(*ctx, 4, evs, Clock::now() - 1s);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2U);
  n = aio::wait_for(*ctx, 1, evs, -5ms);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
}

TEST(Wait, InvalidArguments) {
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::array<io_event, 2> evs{};
  auto n = aio::wait_for(*ctx, 3, evs, 10ms);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
  aio::Context empty;
  n = aio::wait_for(empty, 1, evs, 10ms);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

TEST(Wait, KeepsTheDeadlineThroughRepeatedSignals) {
  ScopedSignalHandler h(SIGUSR1, count_signal, 0);  // no SA_RESTART: io_getevents -> EINTR
  ASSERT_TRUE(h.ok());
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::array<io_event, 4> evs{};
  g_signals = 0;
  const auto t0 = Clock::now();
  aio::Result<std::size_t> n;
  {
    Interrupter irq(::pthread_self(), 2ms);
    n = aio::wait_for(*ctx, 1, evs, 200ms);
  }
  const auto took = Clock::now() - t0;
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(took, 200ms);
  EXPECT_LT(took, 1500ms) << "each EINTR must retry with the time left, not the whole timeout";
  EXPECT_GT(g_signals.load(), 5);
}

TEST(Wait, AccumulatesCompletionsAcrossSignals) {
  ScopedSignalHandler h(SIGUSR1, count_signal, 0);
  ASSERT_TRUE(h.ok());
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::array<Pipe, 3> pipes;
  std::array<iocb, 3> cbs{};
  std::array<iocb*, 3> ptrs{};
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_TRUE(pipes[i].ok());
    cbs[i] = aio::make_poll(pipes[i].rd.get(), aio::PollEvents::in);
    aio::set_user_data(cbs[i], i);
    ptrs[i] = &cbs[i];
  }
  ASSERT_EQ(ctx->submit(ptrs).value_or(0), 3U);
  std::thread writer([&] {
    for (auto& p : pipes) {
      std::this_thread::sleep_for(40ms);
      (void)!::write(p.wr.get(), "x", 1);
    }
  });
  g_signals = 0;
  std::array<io_event, 8> evs{};
  aio::Result<std::size_t> n;
  {
    Interrupter irq(::pthread_self(), 1ms);
    n = aio::wait_for(*ctx, 3, evs, 10s);
  }
  writer.join();
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, 3U);
  std::array<int, 3> seen{};
  for (std::size_t i = 0; i < 3; ++i) ++seen.at(static_cast<std::size_t>(evs[i].data));
  EXPECT_EQ(seen, (std::array<int, 3>{1, 1, 1}));
  EXPECT_GT(g_signals.load(), 5);
}

TEST(Wait, SigmaskUnblocksOnlyWhileWaiting) {
  ScopedSignalHandler h(SIGUSR1, count_signal, 0);
  ASSERT_TRUE(h.ok());
  ScopedThreadMask restore;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, nullptr), 0);
  sigset_t wait_mask = current_thread_mask();
  sigdelset(&wait_mask, SIGUSR1);

  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::array<io_event, 2> evs{};
  g_signals = 0;
  const auto t0 = Clock::now();
  aio::Result<std::size_t> n;
  {
    Interrupter irq(::pthread_self(), 2ms);
    n = aio::wait_for(*ctx, 1, evs, 150ms, &wait_mask);
  }
  const auto took = Clock::now() - t0;
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(took, 150ms);
  EXPECT_LT(took, 1500ms);
  EXPECT_GT(g_signals.load(), 5) << "signals are delivered while waiting";
  EXPECT_TRUE(is_blocked(SIGUSR1)) << "and blocked again afterwards";
}

// Completions already in the ring: the first look returns them, with no reap syscall in
// automatic mode (the observer counts what came from where).
TEST(Wait, ReadyCompletionsAreReturnedAtOnce) {
  for (const auto mode : {aio::ReapMode::automatic, aio::ReapMode::syscall}) {
    aio::Observer obs;
    auto ctx = aio::Context::create(8, mode, &obs);
    ASSERT_TRUE(ctx);
    Fd efd = make_eventfd(1);
    std::array<iocb, 3> cbs{};
    std::array<iocb*, 3> ptrs{};
    for (std::size_t i = 0; i < 3; ++i) {
      cbs[i] = aio::make_poll(efd.get(), aio::PollEvents::in);
      aio::set_user_data(cbs[i], i);
      ptrs[i] = &cbs[i];
    }
    ASSERT_EQ(ctx->submit(ptrs).value_or(0), 3U);
    std::array<io_event, 8> evs{};
    auto n = aio::wait_for(*ctx, 3, evs, 10s);
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 3U);
    std::array<int, 3> seen{};
    for (std::size_t i = 0; i < 3; ++i) ++seen.at(static_cast<std::size_t>(evs[i].data));
    EXPECT_EQ(seen, (std::array<int, 3>{1, 1, 1}));
    if (ctx->ring_reaping()) {
      EXPECT_EQ(obs.events_via_ring(), 3U);
      EXPECT_EQ(obs.syscalls(aio::Syscall::getevents) + obs.syscalls(aio::Syscall::pgetevents), 0U);
    } else {
      EXPECT_EQ(obs.events_via_syscall(), 3U);
      EXPECT_EQ(obs.syscalls(aio::Syscall::getevents), 1U);
    }
  }
}

// Fewer ready than asked: those are kept, and the wait goes on for the rest.
TEST(Wait, PartlyReadyKeepsThoseAndWaitsForTheRest) {
  for (const auto mode : {aio::ReapMode::automatic, aio::ReapMode::syscall}) {
    aio::Observer obs;
    auto ctx = aio::Context::create(8, mode, &obs);
    ASSERT_TRUE(ctx);
    Fd efd = make_eventfd(1);
    Pipe p;
    ASSERT_TRUE(p.ok());
    std::array<iocb, 2> cbs{aio::make_poll(efd.get(), aio::PollEvents::in),
                            aio::make_poll(p.rd.get(), aio::PollEvents::in)};
    aio::set_user_data(cbs[0], 1);
    aio::set_user_data(cbs[1], 2);
    std::array<iocb*, 2> ptrs{&cbs[0], &cbs[1]};
    ASSERT_EQ(ctx->submit(ptrs).value_or(0), 2U);
    std::thread writer([&] {
      std::this_thread::sleep_for(30ms);
      (void)!::write(p.wr.get(), "x", 1);
    });
    std::array<io_event, 4> evs{};
    auto n = aio::wait_for(*ctx, 2, evs, 10s);
    writer.join();
    ASSERT_TRUE(n) << n.error().message();
    ASSERT_EQ(*n, 2U);
    EXPECT_EQ(evs[0].data + evs[1].data, 3U);
    EXPECT_NE(evs[0].data, evs[1].data);
    EXPECT_EQ(obs.events_via_ring() + obs.events_via_syscall(), 2U);
    if (ctx->ring_reaping()) {
      EXPECT_GE(obs.events_via_ring(), 1U) << "the ready one came from the ring";
    }
  }
}

}  // namespace
