// aio::LatencyHistogram (aio/observer.hpp): the fixed-size histogram the trace records keep in
// shared memory.
#include <gtest/gtest.h>

#include <aio/observer.hpp>
#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST(LatencyHistogram, EmptyIsAllZero) {
  const aio::LatencyHistogram h;
  const auto s = h.summary();
  EXPECT_EQ(h.count(), 0U);
  EXPECT_EQ(h.total(), 0ns);
  EXPECT_EQ(s.count, 0U);
  EXPECT_EQ(s.p50, 0ns);
  EXPECT_EQ(s.max, 0ns);
}

TEST(LatencyHistogram, PercentilesWithinOneBucketOfTheSamples) {
  aio::LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.record(std::chrono::microseconds(i));  // 1 us .. 1 ms
  const auto s = h.summary();
  EXPECT_EQ(s.count, 1000U);
  EXPECT_EQ(h.count(), 1000U);
  EXPECT_EQ(h.total(), std::chrono::microseconds(1000 * 1001 / 2));
  EXPECT_EQ(s.max, 1000us);
  // Buckets are 1/8 of a power of two wide: a percentile is at most 12.5% above its sample.
  EXPECT_GE(s.p50, 500us);
  EXPECT_LE(s.p50, 563us);
  EXPECT_GE(s.p99, 990us);
  EXPECT_LE(s.p99, 1000us);  // never above max
  EXPECT_LE(s.p999, s.max);
}

TEST(LatencyHistogram, NegativeCountsAsZero) {
  aio::LatencyHistogram h;
  h.record_ns(-5);
  EXPECT_EQ(h.count(), 1U);
  EXPECT_EQ(h.summary().max, 0ns);
}

TEST(LatencyHistogram, MergeAddsAndResetClears) {
  aio::LatencyHistogram a;
  aio::LatencyHistogram b;
  a.record(10us);
  b.record(20us);
  b.record(30us);
  a.merge(b);
  EXPECT_EQ(a.count(), 3U);
  EXPECT_EQ(a.total(), 60us);
  EXPECT_EQ(a.summary().max, 30us);
  EXPECT_EQ(b.count(), 2U);  // the source is unchanged
  aio::LatencyHistogram small;
  small.record(1us);
  a.merge(small);  // a smaller maximum leaves the maximum alone
  EXPECT_EQ(a.count(), 4U);
  EXPECT_EQ(a.summary().max, 30us);
  a.merge(aio::LatencyHistogram{});  // an empty one adds nothing
  EXPECT_EQ(a.count(), 4U);
  a.reset();
  EXPECT_EQ(a.count(), 0U);
  EXPECT_EQ(a.summary().count, 0U);
}

TEST(LatencyHistogram, ZeroFilledMemoryIsAnEmptyHistogram) {
  // What a fresh shared mapping holds: all zero bytes.
  auto raw = std::make_unique<unsigned char[]>(sizeof(aio::LatencyHistogram) + alignof(aio::LatencyHistogram));
  std::memset(raw.get(), 0, sizeof(aio::LatencyHistogram) + alignof(aio::LatencyHistogram));
  void* p = raw.get();
  std::size_t space = sizeof(aio::LatencyHistogram) + alignof(aio::LatencyHistogram);
  ASSERT_NE(std::align(alignof(aio::LatencyHistogram), sizeof(aio::LatencyHistogram), p, space), nullptr);
  const auto* h = std::launder(static_cast<const aio::LatencyHistogram*>(p));
  EXPECT_EQ(h->count(), 0U);
  EXPECT_EQ(h->summary().count, 0U);
}

TEST(LatencyHistogram, ConcurrentRecordersLoseNothing) {
  aio::LatencyHistogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&h, t] {
      for (int i = 0; i < 10000; ++i) h.record_ns(t * 1000 + i);
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(h.count(), 40000U);
  EXPECT_EQ(h.summary().count, 40000U);
  EXPECT_EQ(h.summary().max, std::chrono::nanoseconds(3000 + 9999));
}
