// Lossless batch submission (include/aio/batch.hpp) against the real kernel.
#include <gtest/gtest.h>

#include <array>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

struct Reads {
  std::vector<std::string> bufs;
  std::vector<iocb> cbs;
  std::vector<iocb*> ptrs;
  Reads(int fd, std::size_t n) : bufs(n, std::string(16, '\0')), cbs(n), ptrs(n) {
    for (std::size_t i = 0; i < n; ++i) {
      cbs[i] = aio::make_pread(fd, bytes(bufs[i]), static_cast<std::int64_t>(i % 256) * 16);
      aio::set_user_data(cbs[i], i);
      ptrs[i] = &cbs[i];
    }
  }
};

// Each test reads a cached 4 KiB file through a Context of the size it needs.
class Batch : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir_.ok());
    fd = dir_.make_file("f", pattern(4096), O_RDONLY);
    ASSERT_TRUE(fd.ok());
  }
  /// io_setup(max_events) into ctx.
  [[nodiscard]] bool open(unsigned max_events) {
    auto c = aio::Context::create(max_events);
    if (!c) return false;
    ctx = std::move(*c);
    return true;
  }

  TempDir dir_;
  Fd fd;
  aio::Context ctx;
};

TEST_F(Batch, EverythingSubmitted) {
  ASSERT_TRUE(open(256));
  Reads r(fd.get(), 100);
  const aio::SubmitAll s = aio::submit_all(ctx, r.ptrs);
  EXPECT_TRUE(s.ok());
  EXPECT_TRUE(static_cast<bool>(s));
  EXPECT_EQ(s.submitted, 100U);
  EXPECT_EQ(s.failed_index, 100U);
  EXPECT_FALSE(s.error);
  EXPECT_EQ(reap(ctx, 100).size(), 100U);
}

TEST_F(Batch, BadRequestInTheMiddleKeepsTheAcceptedPrefix) {
  ASSERT_TRUE(open(64));
  Reads r(fd.get(), 10);
  r.cbs[6].aio_fildes = static_cast<std::uint32_t>(-1);  // EBADF
  const aio::SubmitAll s = aio::submit_all(ctx, r.ptrs);
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

TEST_F(Batch, EmptyContextAndEmptyBatch) {
  aio::Context empty;
  std::array<iocb*, 0> none{};
  aio::SubmitAll s = aio::submit_all(empty, none);
  EXPECT_EQ(s.error, std::errc::invalid_argument);
  EXPECT_EQ(s.submitted, 0U);
  EXPECT_EQ(s.failed_index, 0U);

  ASSERT_TRUE(open(8));
  s = aio::submit_all(ctx, none);
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.failed_index, 0U);
}

// A tiny context whose ring fills with unreaped completions: plain submit_all stops with
// EAGAIN after the ring's capacity, the retrying forms reap and get everything in.
TEST_F(Batch, RingFullWithoutRetryReportsEagain) {
  ASSERT_TRUE(open(1));
  Reads r(fd.get(), 2000);
  const aio::SubmitAll s = aio::submit_all(ctx, r.ptrs);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_GT(s.submitted, 0U);
  EXPECT_LT(s.submitted, 2000U);
  EXPECT_EQ(s.failed_index, s.submitted);
  EXPECT_EQ(reap(ctx, s.submitted).size(), s.submitted);
}

TEST_F(Batch, RingFullRetryIntoSpan) {
  ASSERT_TRUE(open(1));
  Reads r(fd.get(), 2000);
  std::vector<io_event> events(2000);
  const aio::SubmitAll s = aio::submit_all(ctx, r.ptrs, events, aio::RetryPolicy{1000, std::chrono::seconds(5)});
  ASSERT_TRUE(s.ok()) << s.error.message() << " after " << s.submitted;
  EXPECT_EQ(s.submitted, 2000U);
  EXPECT_GT(s.retries, 0U);
  EXPECT_GT(s.reaped, 0U);
  const auto rest = reap(ctx, 2000 - s.reaped);
  ASSERT_EQ(rest.size(), 2000 - s.reaped);
  std::vector<int> seen(2000, 0);
  for (std::size_t i = 0; i < s.reaped; ++i) ++seen[events[i].data];
  for (const io_event& ev : rest) ++seen[ev.data];
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

TEST_F(Batch, RingFullRetryWithCallback) {
  ASSERT_TRUE(open(1));
  Reads r(fd.get(), 1500);
  std::array<io_event, 16> scratch{};
  std::vector<int> seen(1500, 0);
  std::size_t calls = 0;
  const aio::SubmitAll s = aio::submit_all(
      ctx, r.ptrs, scratch,
      [&](const io_event& ev) noexcept {
        ++calls;
        ++seen[ev.data];
      },
      aio::RetryPolicy{10000, std::chrono::seconds(5)});
  ASSERT_TRUE(s.ok()) << s.error.message();
  EXPECT_EQ(s.submitted, 1500U);
  EXPECT_EQ(calls, s.reaped);
  for (const io_event& ev : reap(ctx, 1500 - s.reaped)) ++seen[ev.data];
  for (std::size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], 1) << i;
}

TEST_F(Batch, FullSpanCannotReap) {
  ASSERT_TRUE(open(1));
  Reads r(fd.get(), 2000);
  std::array<io_event, 2> events{};
  const aio::SubmitAll s = aio::submit_all(ctx, r.ptrs, events, aio::RetryPolicy{1000, std::chrono::seconds(5)});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error, std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(s.reap_failed);
  EXPECT_EQ(s.reaped, 2U);
  EXPECT_EQ(reap(ctx, s.submitted - s.reaped).size(), s.submitted - s.reaped);
}

}  // namespace
