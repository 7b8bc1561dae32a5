// aio::Context lifetime: io_setup limits, aio-nr accounting, empty / moved-from /
// destroyed Contexts, moves, and destroy() waking a blocked reaper.
#include <gtest/gtest.h>

#include <climits>
#include <functional>
#include <future>
#include <thread>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// aio-nr is system wide and other test processes change it concurrently. A measurement is
// accepted when one attempt saw exactly the expected deltas; a real leak or wrong charge
// never produces them, so the test still fails for a broken library.
bool eventually(const std::function<bool()>& attempt, int tries = 50) {
  for (int i = 0; i < tries; ++i) {
    if (attempt()) return true;
    std::this_thread::sleep_for(5ms);
  }
  return false;
}

// Every call on an empty Context fails with invalid_argument (and native_handle() is 0).
void expect_empty(aio::Context& ctx) {
  EXPECT_EQ(ctx.native_handle(), 0u);
  EXPECT_FALSE(ctx.valid());
  EXPECT_FALSE(static_cast<bool>(ctx));
  EXPECT_EQ(ctx.max_events(), 0u);
  Pipe p;
  ASSERT_TRUE(p.ok());
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  iocb* list[] = {&cb};
  auto s = ctx.submit(list);
  ASSERT_FALSE(s);
  EXPECT_EQ(s.error(), std::errc::invalid_argument);
  auto s0 = ctx.submit({});
  ASSERT_FALSE(s0);  // empty wins over "nothing to do"
  EXPECT_EQ(s0.error(), std::errc::invalid_argument);
  io_event ev[2];
  auto g = ctx.getevents(0, ev, 0ns);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::invalid_argument);
  auto gb = ctx.getevents(1, ev, std::nullopt);  // must not block
  ASSERT_FALSE(gb);
  EXPECT_EQ(gb.error(), std::errc::invalid_argument);
  auto pg = ctx.pgetevents(0, ev, 0ns, nullptr);
  ASSERT_FALSE(pg);
  EXPECT_EQ(pg.error(), std::errc::invalid_argument);
  auto c = ctx.cancel(cb);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), std::errc::invalid_argument);
  auto d = ctx.destroy();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), std::errc::invalid_argument);
}

// The kernel's errno, as std::error_code(errno, system_category()) (every errno of every
// call: test_fi_errors).
TEST(ContextCreate, IoSetupWithZeroEventsIsEinval) {
  auto ctx = aio::Context::create(0);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(&ctx.error().category(), &std::system_category());
  EXPECT_EQ(ctx.error().value(), EINVAL);
  EXPECT_EQ(ctx.error(), std::errc::invalid_argument);
}

TEST(ContextCreate, IoSetupBeyondAioMaxNrIsEagain) {
  // The kernel charges exactly max_events against aio-max-nr, and refuses a request larger
  // than aio-max-nr itself with EAGAIN (before looking at aio-nr, so this is race-free) —
  // unless it is so large the doubled ring would exceed the per-context limit (EINVAL).
  const long long max_nr = aio_max_nr();
  ASSERT_GT(max_nr, 0);
  if (max_nr + 1 > 4194304) GTEST_SKIP() << "aio-max-nr " << max_nr << " above the per-context limit";
  auto ctx = aio::Context::create(static_cast<unsigned>(max_nr + 1));
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error(), std::errc::resource_unavailable_try_again);
}

TEST(ContextCreate, IoSetupBeyondPerContextRingLimitIsEinval) {
  // ioctx_alloc doubles nr_events and rejects rings above 0x10000000 / sizeof(io_event).
  for (unsigned n : {4194305u, 0x7fffffffu, UINT_MAX}) {
    auto ctx = aio::Context::create(n);
    ASSERT_FALSE(ctx) << n;
    EXPECT_EQ(ctx.error(), std::errc::invalid_argument) << n;
  }
}

TEST(ContextCreate, IoSetupHandleIsNonZeroAndRecordsMaxEvents) {
  auto ctx = aio::Context::create(3);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_NE(ctx->native_handle(), 0u);
  EXPECT_TRUE(ctx->valid());
  EXPECT_TRUE(static_cast<bool>(*ctx));
  EXPECT_EQ(ctx->max_events(), 3u);
}

TEST(ContextAioNr, ChargedByMaxEventsAndReleasedWhenContextGoesOutOfScope) {
  constexpr unsigned kEvents = 1237;  // distinctive, so an unrelated change is unlikely to match
  const bool ok = eventually([] {
    const long long before = aio_nr();
    long long during = -1;
    {
      auto ctx = aio::Context::create(kEvents);
      if (!ctx) return false;
      during = aio_nr();
    }
    const long long after = aio_nr();
    return during - before == kEvents && after == before;
  });
  EXPECT_TRUE(ok) << "aio-nr never rose by exactly " << kEvents << " and returned to its start";
}

