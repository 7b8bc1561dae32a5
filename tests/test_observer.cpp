// aio::Observer attached to a Context, against the real kernel.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// Submits `r` in one io_submit; returns how many the kernel took.
std::size_t submit(aio::Context& ctx, const Requests& r) {
  auto n = ctx.submit(r.batch());
  return n ? *n : 0;
}

TEST(Observer, CountsSyscallsEventsAndBatches) {
  aio::Observer obs;
  auto ctx = aio::Context::create(64, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 1u);
  const Requests a = Requests::ready_polls(1), b = Requests::ready_polls(5);
  ASSERT_EQ(submit(*ctx, a), 1u);
  ASSERT_EQ(submit(*ctx, b), 5u);
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), 2u);
  EXPECT_EQ(obs.requests_submitted(), 6u);
  EXPECT_EQ(obs.batch_histogram(0), 1u);  // batch of 1
  EXPECT_EQ(obs.batch_histogram(2), 1u);  // batch of 5: [4, 8)
  std::array<io_event, 8> ev{};
  auto n = ctx->getevents(6, ev, std::chrono::seconds(5));
  ASSERT_TRUE(n);
  ASSERT_EQ(*n, 6u);
  if (ctx->ring_reaping()) {
    EXPECT_EQ(obs.events_via_ring(), 6u);
    EXPECT_EQ(obs.syscalls(aio::Syscall::getevents), 0u);
  } else {
    EXPECT_EQ(obs.events_via_syscall(), 6u);
  }
  EXPECT_TRUE(ctx->destroy());
  EXPECT_EQ(obs.syscalls(aio::Syscall::destroy), 1u);
  EXPECT_EQ(obs.total_syscalls(), 4u + (ctx->ring_reaping() ? 0u : 1u));
}

TEST(Observer, SyscallPathCountsEventsBySyscall) {
  aio::Observer obs;
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  ctx->set_observer(&obs);
  EXPECT_EQ(ctx->observer(), &obs);
  const Requests r = Requests::ready_polls(3);
  ASSERT_EQ(submit(*ctx, r), 3u);
  std::array<io_event, 8> ev{};
  ASSERT_TRUE(ctx->getevents(3, ev));
  EXPECT_EQ(obs.events_via_syscall(), 3u);
  EXPECT_EQ(obs.events_via_ring(), 0u);
  EXPECT_EQ(obs.syscalls(aio::Syscall::getevents), 1u);
}

TEST(Observer, ErrorsAreCountedByErrnoButAcceptedCancelIsNot) {
  aio::Observer obs;
  auto ctx = aio::Context::create(8, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx);
  iocb bad = aio::make_fsync(-1);
  iocb* list[] = {&bad};
  auto r = ctx->submit(list);
  ASSERT_FALSE(r);
  EXPECT_EQ(obs.errors(EBADF), 1u);

  Pipe p;
  ASSERT_TRUE(p.ok());
  iocb poll = aio::make_poll(p.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(*ctx, poll));
  ASSERT_TRUE(ctx->cancel(poll));  // kernel: -EINPROGRESS = accepted
  EXPECT_EQ(obs.errors(EINPROGRESS), 0u);
  std::array<io_event, 1> ev{};
  ASSERT_TRUE(ctx->getevents(1, ev, std::chrono::seconds(5)));
  // create(0) is refused by the kernel: the observer sees the failed io_setup.
  auto zero = aio::Context::create(0, aio::ReapMode::automatic, &obs);
  EXPECT_FALSE(zero);
  EXPECT_EQ(obs.errors(EINVAL), 1u);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 2u);
}

struct HookLog {
  std::vector<aio::SyscallInfo> calls;
  static void hook(const aio::SyscallInfo& info, void* self) noexcept {
    static_cast<HookLog*>(self)->calls.push_back(info);
  }
};

