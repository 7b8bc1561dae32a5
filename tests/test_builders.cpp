// iocb builders: exact field layout (everything else zero) and round trips against real
// files, pipes and eventfds.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>

#include "test_util.hpp"

namespace {

using namespace aiotest;

iocb zeroed() {
  iocb cb;
  std::memset(&cb, 0, sizeof cb);
  return cb;
}

void expect_same_bytes(const iocb& got, const iocb& want) {
  EXPECT_EQ(std::memcmp(&got, &want, sizeof(iocb)), 0) << "iocb differs from the memset-0 reference";
}

// ---- Every builder sets only its own fields -------------------------------------------

TEST(BuilderLayout, ReadAndWriteSetOnlyOpcodeFdBufNbytesOffset) {
  char buf[37];
  const auto sp = std::as_writable_bytes(std::span(buf));
  for (int op : {IOCB_CMD_PREAD, IOCB_CMD_PWRITE}) {
    iocb want = zeroed();
    want.aio_lio_opcode = static_cast<std::uint16_t>(op);
    want.aio_fildes = 7;
    want.aio_buf = reinterpret_cast<std::uintptr_t>(buf);
    want.aio_nbytes = sizeof buf;
    want.aio_offset = 123456789012LL;
    const iocb got = op == IOCB_CMD_PREAD ? aio::make_pread(7, sp, 123456789012LL)
                                          : aio::make_pwrite(7, std::span<const std::byte>(sp), 123456789012LL);
    expect_same_bytes(got, want);
  }
}

TEST(BuilderLayout, VectoredSetIovecArrayAndCount) {
  iovec iov[3] = {};
  for (int op : {IOCB_CMD_PREADV, IOCB_CMD_PWRITEV}) {
    iocb want = zeroed();
    want.aio_lio_opcode = static_cast<std::uint16_t>(op);
    want.aio_fildes = 3;
    want.aio_buf = reinterpret_cast<std::uintptr_t>(iov);
    want.aio_nbytes = 3;
    want.aio_offset = 4096;
    const iocb got = op == IOCB_CMD_PREADV ? aio::make_preadv(3, iov, 4096) : aio::make_pwritev(3, iov, 4096);
    expect_same_bytes(got, want);
  }
}

TEST(BuilderLayout, FsyncAndFdsyncSetOnlyOpcodeAndFd) {
  iocb want = zeroed();
  want.aio_lio_opcode = IOCB_CMD_FSYNC;
  want.aio_fildes = 11;
  expect_same_bytes(aio::make_fsync(11), want);
  want.aio_lio_opcode = IOCB_CMD_FDSYNC;
  expect_same_bytes(aio::make_fdsync(11), want);
}

TEST(BuilderLayout, PollPutsSixteenBitMaskInBufWithoutSignExtension) {
  iocb want = zeroed();
  want.aio_lio_opcode = IOCB_CMD_POLL;
  want.aio_fildes = 5;
  want.aio_buf = POLLIN | POLLOUT;
  expect_same_bytes(aio::make_poll(5, POLLIN | POLLOUT), want);
  // A mask with the top bit set is a negative short; the kernel wants the 16 bits only.
  const auto high = static_cast<short>(0x8001);
  want.aio_buf = 0x8001;
  expect_same_bytes(aio::make_poll(5, high), want);
}

TEST(BuilderLayout, ModifiersSetOnlyTheirFields) {
  iocb base = aio::make_fsync(4);
  iocb want = base;
  want.aio_data = 0xdeadbeefcafef00dULL;
  want.aio_flags = IOCB_FLAG_RESFD | IOCB_FLAG_IOPRIO;
  want.aio_resfd = 9;
  want.aio_rw_flags = RWF_DSYNC;
  want.aio_reqprio = static_cast<std::int16_t>((2 << 13) | 4);
  iocb got = base;
  aio::set_priority(aio::set_rw_flags(aio::set_eventfd(aio::set_user_data(got, 0xdeadbeefcafef00dULL), 9), RWF_DSYNC),
                    aio::IoprioClass::best_effort, 4);
  expect_same_bytes(got, want);
  aio::clear_eventfd(got);
  want.aio_flags = IOCB_FLAG_IOPRIO;
  want.aio_resfd = 0;
  expect_same_bytes(got, want);
  static_assert(aio::ioprio_value(aio::IoprioClass::realtime, 0) == (1 << 13));
  static_assert(aio::ioprio_value(aio::IoprioClass::idle, 7) == ((3 << 13) | 7));
}

// ---- Round trips against the kernel --------------------------------------------------

class BuilderIo : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    auto c = aio::Context::create(16);
    ASSERT_TRUE(c) << c.error().message();
    ctx = std::move(*c);
  }
  // Submits one request and returns its completion (res), checking obj.
  io_event run(iocb& cb) {
    const io_event ev = run_one(ctx, cb);
    if (ev.obj != 0) {
      EXPECT_EQ(aio::request_of(ev), &cb);
    }
    return ev;
  }
  TempDir dir;
  aio::Context ctx;
};

