// Typed RWF_* flags and poll masks (defined in include/aio/iocb.hpp; include/aio/flags.hpp
// still gives them), against the real kernel: what it accepts, refuses, and does.
#include <aio/flags.hpp>  // first: the old include alone still gives the typed names

namespace flags_alone {
[[maybe_unused]] inline iocb typed(int fd) noexcept {
  iocb cb = aio::make_poll(fd, aio::PollEvents::in);
  aio::set_rw_flags(cb, aio::Rwf::none);
  return aio::any(aio::rw_flags(cb)) ? cb : aio::make_fsync(fd);
}
}  // namespace flags_alone

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/statfs.h>
#include <sys/syscall.h>

#include <array>
#include <csignal>

#include "test_util.hpp"

namespace {

using namespace aiotest;

static_assert((aio::Rwf::nowait | aio::Rwf::hipri) == static_cast<aio::Rwf>(RWF_NOWAIT | RWF_HIPRI));
static_assert(((aio::Rwf::dsync | aio::Rwf::sync) & aio::Rwf::sync) == aio::Rwf::sync);
static_assert(!aio::any(aio::Rwf::none));
static_assert(static_cast<int>(~aio::Rwf::nowait & static_cast<aio::Rwf>(0x1ff)) == 0x1f7);
static_assert((aio::PollEvents::in | aio::PollEvents::out) == static_cast<aio::PollEvents>(POLLIN | POLLOUT));
static_assert(aio::any(aio::PollEvents::rdhup & (aio::PollEvents::rdhup | aio::PollEvents::in)));
// The kernel's values (include/uapi/linux/fs.h); the header also checks them against the
// libc macros where those exist.
static_assert(static_cast<int>(aio::Rwf::noappend) == 0x20 && static_cast<int>(aio::Rwf::atomic) == 0x40);
static_assert(static_cast<int>(aio::Rwf::dontcache) == 0x80 && static_cast<int>(aio::Rwf::nosignal) == 0x100);

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

// ---- The newer RWF_* flags on this kernel ---------------------------------------------------

constexpr long kExt4Magic = 0xEF53;

/// The file system type of `fd` (statfs f_type), or -1.
long fs_type(int fd) {
  struct statfs sfs {};
  return ::fstatfs(fd, &sfs) == 0 ? static_cast<long>(sfs.f_type) : -1;
}

/// Submits `cb` and returns its completion's res, or the submit error as -errno.
std::int64_t outcome(aio::Context& ctx, iocb& cb) {
  auto n = submit_one(ctx, cb);
  if (!n) return -n.error().value();
  auto evs = reap(ctx, 1);
  EXPECT_EQ(evs.size(), 1U);
  return evs.empty() ? std::int64_t{-ETIMEDOUT} : evs[0].res;
}

class NewerFlags : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(dir.ok());
    auto c = aio::Context::create(8);
    ASSERT_TRUE(c) << c.error().message();
    ctx = std::move(*c);
  }
  TempDir dir;  // /tmp
  aio::Context ctx;
};

// RWF_NOAPPEND (6.9): on an O_APPEND descriptor a write goes to its offset; without the flag
// the offset is ignored and the write appends.
TEST_F(NewerFlags, NoappendWritesAtTheOffsetOfAnOAppendFd) {
  Fd fd = dir.make_file("f", "0123456789", O_RDWR | O_APPEND);
  ASSERT_TRUE(fd.ok());
  iocb at = aio::make_pwrite(fd.get(), std::string_view("AB"), 2);
  aio::set_rw_flags(at, aio::Rwf::noappend);
  EXPECT_EQ(outcome(ctx, at), 2);
  iocb plain = aio::make_pwrite(fd.get(), std::string_view("CD"), 0);
  EXPECT_EQ(outcome(ctx, plain), 2);
  std::string back(12, '\0');
  ASSERT_EQ(::pread(fd.get(), back.data(), back.size(), 0), 12);
  EXPECT_EQ(back, "01AB456789CD");
}

TEST_F(NewerFlags, AppendWithNoappendIsEinvalAtSubmit) {
  Fd fd = dir.make_file("f", "x");
  ASSERT_TRUE(fd.ok());
  iocb cb = aio::make_pwrite(fd.get(), std::string_view("y"), 0);
  aio::set_rw_flags(cb, aio::Rwf::append | aio::Rwf::noappend);
  auto n = submit_one(ctx, cb);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::invalid_argument);
}

