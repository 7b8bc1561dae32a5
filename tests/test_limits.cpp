// aio-max-nr diagnostics (include/aio/limits.hpp) against the real kernel. The tests that
// fill the system-wide quota are in test_limits_serial.cpp.
#include <gtest/gtest.h>

#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

TEST(Limits, ReadsProc) {
  auto l = aio::system_limits();
  ASSERT_TRUE(l) << l.error().message();
  EXPECT_EQ(static_cast<long long>(l->max_nr), aio_max_nr());
  EXPECT_GT(l->max_nr, 0U);
  EXPECT_EQ(l->available(), l->nr >= l->max_nr ? 0 : l->max_nr - l->nr);
  EXPECT_EQ((aio::SystemLimits{10, 5}.available()), 0U);
}

// What io_setup(n) adds to aio-nr on this kernel (other processes move aio-nr too, so
// an undisturbed measurement is looked for over a few attempts).
TEST(Limits, ChargeIsWhatWasAskedFor) {
  for (unsigned n : {1U, 2U, 100U, 127U, 128U, 1000U, 4096U}) {
    bool exact = false;
    long long last = -1;
    for (int attempt = 0; attempt < 20 && !exact; ++attempt) {
      const long long before = aio_nr();
      auto ctx = aio::Context::create(n);
      ASSERT_TRUE(ctx) << ctx.error().message();
      const long long during = aio_nr();
      ASSERT_TRUE(ctx->destroy());
      last = during - before;
      exact = last == static_cast<long long>(aio::aio_nr_charge(n));
    }
    EXPECT_TRUE(exact) << "io_setup(" << n << ") charged " << last;
  }
}

TEST(Limits, AdviceNamesTheTarget) {
  const std::string s = aio::aio_max_nr_advice(5000, aio::SystemLimits{63000, 65536});
  EXPECT_EQ(s,
            "io_setup(5000) needs 5000 free AIO slots but only 2536 of fs.aio-max-nr=65536 are free "
            "(aio-nr=63000); raise fs.aio-max-nr to 68000 (sysctl -w fs.aio-max-nr=68000)");
  // Never advises lowering the limit.
  EXPECT_NE(aio::aio_max_nr_advice(10, aio::SystemLimits{0, 65536}).find("raise fs.aio-max-nr to 65536"),
            std::string::npos);
  const std::string live = aio::aio_max_nr_advice(100);
  EXPECT_TRUE(live.starts_with("io_setup(100) needs 100 free AIO slots")) << live << ": no prefix, the caller adds its name";
  EXPECT_NE(live.find("raise fs.aio-max-nr"), std::string::npos) << live;
}

TEST(Limits, CreateShrinkingArguments) {
  EXPECT_EQ(aio::create_shrinking(10, 0).error(), std::errc::invalid_argument);
  EXPECT_EQ(aio::create_shrinking(10, 11).error(), std::errc::invalid_argument);
  auto ctx = aio::create_shrinking(64, 8);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(ctx->max_events(), 64U);
  EXPECT_EQ(ctx->observer(), nullptr);
}

TEST(Limits, CreateShrinkingWithAnObserver) {
  aio::Observer obs;
  auto ctx = aio::create_shrinking(64, 8, aio::ReapMode::automatic, &obs);
  ASSERT_TRUE(ctx) << ctx.error().message();
  EXPECT_EQ(ctx->max_events(), 64U);
  EXPECT_EQ(ctx->observer(), &obs);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 1U) << "io_setup is seen";
  EXPECT_EQ(aio::create_shrinking(10, 0, aio::ReapMode::syscall, &obs).error(), std::errc::invalid_argument);
  EXPECT_EQ(obs.syscalls(aio::Syscall::setup), 1U) << "refused arguments make no io_setup";
}

}  // namespace
