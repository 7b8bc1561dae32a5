// Lossless batch submission (include/aio/batch.hpp) against the real kernel.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// Each test reads a cached file (Requests::file_reads) through a Context of the size it needs.
class Batch : public ::testing::Test {
 protected:
  /// io_setup(max_events) into ctx.
  [[nodiscard]] bool open(unsigned max_events) {
    auto c = aio::Context::create(max_events);
    if (!c) return false;
    ctx = std::move(*c);
    return true;
  }

  aio::Context ctx;
};

TEST_F(Batch, EverythingSubmitted) {
  ASSERT_TRUE(open(256));
  Requests r = Requests::file_reads(100);
  const aio::SubmitAll s = aio::submit_all(ctx, r.batch());
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(static_cast<bool>(s));
  EXPECT_EQ(s.submitted, 100U);
  EXPECT_EQ(s.failed_index, 100U);
  EXPECT_FALSE(s.error);
  EXPECT_EQ(reap(ctx, 100).size(), 100U);
}

TEST_F(Batch, BadRequestInTheMiddleKeepsTheAcceptedPrefix) {
  ASSERT_TRUE(open(64));
  Requests r = Requests::file_reads(10);
  r.cbs[6].aio_fildes = static_cast<std::uint32_t>(-1);  // EBADF
  const aio::SubmitAll s = aio::submit_all(ctx, r.batch());
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.submitted, 6U);
  EXPECT_EQ(s.failed_index, 6U);
  EXPECT_EQ(s.error, std::errc::bad_file_descriptor);
  const auto evs = reap(ctx, 6);
  ASSERT_EQ(evs.size(), 6U);
  for (const io_event& ev : evs) EXPECT_LT(ev.data, 6U);
  std::array<io_event, 4> more{};
  auto extra = ctx.getevents(0, more, std::chrono::nanoseconds(0));
  ASSERT_TRUE(extra);
  EXPECT_EQ(*extra, 0U) << "nothing after the failed request was submitted";
}

// Every overload: an empty Context is invalid_argument, an empty batch on a live one is
// nothing to do.
TEST_F(Batch, EmptyContextAndEmptyBatch) {
  ASSERT_TRUE(open(8));
  aio::Context empty;
  std::array<io_event, 4> scratch{};
  const auto overloads = {
      +[](aio::Context& c, std::span<io_event>) { return aio::submit_all(c, {}); },
      +[](aio::Context& c, std::span<io_event> evs) { return aio::submit_all(c, {}, evs); },
      +[](aio::Context& c, std::span<io_event> evs) {
        return aio::submit_all(c, {}, evs, [](const io_event&) noexcept {});
      },
  };
  int which = 0;
  for (auto call : overloads) {
    SCOPED_TRACE(which++);
    aio::SubmitAll s = call(empty, scratch);
    EXPECT_EQ(s.error, std::errc::invalid_argument);
    EXPECT_EQ(s.submitted, 0U);
    EXPECT_EQ(s.failed_index, 0U);
    s = call(ctx, scratch);
    EXPECT_TRUE(s.ok()) << s.error.message();
    EXPECT_EQ(s.failed_index, 0U);
  }
}

// A tiny context whose ring fills with unreaped completions: plain submit_all stops with
// EAGAIN after the ring's capacity, the retrying forms reap and get everything in.
TEST_F(Batch, RingFullWithoutRetryReportsEagain) {
  ASSERT_TRUE(open(1));
  Requests r = Requests::file_reads(2000);
  const aio::SubmitAll s = aio::submit_all(ctx, r.batch());
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_GT(s.submitted, 0U);
  EXPECT_LT(s.submitted, 2000U);
  EXPECT_EQ(s.failed_index, s.submitted);
  EXPECT_EQ(reap(ctx, s.submitted).size(), s.submitted);
}

TEST_F(Batch, RingFullRetryIntoSpan) {
  ASSERT_TRUE(open(1));
  Requests r = Requests::file_reads(2000);
  std::vector<io_event> events(2000);
  const aio::SubmitAll s = aio::submit_all(ctx, r.batch(), events, aio::RetryPolicy{1000, std::chrono::seconds(5)});
  ASSERT_TRUE(s.ok()) << s.error.message() << " after " << s.submitted;
  EXPECT_EQ(s.submitted, 2000U);
  EXPECT_GT(s.retries, 0U);
  EXPECT_GT(s.reaped, 0U);
  const auto rest = reap(ctx, 2000 - s.reaped);
  ASSERT_EQ(rest.size(), 2000 - s.reaped);
  std::vector<int> seen(2000, 0);
  for (std::size_t i = 0; i < s.reaped; ++i) ++seen[static_cast<std::size_t>(events[i].data)];
  for (const io_event& ev : rest) ++seen[static_cast<std::size_t>(ev.data)];
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

TEST_F(Batch, RingFullRetryWithCallback) {
  ASSERT_TRUE(open(1));
  Requests r = Requests::file_reads(1500);
  std::array<io_event, 16> scratch{};
  std::vector<int> seen(1500, 0);
  std::size_t calls = 0;
  const aio::SubmitAll s = aio::submit_all(
      ctx, r.batch(), scratch,
      [&](const io_event& ev) noexcept {
        ++calls;
        ++seen[static_cast<std::size_t>(ev.data)];
      },
      aio::RetryPolicy{10000, std::chrono::seconds(5)});
  ASSERT_TRUE(s.ok()) << s.error.message();
  EXPECT_EQ(s.submitted, 1500U);
  EXPECT_EQ(calls, s.reaped);
  for (const io_event& ev : reap(ctx, 1500 - s.reaped)) ++seen[static_cast<std::size_t>(ev.data)];
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

TEST_F(Batch, FullSpanCannotReap) {
  ASSERT_TRUE(open(1));
  Requests r = Requests::file_reads(2000);
  std::array<io_event, 2> events{};
  const aio::SubmitAll s = aio::submit_all(ctx, r.batch(), events, aio::RetryPolicy{1000, std::chrono::seconds(5)});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(s.reap_failed);
  EXPECT_EQ(s.reaped, 2U);
  EXPECT_EQ(reap(ctx, s.submitted - s.reaped).size(), s.submitted - s.reaped);
}

}  // namespace