/// Pages of `fd`'s first `len` bytes in the page cache (mincore), or -1.
long resident_pages(int fd, std::size_t len) {
  void* m = ::mmap(nullptr, len, PROT_READ, MAP_SHARED, fd, 0);
  if (m == MAP_FAILED) return -1;
  const auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> vec((len + page - 1) / page);
  const bool ok = ::mincore(m, len, vec.data()) == 0;
  ::munmap(m, len);
  if (!ok) return -1;
  long n = 0;
  for (const unsigned char v : vec) n += (v & 1U) != 0 ? 1 : 0;
  return n;
}

// RWF_DONTCACHE (6.14) on ext4: reads and writes are accepted and move the right bytes, and
// a read of uncached data leaves none of it in the page cache (a plain read does).
TEST_F(NewerFlags, DontcacheOnExt4ReadsAndWritesAndLeavesNothingCached) {
  constexpr std::size_t size = 8 << 20;
  const std::string content = pattern(size);
  Fd fd = dir.make_file("f", content);
  ASSERT_TRUE(fd.ok());
  if (fs_type(fd.get()) != kExt4Magic) GTEST_SKIP() << "/tmp is not ext4 here";

  std::string buf(65536, '\0');
  iocb r = aio::make_pread(fd.get(), buf, 1 << 20);
  aio::set_rw_flags(r, aio::Rwf::dontcache);
  long after_dontcache = -1;
  long after_plain = -1;
  for (int attempt = 0; attempt < 5; ++attempt) {  // a drop can race writeback under load
    ASSERT_EQ(::fsync(fd.get()), 0);
    ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
    if (resident_pages(fd.get(), size) != 0) continue;
    ASSERT_EQ(outcome(ctx, r), 65536);
    after_dontcache = resident_pages(fd.get(), size);
    iocb plain = aio::make_pread(fd.get(), buf, 1 << 20);
    ASSERT_EQ(outcome(ctx, plain), 65536);
    after_plain = resident_pages(fd.get(), size);
    ASSERT_EQ(::posix_fadvise(fd.get(), 0, 0, POSIX_FADV_DONTNEED), 0);
    if (after_dontcache == 0) break;
  }
  if (after_plain < 0) GTEST_SKIP() << "could not get the file out of the page cache";
  EXPECT_EQ(buf, content.substr(1 << 20, 65536));
  EXPECT_EQ(after_dontcache, 0) << "RWF_DONTCACHE read left pages cached";
  EXPECT_GT(after_plain, 0) << "a plain read caches its pages (the check itself works)";

  const std::string fresh = pattern(4096, 'M');
  iocb w = aio::make_pwrite(fd.get(), fresh, 4096);
  aio::set_rw_flags(w, aio::Rwf::dontcache);
  EXPECT_EQ(outcome(ctx, w), 4096);
  std::string back(4096, '\0');
  ASSERT_EQ(::pread(fd.get(), back.data(), back.size(), 4096), 4096);
  EXPECT_EQ(back, fresh);
}

// tmpfs does not support RWF_DONTCACHE: refused at submit, for reads and writes.
TEST(NewerFlagsTmpfs, DontcacheIsRefusedAtSubmit) {
  TempDir shm("/dev/shm");
  ASSERT_TRUE(shm.ok());
  Fd fd = shm.make_file("f", pattern(4096));
  ASSERT_TRUE(fd.ok());
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  std::string buf(4096, '\0');
  iocb r = aio::make_pread(fd.get(), buf, 0);
  iocb w = aio::make_pwrite(fd.get(), std::as_const(buf), 0);
  for (iocb* cb : {&r, &w}) {
    aio::set_rw_flags(*cb, aio::Rwf::dontcache);
    auto n = submit_one(*ctx, *cb);
    ASSERT_FALSE(n) << (cb == &r ? "read" : "write");
    EXPECT_EQ(n.error(), std::errc::operation_not_supported);
  }
}

/// statx(STATX_WRITE_ATOMIC) of `fd`: the atomic write unit range, {0, 0} when the file
/// cannot do atomic writes (or the kernel does not say). Read from the kernel's struct
/// statx by offset: the libc headers here predate these fields.
struct AtomicUnits {
  std::uint32_t min = 0;
  std::uint32_t max = 0;
};
AtomicUnits atomic_units(int fd) {
  constexpr unsigned statx_write_atomic = 0x00010000U;  // STATX_WRITE_ATOMIC (6.11)
  alignas(8) std::array<unsigned char, 256> sx{};
  if (::syscall(SYS_statx, fd, "", AT_EMPTY_PATH, statx_write_atomic, sx.data()) != 0) return {};
  std::uint32_t mask = 0;
  AtomicUnits u;
  std::memcpy(&mask, sx.data(), sizeof mask);                // stx_mask at 0x00
  if ((mask & statx_write_atomic) == 0) return {};
  std::memcpy(&u.min, sx.data() + 0xa8, sizeof u.min);       // stx_atomic_write_unit_min
  std::memcpy(&u.max, sx.data() + 0xac, sizeof u.max);       // stx_atomic_write_unit_max
  return u.max == 0 ? AtomicUnits{} : u;
}

