// io_cancel(): only IOCB_CMD_POLL requests are cancellable; the completion still arrives.
#include <gtest/gtest.h>

#include "test_util.hpp"

namespace {

using namespace aiotest;

class Cancel : public ContextTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(pipe.ok());
    ContextTest::SetUp();
  }
  Pipe pipe;
};

// Linux (fs/aio.c, aio_poll_complete_work) completes a cancelled poll with the ready mask it
// saw, which is empty: res == 0, not -ECANCELED. io_cancel itself answers -EINPROGRESS.
TEST_F(Cancel, PendingPollOnEmptyPipeIsCancelledAndCompletesWithEmptyMask) {
  iocb cb = aio::make_poll(pipe.rd.get(), POLLIN);
  aio::set_user_data(cb, 0xC0FFEE);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[2];
  auto none = ctx.getevents(0, ev, 0ns);
  ASSERT_TRUE(none);
  ASSERT_EQ(*none, 0u) << "the poll must still be pending";

  auto c = ctx.cancel(cb);
  ASSERT_TRUE(c) << c.error().message();
  auto g = ctx.getevents(1, ev, 2s);
  ASSERT_TRUE(g) << g.error().message();
  ASSERT_EQ(*g, 1u);
  EXPECT_EQ(aio::request_of(ev[0]), &cb);
  EXPECT_EQ(aio::user_data(ev[0]), 0xC0FFEEu);
  EXPECT_EQ(ev[0].res, 0);
  auto r = aio::result(ev[0]);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 0u);  // no POLLIN: it was cancelled, not readied
}

TEST_F(Cancel, SecondCancelOfSameRequestIsEinval) {
  iocb cb = aio::make_poll(pipe.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  ASSERT_TRUE(ctx.cancel(cb));
  auto again = ctx.cancel(cb);
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::invalid_argument);
  EXPECT_EQ(reap(ctx, 1).size(), 1u);
}

TEST_F(Cancel, FileReadIsNotCancellableEinval) {
  TempDir dir;
  Fd fd = dir.make_file("f", pattern(4096));
  ASSERT_TRUE(fd.ok());
  std::string buf(4096, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  ASSERT_TRUE(submit_one(ctx, cb));
  auto c = ctx.cancel(cb);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), std::errc::invalid_argument);
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].res, 4096);  // the read was not disturbed
  auto after = ctx.cancel(cb);   // and once reaped it is unknown to the kernel
  ASSERT_FALSE(after);
  EXPECT_EQ(after.error(), std::errc::invalid_argument);
}

TEST_F(Cancel, AlreadyCompletedPollIsEinval) {
  iocb cb = aio::make_poll(pipe.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  ASSERT_EQ(::write(pipe.wr.get(), "x", 1), 1);
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_NE(evs[0].res & POLLIN, 0);
  auto c = ctx.cancel(cb);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), std::errc::invalid_argument);
}

TEST_F(Cancel, NeverSubmittedIocbIsEinval) {
  iocb cb = aio::make_poll(pipe.rd.get(), POLLIN);
  auto c = ctx.cancel(cb);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), std::errc::invalid_argument);
}

}  // namespace
