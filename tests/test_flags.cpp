// Typed RWF_* flags and poll masks (include/aio/flags.hpp), against the real kernel.
#include <gtest/gtest.h>
#include <poll.h>

#include <array>

#include "test_util.hpp"

namespace {

using namespace aiotest;

static_assert((aio::Rwf::nowait | aio::Rwf::hipri) == static_cast<aio::Rwf>(RWF_NOWAIT | RWF_HIPRI));
static_assert(((aio::Rwf::dsync | aio::Rwf::sync) & aio::Rwf::sync) == aio::Rwf::sync);
static_assert(!aio::any(aio::Rwf::none));
static_assert(static_cast<int>(~aio::Rwf::nowait & static_cast<aio::Rwf>(0x1ff)) == 0x1f7);
static_assert((aio::PollEvents::in | aio::PollEvents::out) == static_cast<aio::PollEvents>(POLLIN | POLLOUT));
static_assert(aio::any(aio::PollEvents::rdhup & (aio::PollEvents::rdhup | aio::PollEvents::in)));

TEST(Flags, CompoundAssignment) {
  aio::Rwf f = aio::Rwf::none;
  f |= aio::Rwf::dsync;
  f |= aio::Rwf::append;
  EXPECT_EQ(static_cast<int>(f), RWF_DSYNC | RWF_APPEND);
  f &= ~aio::Rwf::append;
  EXPECT_EQ(f, aio::Rwf::dsync);
  aio::PollEvents e = aio::PollEvents::in;
  e |= aio::PollEvents::pri;
  e &= ~aio::PollEvents::in;
  EXPECT_EQ(e, aio::PollEvents::pri);
}

TEST(Flags, SetRwFlagsTypedEqualsRaw) {
  iocb a = aio::make_pread(0, {}, 0);
  iocb b = a;
  aio::set_rw_flags(a, aio::Rwf::nowait | aio::Rwf::hipri);
  aio::set_rw_flags(b, RWF_NOWAIT | RWF_HIPRI);
  EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
  aio::add_rw_flags(a, aio::Rwf::dsync);
  EXPECT_EQ(a.aio_rw_flags, RWF_NOWAIT | RWF_HIPRI | RWF_DSYNC);
  EXPECT_EQ(aio::rw_flags(a), aio::Rwf::nowait | aio::Rwf::hipri | aio::Rwf::dsync);
  // Nothing but aio_rw_flags changed.
  a.aio_rw_flags = 0;
  const iocb plain = aio::make_pread(0, {}, 0);
  EXPECT_EQ(std::memcmp(&a, &plain, sizeof a), 0);
}

TEST(Flags, MakePollTypedEqualsRaw) {
  const iocb a = aio::make_poll(5, aio::PollEvents::in | aio::PollEvents::rdhup);
  const iocb b = aio::make_poll(5, static_cast<short>(POLLIN | POLLRDHUP));
  EXPECT_EQ(std::memcmp(&a, &b, sizeof a), 0);
  EXPECT_EQ(a.aio_buf, static_cast<std::uint64_t>(POLLIN | POLLRDHUP));
}

TEST(Flags, DsyncWriteWithTypedFlagsOnExt4) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", "");
  ASSERT_TRUE(fd.ok());
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx) << ctx.error().message();
  std::string data = pattern(4096);
  iocb cb = aio::make_pwrite(fd.get(), cbytes(data), 0);
  aio::set_rw_flags(cb, aio::Rwf::dsync);
  ASSERT_TRUE(submit_one(*ctx, cb));
  auto evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_EQ(evs[0].res, 4096);

  // RWF_APPEND ignores the offset.
  std::string more = pattern(10, 'A');
  iocb app = aio::make_pwrite(fd.get(), cbytes(more), 0);
  aio::set_rw_flags(app, aio::Rwf::append);
  ASSERT_TRUE(submit_one(*ctx, app));
  evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_EQ(evs[0].res, 10);
  struct stat st {};
  ASSERT_EQ(::fstat(fd.get(), &st), 0);
  EXPECT_EQ(st.st_size, 4106);
}

TEST(Flags, TypedPollOnEventfd) {
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  const std::uint64_t one = 1;
  ASSERT_EQ(::write(efd.get(), &one, sizeof one), static_cast<ssize_t>(sizeof one));
  iocb cb = aio::make_poll(efd.get(), aio::PollEvents::in);
  ASSERT_TRUE(submit_one(*ctx, cb));
  auto evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_TRUE(aio::any(aio::poll_events(evs[0]) & aio::PollEvents::in));
  EXPECT_FALSE(aio::any(aio::poll_events(evs[0]) & aio::PollEvents::out));
}

TEST(Flags, PollEventsOfFailedCompletionIsNone) {
  io_event ev{};
  ev.res = -ECANCELED;
  EXPECT_EQ(aio::poll_events(ev), aio::PollEvents::none);
  ev.res = POLLIN | POLLHUP;
  EXPECT_EQ(aio::poll_events(ev), aio::PollEvents::in | aio::PollEvents::hup);
}

TEST(Flags, FlagOnFsyncIsRejected) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", "x");
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  iocb cb = aio::make_fsync(fd.get());
  aio::set_rw_flags(cb, aio::Rwf::dsync);
  auto r = submit_one(*ctx, cb);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::invalid_argument);
}

}  // namespace