// RWF_ATOMIC (6.11) is for writes only: a read carrying it is refused at submit.
TEST_F(NewerFlags, AtomicReadIsRefusedAtSubmit) {
  Fd fd = dir.make_file("f", pattern(4096));
  ASSERT_TRUE(fd.ok());
  std::string buf(4096, '\0');
  iocb r = aio::make_pread(fd.get(), buf, 0);
  aio::set_rw_flags(r, aio::Rwf::atomic);
  auto n = submit_one(ctx, r);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::operation_not_supported);
}

// Where the file system reports no atomic write unit, an RWF_ATOMIC write is refused at
// submit, O_DIRECT or not.
TEST_F(NewerFlags, AtomicWriteIsRefusedWhereTheFileSystemHasNoAtomicUnit) {
  Fd fd = dir.make_file("f", pattern(8192));
  ASSERT_TRUE(fd.ok());
  Fd dfd(::open(dir.file("f").c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
  if (!dfd.ok()) GTEST_SKIP() << "no O_DIRECT on /tmp here: " << std::strerror(errno);
  const AtomicUnits u = atomic_units(dfd.get());
  if (u.max != 0) {
    GTEST_SKIP() << "this file system does atomic writes (units " << u.min << ".." << u.max
                 << "): AtomicWriteOfOneUnitCompletesWhereTheFileSystemHasOne covers it";
  }
  auto mem = aio::AlignedBuffer::create(4096, 4096);
  ASSERT_TRUE(mem);
  for (const int which : {0, 1}) {
    iocb w = aio::make_pwrite(which == 0 ? dfd.get() : fd.get(), std::as_const(*mem), 0);
    aio::set_rw_flags(w, aio::Rwf::atomic);
    auto n = submit_one(ctx, w);
    ASSERT_FALSE(n) << (which == 0 ? "O_DIRECT" : "buffered");
    EXPECT_EQ(n.error(), std::errc::operation_not_supported) << (which == 0 ? "O_DIRECT" : "buffered");
  }
}

// Where it reports one, an O_DIRECT RWF_ATOMIC write of one unit at an aligned offset completes.
TEST_F(NewerFlags, AtomicWriteOfOneUnitCompletesWhereTheFileSystemHasOne) {
  Fd fd = dir.make_file("f", pattern(1 << 20));
  ASSERT_TRUE(fd.ok());
  Fd dfd(::open(dir.file("f").c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
  if (!dfd.ok()) GTEST_SKIP() << "no O_DIRECT on /tmp here: " << std::strerror(errno);
  const AtomicUnits u = atomic_units(dfd.get());
  if (u.max == 0) {
    GTEST_SKIP() << "the file system of /tmp reports no atomic write unit (statx STATX_WRITE_ATOMIC: "
                    "unit max 0): its device or format does not do untorn writes";
  }
  auto mem = aio::AlignedBuffer::create(u.min, std::max<std::size_t>(u.min, 4096));
  ASSERT_TRUE(mem);
  std::memset(mem->data(), 'U', mem->size());
  iocb w = aio::make_pwrite(dfd.get(), std::as_const(*mem), static_cast<std::int64_t>(u.min));
  aio::set_rw_flags(w, aio::Rwf::atomic);
  EXPECT_EQ(outcome(ctx, w), static_cast<std::int64_t>(u.min));
}

// RWF_NOSIGNAL (6.18): a write to a pipe without readers fails with EPIPE either way, and
// raises SIGPIPE only without the flag.
volatile std::sig_atomic_t g_sigpipes = 0;
void on_sigpipe(int /*sig*/) { g_sigpipes = g_sigpipes + 1; }

TEST_F(NewerFlags, NosignalWriteToABrokenPipeRaisesNoSigpipe) {
  ScopedSignalHandler handler(SIGPIPE, on_sigpipe);
  ASSERT_TRUE(handler.ok());
  Pipe p;
  ASSERT_TRUE(p.ok());
  p.rd.reset();
  g_sigpipes = 0;
  iocb quiet = aio::make_pwrite(p.wr.get(), std::string_view("x"), 0);
  aio::set_rw_flags(quiet, aio::Rwf::nosignal);
  EXPECT_EQ(outcome(ctx, quiet), -EPIPE);
  EXPECT_EQ(g_sigpipes, 0);
  iocb loud = aio::make_pwrite(p.wr.get(), std::string_view("x"), 0);
  EXPECT_EQ(outcome(ctx, loud), -EPIPE);
  EXPECT_EQ(g_sigpipes, 1);
}

}  // namespace
