// Real-kernel refusals, no seam: a forked child installs a seccomp filter (raw BPF,
// SECCOMP_RET_ERRNO) that makes one syscall fail, as Docker's default profile or a sandbox
// would, and checks what aiopp reports. Also probe_fd() on a block device node whose disk
// does not exist.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <array>
#include <cerrno>

#include "fi_child.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using namespace std::chrono_literals;

constexpr bool filter_supported = seccomp_arch != 0;  // x86-64 and i386
constexpr const char* no_seccomp =
    "seccomp(2) refused here (kernel without CONFIG_SECCOMP_FILTER, or valgrind, which does not implement it)";

// io_pgetevents refused with `err`: probe() says so, Context::pgetevents() with a mask
// returns that error, and without a mask falls back to io_getevents and reaps the event.
// On ILP32 both io_pgetevents calls (time64 and time32) are refused, as on a kernel older
// than 4.18: waits then use the time32 io_getevents.
int pgetevents_refused(int err) {
  TempDir dir;
  Fd fd = dir.make_file("f", pattern(32));
  AIOTEST_CHILD_CHECK(fd.ok(), 2);
#if __SIZEOF_LONG__ == 4
  if (!seccomp_fail_syscalls({SYS_io_pgetevents_time64, SYS_io_pgetevents}, err)) return child_cannot;
#else
  if (!seccomp_fail_syscall(SYS_io_pgetevents, err)) return child_cannot;
#endif
  const aio::Capabilities caps = aio::probe();
  AIOTEST_CHILD_CHECK(!caps.setup, 4);
  AIOTEST_CHILD_CHECK(caps.pgetevents == std::error_code(err, std::system_category()), 5);
  AIOTEST_CHILD_CHECK(!caps.poll, 6);
  for (aio::ReapMode mode : {aio::ReapMode::syscall, aio::ReapMode::automatic}) {
    auto ctx = aio::Context::create(8, mode);
    AIOTEST_CHILD_CHECK(ctx, 7);
    std::string buf(16, '\0');
    iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
    AIOTEST_CHILD_CHECK(submit_one(*ctx, cb), 8);
    sigset_t mask;
    sigemptyset(&mask);
    std::array<io_event, 2> ev{};
    // min_nr 2 > ready: the ring cannot answer, the kernel is asked (and refuses).
    auto n = ctx->pgetevents(2, ev, 10ms, &mask);
    AIOTEST_CHILD_CHECK(!n && n.error() == std::error_code(err, std::system_category()), 9);
    n = ctx->pgetevents(1, ev, 1s, nullptr);
    AIOTEST_CHILD_CHECK(n && *n == 1 && ev[0].res == 16, 10);
  }
  return 0;
}

TEST(Seccomp, PgeteventsBlockedWithEpermIsReportedAndFallenBackFrom) {
  if (!filter_supported) GTEST_SKIP() << "the BPF filter here is written for x86-64 and i386";
  // On ILP32 every wait is io_pgetevents_time64 (io_getevents has 32-bit time): a sandbox
  // that refuses it with EPERM refuses waits; only ENOSYS means "missing" (as in glibc).
  if (sizeof(long) == 4) GTEST_SKIP() << "ILP32: waits need io_pgetevents_time64; EPERM is not fallen back from";
  const int rc = run_in_child([] { return pgetevents_refused(EPERM); });
  if (rc == child_cannot) GTEST_SKIP() << no_seccomp;
  EXPECT_EQ(rc, 0);
}

TEST(Seccomp, PgeteventsMissingLikeBefore418IsReportedAndFallenBackFrom) {
  if (!filter_supported) GTEST_SKIP() << "the BPF filter here is written for x86-64 and i386";
  const int rc = run_in_child([] { return pgetevents_refused(ENOSYS); });
  if (rc == child_cannot) GTEST_SKIP() << no_seccomp;
  EXPECT_EQ(rc, 0);
}

// statx refused by a sandbox (EPERM; with ENOSYS glibc would emulate it with fstatat): the
// O_DIRECT alignment is unknown, the rest of probe_fd() still works.
TEST(Seccomp, ProbeFdWithoutStatx) {
  if (!filter_supported) GTEST_SKIP() << "the BPF filter here is written for x86-64 and i386";
  TempDir dir;
  Fd fd = dir.make_file("f", "abc", O_RDONLY);
  ASSERT_TRUE(fd.ok());
  const int rc = run_in_child([&]() -> int {
    if (!seccomp_fail_syscall(SYS_statx, EPERM)) return child_cannot;
    auto caps = aio::probe_fd(fd.get());
    AIOTEST_CHILD_CHECK(caps, 3);
    AIOTEST_CHILD_CHECK(!caps->dio_mem_align && !caps->dio_offset_align, 4);
    AIOTEST_CHILD_CHECK(!caps->setup && !caps->ioprio_best_effort, 5);
    return 0;
  });
  if (rc == child_cannot) GTEST_SKIP() << no_seccomp;
  EXPECT_EQ(rc, 0);
}