TEST_F(BuilderIo, PwriteThenPreadReturnsTheSameBytes) {
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  const std::string data = pattern(3000, 'A');
  iocb w = aio::make_pwrite(fd.get(), cbytes(data), 100);
  EXPECT_EQ(run(w).res, 3000);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 3100);
  std::string back(3000, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(back), 100);
  EXPECT_EQ(run(r).res, 3000);
  EXPECT_EQ(back, data);
  std::string hole(100, 'x');
  iocb h = aio::make_pread(fd.get(), bytes(hole), 0);
  EXPECT_EQ(run(h).res, 100);
  EXPECT_EQ(hole, std::string(100, '\0'));
}

TEST_F(BuilderIo, PwritevGathersAndPreadvScattersMultipleIovecs) {
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  std::string a = "alpha-", b = "beta--", c = "gamma!";
  const iovec out[3] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
  iocb w = aio::make_pwritev(fd.get(), out, 10);
  EXPECT_EQ(run(w).res, 18);
  std::string x(4, '\0'), y(10, '\0'), z(4, '\0');
  const iovec in[3] = {{x.data(), x.size()}, {y.data(), y.size()}, {z.data(), z.size()}};
  iocb r = aio::make_preadv(fd.get(), in, 10);
  EXPECT_EQ(run(r).res, 18);
  EXPECT_EQ(x + y + z, a + b + c);
  EXPECT_EQ(x, "alph");
  EXPECT_EQ(z, "mma!");
}

TEST_F(BuilderIo, FsyncAndFdsyncCompleteWithZero) {
  Fd fd = dir.make_file("f", pattern(512));
  ASSERT_TRUE(fd.ok());
  iocb s = aio::make_fsync(fd.get());
  EXPECT_EQ(run(s).res, 0);
  iocb d = aio::make_fdsync(fd.get());
  EXPECT_EQ(run(d).res, 0);
}

TEST_F(BuilderIo, ShortReadReturnsBytesUpToEof) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  std::string buf(4096, '\0');
  iocb r = aio::make_pread(fd.get(), bytes(buf), 0);
  EXPECT_EQ(run(r).res, 100);
  EXPECT_EQ(buf.substr(0, 100), pattern(100));
  iocb mid = aio::make_pread(fd.get(), bytes(buf), 60);
  EXPECT_EQ(run(mid).res, 40);
}

TEST_F(BuilderIo, ReadAtOrPastEofReturnsZero) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  std::string buf(64, '\0');
  iocb at = aio::make_pread(fd.get(), bytes(buf), 100);
  EXPECT_EQ(run(at).res, 0);
  iocb past = aio::make_pread(fd.get(), bytes(buf), 1 << 20);
  EXPECT_EQ(run(past).res, 0);
}

TEST_F(BuilderIo, ZeroLengthReadAndWriteReturnZero) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  iocb r = aio::make_pread(fd.get(), std::span<std::byte>{}, 0);
  EXPECT_EQ(run(r).res, 0);
  iocb w = aio::make_pwrite(fd.get(), std::span<const std::byte>{}, 500);
  EXPECT_EQ(run(w).res, 0);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 100);  // a zero-length write does not extend the file
}

TEST_F(BuilderIo, PollOnPipeCompletesWithPollinAfterAWrite) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[1];
  auto none = ctx.getevents(0, ev, 20ms);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u) << "an empty pipe must not be readable";
  ASSERT_EQ(::write(p.wr.get(), "data", 4), 4);
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(aio::request_of(evs[0]), &cb);
  auto mask = aio::result(evs[0]);
  ASSERT_TRUE(mask) << mask.error().message();
  EXPECT_NE(*mask & POLLIN, 0u);
  EXPECT_EQ(*mask & POLLOUT, 0u);  // only the requested events (plus ERR/HUP) are reported
}

TEST_F(BuilderIo, PollOnAlreadyReadyPipeCompletesAtOnce) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  EXPECT_NE(run(cb).res & POLLIN, 0);
}

TEST_F(BuilderIo, PollOnEventfdCompletesWithPollinAfterAWrite) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  iocb cb = aio::make_poll(efd.get(), POLLIN);
  ASSERT_TRUE(submit_one(ctx, cb));
  io_event ev[1];
  auto none = ctx.getevents(0, ev, 20ms);
  ASSERT_TRUE(none);
  EXPECT_EQ(*none, 0u);
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_NE(evs[0].res & POLLIN, 0);
}

TEST_F(BuilderIo, PollForPolloutOnEventfdIsReadyAtOnce) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  iocb cb = aio::make_poll(efd.get(), POLLOUT);
  const auto res = run(cb).res;
  EXPECT_NE(res & POLLOUT, 0);
  EXPECT_EQ(res & POLLIN, 0);
}

}  // namespace
