// io_submit(): counts, first-iocb errors, partial batches, ring-full EAGAIN.
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

class Submit : public ContextTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    fd = dir.make_file("data", pattern(8192));
    ASSERT_TRUE(fd.ok());
    ContextTest::SetUp();
  }
  TempDir dir;
  Fd fd;
};

TEST_F(Submit, EmptySpanReturnsZero) {
  auto n = ctx.submit({});
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0u);
}

TEST_F(Submit, ReturnsNumberOfRequestsAcceptedAndAllComplete) {
  const Requests r = Requests::file_reads(3, 100);
  auto n = ctx.submit(r.batch());
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 3u);
  auto evs = reap(ctx, 3);
  ASSERT_EQ(evs.size(), 3u);
  for (const auto& ev : evs) EXPECT_EQ(ev.res, 100);
  EXPECT_TRUE(r.each_once(evs));
  EXPECT_TRUE(r.data_ok());
}

TEST_F(Submit, FirstIocbWithBadFdIsEbadf) {
  std::string buf(16, '\0');
  iocb cb = aio::make_pread(9999, bytes(buf), 0);
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_file_descriptor);
}

TEST_F(Submit, NullFirstIocbPointerIsEfault) {
  iocb* list[] = {nullptr};
  auto n = ctx.submit(list);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_address);
}

TEST_F(Submit, UnmappedIocbPointerIsEfault) {
  void* page = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  iocb* list[] = {static_cast<iocb*>(page)};
  auto n = ctx.submit(list);
  ::munmap(page, 4096);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_address);
}

TEST_F(Submit, SecondIocbWithBadFdGivesPartialCountOfOne) {
  Requests r = Requests::reads(fd.get(), 3, 64);
  r.cbs[1].aio_fildes = 9999;
  auto n = ctx.submit(r.batch());
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(aio::request_of(evs[0]), &r.cbs[0]);
  // Nothing else was queued: the third request was not submitted.
  io_event more[2];
  auto g = ctx.getevents(0, more, 0ns);
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, 0u);
}

TEST_F(Submit, UnknownOpcodeIsEinval) {
  iocb cb{};
  cb.aio_lio_opcode = 99;
  cb.aio_fildes = static_cast<std::uint32_t>(fd.get());
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

TEST_F(Submit, NonZeroReservedFieldIsEinval) {
  std::string buf(16, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  cb.aio_reserved2 = 1;
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

TEST_F(Submit, FsyncWithNonZeroBufferFieldsIsEinval) {
  iocb cb = aio::make_fsync(fd.get());
  cb.aio_nbytes = 1;  // what the builders guarantee is never left behind
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

// The kernel keeps at most the (rounded-up) ring size of requests in flight; a poll on an
// empty pipe never completes, so the ring fills and io_submit answers EAGAIN. Reaping the
// cancelled polls frees the slots again.
TEST(SubmitRingFull, NeverCompletingPollsFillTheRingThenReapingMakesRoom) {
  auto c = aio::Context::create(1);
  ASSERT_TRUE(c) << c.error().message();
  aio::Context& ctx = *c;
  Pipe p;
  ASSERT_TRUE(p.ok());
  constexpr std::size_t kCap = 1 << 16;
  Requests polls = Requests::polls(p.rd.get(), kCap);  // never moved: cancels match by address
  std::size_t queued = 0;
  std::error_code last;
  for (; queued < kCap; ++queued) {
    auto n = submit_one(ctx, polls.cbs[queued]);
    if (!n) {
      last = n.error();
      break;
    }
    ASSERT_EQ(*n, 1u);
  }
  ASSERT_LT(queued, kCap) << "the ring never filled";
  EXPECT_EQ(last, std::errc::resource_unavailable_try_again);
  EXPECT_GE(queued, 1u);  // io_setup(1) still gives a usable ring

  // Still full: a batch is refused as a whole at its first request.
  iocb extra = aio::make_poll(p.rd.get(), POLLIN);
  auto again = submit_one(ctx, extra);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::resource_unavailable_try_again);

  for (std::size_t i = 0; i < queued; ++i) {
    auto cr = ctx.cancel(polls.cbs[i]);
    ASSERT_TRUE(cr) << i << ": " << cr.error().message();
  }
  auto evs = reap(ctx, queued);
  ASSERT_EQ(evs.size(), queued);

  auto n = submit_one(ctx, extra);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1u);
  ASSERT_TRUE(ctx.cancel(extra));
  EXPECT_EQ(reap(ctx, 1).size(), 1u);
}

}  // namespace