// io_setup refused by seccomp (old Docker profiles): every probe says operation_not_permitted.
TEST(Seccomp, IoSetupBlocked) {
  if (!filter_supported) GTEST_SKIP() << "the BPF filter here is written for x86-64 and i386";
  const int rc = run_in_child([]() -> int {
    if (!seccomp_fail_syscall(SYS_io_setup, EPERM)) return child_cannot;
    const aio::Capabilities caps = aio::probe();
    AIOTEST_CHILD_CHECK(caps.setup == std::errc::operation_not_permitted, 3);
    AIOTEST_CHILD_CHECK(caps.pgetevents == std::errc::operation_not_permitted, 4);
    auto ctx = aio::Context::create(8);
    AIOTEST_CHILD_CHECK(!ctx && ctx.error() == std::errc::operation_not_permitted, 5);
    return 0;
  });
  if (rc == child_cannot) GTEST_SKIP() << no_seccomp;
  EXPECT_EQ(rc, 0);
}

// A block device node for a disk that does not exist (mknod, root only), opened O_PATH:
// statx reports S_IFBLK without DIO alignment (the kernel cannot find the disk), BLKSSZGET
// on an O_PATH descriptor fails (EBADF), so the alignment stays unknown; reads are refused
// with EBADF.
TEST(Seccomp, ProbeFdOnABlockDeviceNodeWithoutADisk) {
  if (::geteuid() != 0) GTEST_SKIP() << "mknod of a block device needs CAP_MKNOD";
  TempDir dir;
  const std::string node = dir.file("nodisk");
  // Major 259 (blkext), a minor far beyond any partition on a test machine.
  if (::mknod(node.c_str(), S_IFBLK | 0600, makedev(259, 1048000)) != 0)
    GTEST_SKIP() << "mknod refused here (nodev mount or no CAP_MKNOD): " << std::strerror(errno);
  Fd fd(::open(node.c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(fd.ok()) << std::strerror(errno);
  auto caps = aio::probe_fd(fd.get());
  ASSERT_TRUE(caps) << caps.error().message();
  EXPECT_FALSE(caps->dio_mem_align.has_value());
  EXPECT_FALSE(caps->dio_offset_align.has_value());
  EXPECT_EQ(caps->nowait_read, std::errc::bad_file_descriptor);
  EXPECT_NE(aio::describe(*caps).find("O_DIRECT alignment: unknown"), std::string::npos) << aio::describe(*caps);
}

// describe() for every shape of the structs (probe results that this machine cannot give).
TEST(Seccomp, DescribeEveryOutcome) {
  aio::Capabilities caps;
  caps.ring_reaping = true;
  std::string s = aio::describe(caps);
  EXPECT_NE(s.find("io_setup: ok"), std::string::npos) << s;
  EXPECT_NE(s.find("ring reaping: yes"), std::string::npos) << s;
  caps.ring_reaping = false;
  caps.poll = std::make_error_code(std::errc::invalid_argument);
  s = aio::describe(caps);
  EXPECT_NE(s.find("ring reaping: no"), std::string::npos) << s;
  EXPECT_NE(s.find("IOCB_CMD_POLL: Invalid argument"), std::string::npos) << s;

  aio::FdCapabilities fc;
  fc.o_direct = true;
  s = aio::describe(fc);
  EXPECT_NE(s.find("O_DIRECT: set"), std::string::npos) << s;
  EXPECT_NE(s.find("alignment: unknown"), std::string::npos) << s;
  EXPECT_EQ(s.find("io_setup"), std::string::npos) << s;
  fc.dio_mem_align = 0;
  fc.dio_offset_align = 0;
  EXPECT_NE(aio::describe(fc).find("alignment: not supported"), std::string::npos);
  fc.dio_mem_align = 4;
  EXPECT_NE(aio::describe(fc).find("alignment: not supported"), std::string::npos);
  fc.dio_offset_align = 512;
  fc.o_direct = false;
  fc.setup = std::make_error_code(std::errc::function_not_supported);
  s = aio::describe(fc);
  EXPECT_NE(s.find("O_DIRECT: not set"), std::string::npos) << s;
  EXPECT_NE(s.find("memory 4, offset 512"), std::string::npos) << s;
  EXPECT_NE(s.find("io_setup: Function not implemented"), std::string::npos) << s;
  fc.dio_mem_align.reset();
  EXPECT_NE(aio::describe(fc).find("alignment: unknown"), std::string::npos);
  fc.dio_mem_align = 4;
  fc.dio_offset_align.reset();
  EXPECT_NE(aio::describe(fc).find("alignment: unknown"), std::string::npos);
}

}  // namespace
