// Where the kernel reports a failed request: in io_event::res (EFAULT, misaligned O_DIRECT)
// or already at io_submit (file opened without the needed access mode).
#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdlib>

#include "test_util.hpp"

namespace {

using namespace aiotest;

class CompletionErrors : public ContextTest {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    ContextTest::SetUp();
  }
  TempDir dir;
};

// A buffered read copies to user memory after the request was queued: copy_to_user into a
// PROT_READ page fails and the completion carries -EFAULT.
TEST_F(CompletionErrors, ReadIntoReadOnlyMappingCompletesWithEfault) {
  Fd fd = dir.make_file("f", pattern(4096));
  ASSERT_TRUE(fd.ok());
  void* page = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(page, MAP_FAILED);
  iocb cb = aio::make_pread(fd.get(), std::span(static_cast<std::byte*>(page), 4096), 0);
  auto n = submit_one(ctx, cb);
  ASSERT_TRUE(n) << "the kernel checks the buffer only when copying: " << n.error().message();
  auto evs = reap(ctx, 1);
  ::munmap(page, 4096);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].res, -EFAULT);
  auto r = aio::result(evs[0]);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::bad_address);
}

// ext4 rejects an O_DIRECT buffer that is not aligned to the logical block size with
// -EINVAL, reported through the completion (io_submit accepts the request).
TEST_F(CompletionErrors, MisalignedODirectReadCompletesWithEinval) {
  {
    Fd create = dir.make_file("direct", pattern(8192));
    ASSERT_TRUE(create.ok());
  }
  Fd fd(::open(dir.file("direct").c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
  if (!fd.ok() && errno == EINVAL) GTEST_SKIP() << "the filesystem under /tmp has no O_DIRECT";
  ASSERT_TRUE(fd.ok()) << std::strerror(errno);
  void* mem = nullptr;
  ASSERT_EQ(::posix_memalign(&mem, 4096, 8192), 0);
  auto* base = static_cast<std::byte*>(mem);

  iocb bad = aio::make_pread(fd.get(), std::span(base + 1, 4096), 0);
  auto n = submit_one(ctx, bad);
  ASSERT_TRUE(n) << n.error().message();
  auto evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  auto r = aio::result(evs[0]);
  ASSERT_FALSE(r) << "misaligned O_DIRECT read returned " << evs[0].res;
  EXPECT_EQ(r.error(), std::errc::invalid_argument);

  // The same read, aligned, works: the failure was the alignment, not O_DIRECT itself.
  iocb good = aio::make_pread(fd.get(), std::span(base, 4096), 0);
  ASSERT_TRUE(submit_one(ctx, good));
  evs = reap(ctx, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].res, 4096);
  EXPECT_EQ(std::memcmp(base, pattern(4096).data(), 4096), 0);
  std::free(mem);
}

// aio_write() checks FMODE_WRITE while preparing the request, so the error comes from
// io_submit itself and no completion is queued.
TEST_F(CompletionErrors, WriteToReadOnlyFdFailsAtSubmitWithEbadf) {
  Fd fd = dir.make_file("f", pattern(100), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  const std::string data = "xyz";
  iocb cb = aio::make_pwrite(fd.get(), cbytes(data), 0);
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_file_descriptor);
  io_event ev[1];
  auto g = ctx.getevents(0, ev, 20ms);
  ASSERT_TRUE(g);
  EXPECT_EQ(*g, 0u);
}

TEST_F(CompletionErrors, ReadFromWriteOnlyFdFailsAtSubmitWithEbadf) {
  Fd fd = dir.make_file("f", pattern(100), O_WRONLY);
  ASSERT_TRUE(fd.ok());
  std::string buf(10, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_file_descriptor);
}

TEST_F(CompletionErrors, NegativeOffsetOnRegularFileIsEinvalAtSubmit) {
  Fd fd = dir.make_file("f", pattern(100));
  ASSERT_TRUE(fd.ok());
  std::string buf(10, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), -4096);
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

}  // namespace
