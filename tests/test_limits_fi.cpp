// create_shrinking() (include/aio/limits.hpp) under fault injection: io_setup refuses
// sizes above a pretend quota.
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using aiotest::ScopedHook;
namespace fi = aiotest::fi;
using aio::sys::Call;

TEST(LimitsFi, HalvesDownToWhatFits) {
  std::vector<long> tried;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::setup) return fi::passthrough(a);
    tried.push_back(a.nr);
    return a.nr > 100 ? -EAGAIN : fi::passthrough(a);
  });
  // The real /proc says plenty is free, so it halves (the pretend quota is not in /proc).
  auto ctx = aio::create_shrinking(1000, 10);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->max_events(), 62U);
  EXPECT_EQ(tried, (std::vector<long>{1000, 500, 250, 125, 62}));
}

TEST(LimitsFi, StopsAtTheMinimum) {
  std::vector<long> tried;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::setup) return fi::passthrough(a);
    tried.push_back(a.nr);
    return a.nr > 100 ? -EAGAIN : fi::passthrough(a);
  });
  auto ctx = aio::create_shrinking(1000, 200);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(tried, (std::vector<long>{1000, 500, 250, 200}));
}

TEST(LimitsFi, OtherErrorsAreNotRetried) {
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::setup) return fi::passthrough(a);
    ++calls;
    return -ENOSYS;
  });
  auto ctx = aio::create_shrinking(1000, 1);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error(), std::errc::function_not_supported);
  EXPECT_EQ(calls, 1);
}

TEST(LimitsFi, NoRetryWhenItFits) {
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::setup) ++calls;
    return fi::passthrough(a);
  });
  auto ctx = aio::create_shrinking(300, 1, aio::ReapMode::syscall);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->max_events(), 300U);
  EXPECT_FALSE(ctx->ring_reaping());
  EXPECT_EQ(calls, 1);
}

// The observer overload: every io_setup attempt is counted, the refused ones included, and
// the observer stays attached to the Context that was obtained.
TEST(LimitsFi, ObserverSeesEverySetupAttempt) {
  int refused = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::setup && refused < 3) {
      ++refused;
      return -EAGAIN;
    }
    return fi::passthrough(a);
  });
  aio::Observer obs;
  auto ctx = aio::create_shrinking(1000, 10, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->max_events(), 125U) << "1000, 500, 250 refused";
  EXPECT_EQ(ctx->observer(), &obs);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 4U);
  EXPECT_EQ(obs.errors(EAGAIN), 3U);
  EXPECT_EQ(obs.total_syscalls(), 4U);
}

TEST(LimitsFi, ObserverSeesTheAttemptsOfAFailure) {
  ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::setup ? -EAGAIN : fi::passthrough(a); });
  aio::Observer obs;
  auto ctx = aio::create_shrinking(64, 16, aio::ReapMode::syscall, &obs);
  ASSERT_FALSE(ctx);
  EXPECT_EQ(ctx.error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 3U) << "64, 32, 16";
  EXPECT_EQ(obs.errors(EAGAIN), 3U);
}

TEST(LimitsFi, ObserverOverloadWithoutObserver) {
  int calls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::setup) ++calls;
    return fi::passthrough(a);
  });
  auto ctx = aio::create_shrinking(32, 1, aio::ReapMode::automatic, nullptr);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->observer(), nullptr);
  EXPECT_EQ(calls, 1);
}

}  // namespace
