#include <aio/aio.hpp>
#include <gtest/gtest.h>

TEST(Smoke, CreateAndDestroy) {
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_NE(ctx->native_handle(), 0u);
  EXPECT_TRUE(ctx->destroy());
  EXPECT_EQ(ctx->native_handle(), 0u);
}