TEST(ContextAioNr, ReleasedByExplicitDestroy) {
  constexpr unsigned kEvents = 1361;
  const bool ok = eventually([] {
    const long long before = aio_nr();
    auto ctx = aio::Context::create(kEvents);
    if (!ctx) return false;
    const long long during = aio_nr();
    if (!ctx->destroy()) return false;
    const long long after = aio_nr();
    return during - before == kEvents && after == before;
  });
  EXPECT_TRUE(ok);
}

TEST(ContextAioNr, MoveAssignOverLiveContextDestroysTheOldOne) {
  constexpr unsigned kOld = 1103;
  constexpr unsigned kNew = 1409;
  const bool ok = eventually([] {
    const long long before = aio_nr();
    auto a = aio::Context::create(kOld);
    auto b = aio::Context::create(kNew);
    if (!a || !b) return false;
    const aio_context_t new_handle = b->native_handle();
    const long long both = aio_nr();
    *a = std::move(*b);
    const long long after_move = aio_nr();
    const bool handle_moved = a->native_handle() == new_handle && b->native_handle() == 0;
    return handle_moved && both - before == kOld + kNew && both - after_move == kOld;
  });
  EXPECT_TRUE(ok);
}

TEST(ContextEmpty, DefaultConstructedRejectsEveryCall) {
  aio::Context ctx;
  expect_empty(ctx);
}

TEST(ContextEmpty, MovedFromRejectsEveryCallAndMovedToWorks) {
  auto src = aio::Context::create(4);
  ASSERT_TRUE(src);
  const aio_context_t handle = src->native_handle();
  aio::Context dst(std::move(*src));
  expect_empty(*src);
  EXPECT_EQ(dst.native_handle(), handle);
  EXPECT_TRUE(dst.valid());
  EXPECT_EQ(dst.max_events(), 4u);
  io_event ev[1];
  auto g = dst.getevents(0, ev, 0ns);
  ASSERT_TRUE(g) << g.error().message();
  EXPECT_EQ(*g, 0u);
}

TEST(ContextEmpty, MoveAssignedFromRejectsEveryCall) {
  auto src = aio::Context::create(4);
  ASSERT_TRUE(src);
  aio::Context dst;
  dst = std::move(*src);
  expect_empty(*src);
  EXPECT_TRUE(dst.valid());
}

TEST(ContextEmpty, DestroyedRejectsEveryCallAndSecondDestroyIsEinval) {
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  auto d = ctx->destroy();
  ASSERT_TRUE(d) << d.error().message();
  expect_empty(*ctx);  // includes a second destroy() == invalid_argument
}

TEST(ContextEmpty, SelfMoveAssignKeepsTheContext) {
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  const aio_context_t handle = ctx->native_handle();
  aio::Context& alias = *ctx;
  *ctx = std::move(alias);
  EXPECT_EQ(ctx->native_handle(), handle);
  EXPECT_TRUE(ctx->valid());
  io_event ev[1];
  EXPECT_TRUE(ctx->getevents(0, ev, 0ns));
}

TEST(ContextEmpty, MoveAssignEmptyOverLiveLeavesTargetEmpty) {
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  aio::Context empty;
  *ctx = std::move(empty);
  expect_empty(*ctx);
}

// Linux wakes io_getevents waiters when the context is killed (ctx->dead), so destroy()
// from another thread must end a wait that has no timeout.
TEST(ContextDestroy, WakesThreadBlockedInGeteventsWithoutTimeout) {
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  std::promise<pid_t> tid_promise;
  auto tid_future = tid_promise.get_future();
  auto waiter = std::async(std::launch::async, [&]() -> aio::Result<std::size_t> {
    tid_promise.set_value(::gettid());
    io_event ev[4];
    return ctx->getevents(1, ev, std::nullopt);
  });
  const pid_t tid = tid_future.get();
  wait_until_sleeping(tid);
  const auto t0 = Clock::now();
  auto d = ctx->destroy();
  EXPECT_TRUE(d) << d.error().message();
  ASSERT_EQ(waiter.wait_for(2s), std::future_status::ready) << "getevents did not return after destroy()";
  EXPECT_LT(Clock::now() - t0, 2s);
  auto r = waiter.get();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::invalid_argument);
  expect_empty(*ctx);
}

}  // namespace
