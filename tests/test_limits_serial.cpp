// The tests that fill the system-wide fs.aio-max-nr quota (for a few milliseconds): the
// aio-max-nr diagnostics (include/aio/limits.hpp) and the quota exhausted by many contexts.
// Label `system` in tests/CMakeLists.txt (RUN_SERIAL: other processes need quota too); each
// test skips unless AIOPP_TEST_SYSTEM=1. Everything is released before each test ends.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// aio-nr back at `start` within 10 s; if not while other processes visibly hold contexts,
// the comparison is not meaningful (reported, not failed) — see test_soak.cpp.
::testing::AssertionResult aio_nr_back_to(long long start) {
  for (int i = 0; i < 1000; ++i) {
    if (aio_nr() == start) return ::testing::AssertionSuccess();
    std::this_thread::sleep_for(10ms);
  }
  if (const std::string others = other_aio_users(); !others.empty()) {
    std::printf("note: aio-nr %lld != %lld while pids %s hold AIO contexts: not compared\n", aio_nr(), start,
                others.c_str());
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "aio-nr " << aio_nr() << " did not return to " << start;
}

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

// The quota exhausted by many modest contexts: contexts of a modest size are created until io_setup refuses with EAGAIN; the remainder
// of the quota is then taken with ever smaller ones down to io_setup(1), so aio-nr reaches
// aio-max-nr exactly. Kernel behaviour pinned: io_setup charges what it was asked for and
// refuses with EAGAIN (never ENOMEM or a partial context) when aio-nr + n > aio-max-nr; the
// contexts already created keep working; io_destroy gives every slot back.
TEST(LimitsSerial, ManyContextsExhaustAioMaxNrWithEagainAndEverythingIsReleased) {
  if (!system_tests_allowed()) GTEST_SKIP() << kSystemTestSkip;
  constexpr unsigned kSize = 512;
  const long long max_nr = aio_max_nr();
  const long long start_nr = aio_nr();
  ASSERT_GT(max_nr, 0);
  ASSERT_GE(start_nr, 0);
  if (max_nr > (1LL << 20)) GTEST_SKIP() << "aio-max-nr " << max_nr << " is too large to exhaust in a test";
  if (max_nr - start_nr < 4 * kSize) GTEST_SKIP() << "quota already nearly exhausted by others";
  const long long maps_before = aio_mappings();

  TempDir dir;
  Fd fd = dir.make_file("f", "still-usable");
  ASSERT_TRUE(fd.ok());

  std::vector<aio::Context> hold;
  hold.reserve(static_cast<std::size_t>(max_nr / kSize) + 64);
  std::uint64_t charged = 0;
  std::error_code first_refusal;
  for (long long i = 0; i <= max_nr / kSize + 1; ++i) {
    auto c = aio::Context::create(kSize, aio::ReapMode::automatic);
    if (!c) {
      first_refusal = c.error();
      break;
    }
    charged += aio::aio_nr_charge(kSize);
    hold.push_back(std::move(*c));
  }
  const std::size_t modest = hold.size();
  // The rest, with smaller and smaller contexts, down to a single event.
  for (unsigned n = kSize / 2; n >= 1; n /= 2) {
    for (;;) {
      auto c = aio::Context::create(n, aio::ReapMode::syscall);
      if (!c) break;
      charged += n;
      hold.push_back(std::move(*c));
    }
  }
  auto one = aio::Context::create(1);
  const std::error_code last_refusal = one ? std::error_code{} : one.error();
  const long long full_nr = aio_nr();
  const long long maps_full = aio_mappings();

  // A context created before the quota ran out still submits and reaps.
  std::string buf(12, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  const bool usable = !hold.empty() && submit_one(hold.front(), cb).value_or(0) == 1 &&
                      reap(hold.front(), 1).size() == 1 && buf == "still-usable";

  // Release everything: four threads io_destroy() a quarter each (every io_destroy waits
  // for an RCU grace period, ~30 ms; the quota itself is given back as each one starts).
  const std::size_t held = hold.size();
  const auto t0 = Clock::now();
  std::atomic<std::size_t> destroy_errors{0};
  {
    std::vector<std::thread> killers;
    for (std::size_t t = 0; t < 4; ++t) {
      killers.emplace_back([&, t] {
        for (std::size_t i = t; i < hold.size(); i += 4)
          if (!hold[i].destroy()) ++destroy_errors;
      });
    }
    for (auto& k : killers) k.join();
  }
  hold.clear();
  const double destroy_s = std::chrono::duration<double>(Clock::now() - t0).count();
  std::printf("limits: %zu contexts of %u then %zu smaller ones took aio-nr %lld -> %lld (aio-max-nr %lld, "
              "%llu charged by this test); destroying them took %.2f s\n",
              modest, kSize, held - modest, start_nr, full_nr, max_nr, static_cast<unsigned long long>(charged),
              destroy_s);

  EXPECT_EQ(first_refusal, std::errc::resource_unavailable_try_again) << first_refusal.message();
  EXPECT_GT(modest, 0u);
  EXPECT_FALSE(one) << "io_setup(1) succeeded with the quota exhausted";
  EXPECT_EQ(last_refusal, std::errc::resource_unavailable_try_again) << last_refusal.message();
  EXPECT_EQ(full_nr, max_nr) << "quota not exactly exhausted";
  EXPECT_EQ(maps_full - maps_before, static_cast<long long>(held)) << "one ring mapping per context";
  EXPECT_TRUE(usable) << "a live context stopped working when the quota ran out";
  EXPECT_EQ(destroy_errors.load(), 0u);
  EXPECT_EQ(aio_mappings(), maps_before);
  EXPECT_TRUE(aio_nr_back_to(start_nr));
  // And the quota really is free again: a modest context can be had.
  auto again = aio::Context::create(kSize);
  EXPECT_TRUE(again) << again.error().message();
}

TEST(LimitsSerial, ExhaustedQuotaShrinksAndAdvises) {
  if (!system_tests_allowed()) GTEST_SKIP() << kSystemTestSkip;
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
    EXPECT_TRUE(advice.starts_with("io_setup(5000) needs 5000 free AIO slots but only ")) << advice;
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
  if (!system_tests_allowed()) GTEST_SKIP() << kSystemTestSkip;
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
