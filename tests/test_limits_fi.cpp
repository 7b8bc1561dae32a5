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

}  // namespace