TEST(Observer, HookSeesKindArgumentsResultAndDuration) {
  HookLog log;
  log.calls.reserve(16);
  aio::Observer obs;
  obs.set_hook(&HookLog::hook, &log);
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall, &obs);
  ASSERT_TRUE(ctx);
  std::array<io_event, 4> ev{};
  auto n = ctx->getevents(0, ev, std::chrono::microseconds(1500));
  ASSERT_TRUE(n);
  sigset_t mask;
  sigemptyset(&mask);
  ASSERT_TRUE(ctx->pgetevents(0, ev, std::chrono::nanoseconds(0), &mask));
  ASSERT_EQ(log.calls.size(), 3u);
  EXPECT_EQ(log.calls[0].call, aio::Syscall::setup);
  EXPECT_EQ(log.calls[0].nr, 8);
  EXPECT_EQ(log.calls[0].result, static_cast<long>(ctx->native_handle()));
  EXPECT_EQ(log.calls[1].call, aio::Syscall::getevents);
  EXPECT_EQ(log.calls[1].min_nr, 0);
  EXPECT_EQ(log.calls[1].nr, 4);
  EXPECT_EQ(log.calls[1].timeout_ns, 1'500'000);
  EXPECT_EQ(log.calls[1].result, 0);
  EXPECT_GE(log.calls[1].duration.count(), 0);
  EXPECT_FALSE(log.calls[1].sigmask);
  EXPECT_EQ(log.calls[2].call, aio::Syscall::pgetevents);
  EXPECT_TRUE(log.calls[2].sigmask);
  EXPECT_EQ(log.calls[2].timeout_ns, 0);
}

TEST(Observer, TopCallsFindTheMostRepeatedTuple) {
  aio::Observer obs;
  auto ctx = aio::Context::create(8, aio::ReapMode::syscall, &obs);
  ASSERT_TRUE(ctx);
  std::array<io_event, 8> ev{};
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(ctx->getevents(0, ev, std::chrono::nanoseconds(0)));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(ctx->getevents(0, std::span(ev).first(2), std::chrono::nanoseconds(0)));
  std::array<aio::CallCount, 4> top{};
  const std::size_t n = obs.top_calls(top);
  ASSERT_EQ(n, 3u);  // setup, the 10 and the 3
  EXPECT_EQ(top[0].call, aio::Syscall::getevents);
  EXPECT_EQ(top[0].count, 10u);
  EXPECT_EQ(top[0].nr, 8);
  EXPECT_EQ(top[0].timeout_ns, 0);
  EXPECT_EQ(top[1].count, 3u);
  EXPECT_EQ(top[1].nr, 2);
  EXPECT_EQ(top[2].call, aio::Syscall::setup);
  const std::string text = obs.summary();
  EXPECT_NE(text.find("io_getevents 13"), std::string::npos) << text;
  EXPECT_NE(text.find("10x io_getevents(nr=8, min_nr=0, timeout=0ns)"), std::string::npos) << text;
}

TEST(Observer, LatencyIsMeasuredPerRequestFromSubmitToReap) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  aio::Observer obs(64);
  ASSERT_TRUE(obs.latency_tracking());
  auto ctx = aio::Context::create(16, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx);
  iocb poll = aio::make_poll(p.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(*ctx, poll));
  ::usleep(20'000);  // the poll stays pending >= 20 ms
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  std::array<io_event, 1> ev{};
  ASSERT_TRUE(ctx->getevents(1, ev, std::chrono::seconds(5)));
  const auto lat = obs.latency();
  EXPECT_EQ(lat.count, 1u);
  EXPECT_EQ(lat.untracked, 0u);
  EXPECT_GE(lat.max, std::chrono::milliseconds(20));
  EXPECT_LE(lat.p50, lat.max);
  EXPECT_GE(lat.p50, std::chrono::milliseconds(17));  // bucket edges are within 12.5 %
  EXPECT_NE(obs.summary().find("latency"), std::string::npos);
}

TEST(Observer, DetachedObserverSeesNothingAndResetZeroes) {
  aio::Observer obs;
  auto ctx = aio::Context::create(8, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx);
  obs.reset();
  EXPECT_EQ(obs.total_syscalls(), 0u);
  ctx->set_observer(nullptr);
  const Requests r = Requests::ready_polls(2);
  ASSERT_EQ(submit(*ctx, r), 2u);
  std::array<io_event, 2> ev{};
  ASSERT_TRUE(ctx->getevents(2, ev));
  EXPECT_EQ(obs.total_syscalls(), 0u);
  EXPECT_EQ(obs.events_via_ring() + obs.events_via_syscall(), 0u);
  // Moving the Context moves the attachment with it.
  ctx->set_observer(&obs);
  aio::Context moved = std::move(*ctx);
  EXPECT_EQ(moved.observer(), &obs);
  EXPECT_EQ(ctx->observer(), nullptr);
}

}  // namespace
