// aio-max-nr diagnostics (include/aio/limits.hpp): the tests that fill the system-wide
// fs.aio-max-nr quota (for a few milliseconds). RUN_SERIAL in tests/extras.cmake: other
// test processes need quota too. Everything is released before each test ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// Fills aio-max-nr to within `leave` slots with a few large contexts.
std::vector<aio::Context> fill_quota(std::uint64_t leave) {
  std::vector<aio::Context> hold;
  for (int i = 0; i < 16; ++i) {
    auto l = aio::system_limits();
    if (!l || l->available() <= leave + 50) break;
    const std::uint64_t take = std::min<std::uint64_t>(l->available() - leave, 30000);
    if (auto c = aio::Context::create(static_cast<unsigned>(take), aio::ReapMode::syscall)) hold.push_back(std::move(*c));
  }
  return hold;
}

TEST(LimitsSerial, ExhaustedQuotaShrinksAndAdvises) {
  auto start = aio::system_limits();
  ASSERT_TRUE(start);
  if (start->available() < 2000) GTEST_SKIP() << "quota already nearly exhausted by others";
  {
    std::vector<aio::Context> hold = fill_quota(300);
    auto l = aio::system_limits();
    ASSERT_TRUE(l);
    ASSERT_LE(l->available(), 400U) << "could not fill the quota";

    auto big = aio::Context::create(5000);
    ASSERT_FALSE(big);
    EXPECT_EQ(big.error(), std::errc::resource_unavailable_try_again);
    const std::string advice = aio::aio_max_nr_advice(5000);
    EXPECT_NE(advice.find("raise fs.aio-max-nr to "), std::string::npos) << advice;

    auto small = aio::create_shrinking(5000, 8);
    ASSERT_TRUE(small) << small.error().message();
    EXPECT_GE(small->max_events(), 8U);
    EXPECT_LE(small->max_events(), 400U);
    EXPECT_LT(small->max_events(), 5000U);

    auto too_small = aio::create_shrinking(5000, 4000);
    ASSERT_FALSE(too_small);
    EXPECT_EQ(too_small.error(), std::errc::resource_unavailable_try_again);
  }
  // Everything released: back to (about) where we started.
  auto end = aio::system_limits();
  ASSERT_TRUE(end);
  EXPECT_GE(end->available() + 2000, start->available());
}

TEST(LimitsSerial, ShrinkingLandsOnWhatIsAvailable) {
  auto start = aio::system_limits();
  ASSERT_TRUE(start);
  if (start->available() < 2000) GTEST_SKIP() << "quota already nearly exhausted by others";
  std::vector<aio::Context> hold = fill_quota(1000);
  auto l = aio::system_limits();
  ASSERT_TRUE(l);
  ASSERT_LE(l->available(), 1100U);
  auto c = aio::create_shrinking(60000, 1);
  ASSERT_TRUE(c) << c.error().message();
  // It tried what /proc said was free: nearly all of it, not just a power-of-two fraction.
  EXPECT_GE(c->max_events() + 100, static_cast<unsigned>(l->available()) / 2);
  EXPECT_LE(c->max_events(), 1100U);
}

}  // namespace
