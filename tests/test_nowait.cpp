// RWF_NOWAIT helpers (include/aio/nowait.hpp): would_block() and without_nowait(),
// against the real kernel on ext4 (/tmp) and tmpfs (/dev/shm).
#include <aio/nowait.hpp>  // first: the header must stand alone

namespace nowait_alone {
[[maybe_unused]] inline bool header_stands_alone(iocb cb) noexcept {
  aio::set_rw_flags(cb, aio::Rwf::nowait);
  return aio::is_nowait(cb) && !aio::is_nowait(aio::without_nowait(cb));
}
}  // namespace nowait_alone

#include <gtest/gtest.h>

#include <array>
#include <string_view>

#include "test_util.hpp"

namespace {

using namespace aiotest;

constexpr std::size_t file_size = 1 << 20;

TEST(Nowait, Classification) {
  iocb cb = aio::make_pread(3, {}, 0);
  io_event ev{};
  ev.res = -EAGAIN;
  EXPECT_FALSE(aio::would_block(ev, cb)) << "EAGAIN without RWF_NOWAIT is a real error";
  aio::set_rw_flags(cb, aio::Rwf::nowait | aio::Rwf::hipri);
  EXPECT_TRUE(aio::is_nowait(cb));
  EXPECT_TRUE(aio::would_block(ev, cb));
  ev.res = 0;
  EXPECT_FALSE(aio::would_block(ev, cb));
  ev.res = -EIO;
  EXPECT_FALSE(aio::would_block(ev, cb));

  // The one-argument form finds the request through io_event::obj.
  ev.res = -EAGAIN;
  ev.obj = reinterpret_cast<std::uintptr_t>(&cb);
  EXPECT_TRUE(aio::would_block(ev));
  ev.obj = 0;
  EXPECT_FALSE(aio::would_block(ev));

  // Not a read/write: never would-block.
  iocb poll = aio::make_poll(3, aio::PollEvents::in);
  poll.aio_rw_flags = RWF_NOWAIT;
  EXPECT_FALSE(aio::is_nowait(poll));

  // without_nowait clears only RWF_NOWAIT, including bits newer than aio::Rwf (0x200).
  aio::set_user_data(cb, 77);
  aio::set_priority(cb, aio::IoprioClass::best_effort, 3);
  cb.aio_rw_flags |= 0x200;
  const iocb again = aio::without_nowait(cb);
  EXPECT_EQ(again.aio_rw_flags, RWF_HIPRI | 0x200);
  iocb expect = cb;
  expect.aio_rw_flags = RWF_HIPRI | 0x200;
  EXPECT_EQ(std::memcmp(&again, &expect, sizeof again), 0);
  EXPECT_FALSE(aio::is_nowait(again));

  // ... and keeps the newer typed flags.
  const aio::Rwf newer = aio::Rwf::noappend | aio::Rwf::atomic | aio::Rwf::dontcache | aio::Rwf::nosignal;
  iocb w = aio::make_pwrite(3, std::string_view("x"), 0);
  aio::set_rw_flags(w, newer | aio::Rwf::nowait);
  EXPECT_TRUE(aio::is_nowait(w));
  EXPECT_EQ(aio::rw_flags(aio::without_nowait(w)), newer);
  static_assert(aio::without_nowait(iocb{}).aio_rw_flags == 0);  // constexpr
}

TEST(Nowait, UncachedReadOnExt4WouldBlockThenSucceedsWithoutNowait) {
  TempDir dir;  // /tmp: ext4 here
  ASSERT_TRUE(dir.ok());
  const std::string content = pattern(file_size);
  Fd fd = dir.make_file("cold", content, O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);

  std::string buf(4096, '\0');
  const std::int64_t offset = 512 * 1024;
  iocb cb = aio::make_pread(fd.get(), bytes(buf), offset);
  aio::set_rw_flags(cb, aio::Rwf::nowait);
  aio::set_user_data(cb, 42);

  // Make the data uncached (write back, then drop it from the page cache) and read it
  // with RWF_NOWAIT. Linux 6.18 / ext4: accepted at submit, completes with -EAGAIN. A drop
  // can race with writeback or readahead under load, so a few attempts are allowed.
  std::vector<io_event> evs;
  for (int attempt = 0; attempt < 10; ++attempt) {
    ASSERT_EQ(::fsync(fd.get()), 0);
    ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
    auto sub = submit_one(*ctx, cb);
    ASSERT_TRUE(sub) << "RWF_NOWAIT refused at submit on ext4: " << sub.error().message();
    evs = reap(*ctx, 1);
    ASSERT_EQ(evs.size(), 1U);
    if (evs[0].res != 4096) break;  // was cached again: drop and retry
    ::usleep(20'000);
  }
  if (evs[0].res == 4096) GTEST_SKIP() << "could not get the data out of the page cache";
  EXPECT_EQ(evs[0].res, -EAGAIN);
  EXPECT_TRUE(aio::would_block(evs[0], cb));
  EXPECT_TRUE(aio::would_block(evs[0]));

  iocb again = aio::without_nowait(cb);
  ASSERT_TRUE(submit_one(*ctx, again));
  evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_EQ(evs[0].res, 4096);
  EXPECT_EQ(evs[0].data, 42U);
  EXPECT_FALSE(aio::would_block(evs[0], again));
  EXPECT_EQ(buf, content.substr(static_cast<std::size_t>(offset), 4096));
}

TEST(Nowait, CachedReadOnExt4Succeeds) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  std::string content = pattern(8192);
  Fd fd = dir.make_file("warm", content, O_RDONLY);
  ASSERT_TRUE(fd.ok());
  std::string warm(8192, '\0');
  ASSERT_EQ(::pread(fd.get(), warm.data(), warm.size(), 0), 8192);  // now cached
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::string buf(4096, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 4096);
  aio::set_rw_flags(cb, aio::Rwf::nowait);
  ASSERT_TRUE(submit_one(*ctx, cb));
  auto evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_EQ(evs[0].res, 4096);
  EXPECT_FALSE(aio::would_block(evs[0], cb));
}

TEST(Nowait, TmpfsRefusesAtSubmit) {
  TempDir dir("/dev/shm");
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", pattern(4096), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto ctx = aio::Context::create(8);
  ASSERT_TRUE(ctx);
  std::string buf(4096, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_rw_flags(cb, aio::Rwf::nowait);
  auto sub = submit_one(*ctx, cb);
  ASSERT_FALSE(sub);
  EXPECT_EQ(sub.error(), std::errc::operation_not_supported);
  // The blocking way works.
  iocb again = aio::without_nowait(cb);
  ASSERT_TRUE(submit_one(*ctx, again));
  auto evs = reap(*ctx, 1);
  ASSERT_EQ(evs.size(), 1U);
  EXPECT_EQ(evs[0].res, 4096);
}

}  // namespace
