// Capability probes (include/aio/probe.hpp) against the real kernel: Linux 6.18, /tmp on
// ext4, /dev/shm on tmpfs, running as root (the realtime-priority denial is checked in a
// forked child that drops CAP_SYS_ADMIN and CAP_SYS_NICE).
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include <cstdlib>

#include "test_util.hpp"

namespace {

using namespace aiotest;

bool has_effective_cap(int cap) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  const auto bit = static_cast<unsigned>(cap);
  return (data[bit / 32].effective & (1U << (bit % 32))) != 0;
}

bool drop_effective_caps(std::initializer_list<int> caps) {
  __user_cap_header_struct hdr{_LINUX_CAPABILITY_VERSION_3, 0};
  __user_cap_data_struct data[2]{};
  if (::syscall(SYS_capget, &hdr, data) != 0) return false;
  for (int cap : caps) {
    const auto bit = static_cast<unsigned>(cap);
    data[bit / 32].effective &= ~(1U << (bit % 32));
  }
  return ::syscall(SYS_capset, &hdr, data) == 0;
}

bool ring_forbidden_by_environment() {
  const char* reap = std::getenv("AIOPP_REAP");
  const char* preload = std::getenv("LD_PRELOAD");
  return (reap != nullptr && std::string(reap) == "syscall") ||
         (preload != nullptr && std::string(preload).find("vgpreload") != std::string::npos);
}

TEST(Probe, EverythingWorksHere) {
  const aio::Capabilities caps = aio::probe();
  EXPECT_TRUE(caps.aio_available());
  EXPECT_FALSE(caps.setup) << caps.setup.message();
  EXPECT_FALSE(caps.pgetevents) << caps.pgetevents.message();
  EXPECT_FALSE(caps.poll) << caps.poll.message();
  EXPECT_EQ(caps.ring_reaping, !ring_forbidden_by_environment());
  const std::string d = aio::describe(caps);
  EXPECT_NE(d.find("io_setup: ok\n"), std::string::npos) << d;
  EXPECT_NE(d.find("io_pgetevents: ok\n"), std::string::npos) << d;
  EXPECT_NE(d.find("IOCB_CMD_POLL: ok\n"), std::string::npos) << d;
}

TEST(Probe, ProbeLeavesTheSignalMaskAlone) {
  ScopedThreadMask restore;
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR2);
  ASSERT_EQ(::pthread_sigmask(SIG_BLOCK, &block, nullptr), 0);
  (void)aio::probe();
  EXPECT_TRUE(is_blocked(SIGUSR2));
}

TEST(Probe, Ext4File) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", pattern(8192), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto caps = aio::probe_fd(fd.get());
  ASSERT_TRUE(caps) << caps.error().message();
  EXPECT_FALSE(caps->o_direct);
  ASSERT_TRUE(caps->dio_mem_align.has_value()) << "ext4 reports STATX_DIOALIGN on Linux >= 6.1";
  ASSERT_TRUE(caps->dio_offset_align.has_value());
  EXPECT_GT(*caps->dio_mem_align, 0U);
  EXPECT_GT(*caps->dio_offset_align, 0U);
  EXPECT_EQ(*caps->dio_offset_align & (*caps->dio_offset_align - 1), 0U) << "a power of two";
  EXPECT_FALSE(caps->nowait_read) << caps->nowait_read.message();
  EXPECT_FALSE(caps->ioprio_best_effort) << caps->ioprio_best_effort.message();
  if (has_effective_cap(CAP_SYS_ADMIN)) {
    EXPECT_FALSE(caps->ioprio_realtime) << caps->ioprio_realtime.message();
  }
  EXPECT_FALSE(caps->setup);
  const std::string d = aio::describe(*caps);
  EXPECT_NE(d.find("RWF_NOWAIT read: ok\n"), std::string::npos) << d;
  EXPECT_NE(d.find("O_DIRECT alignment: memory "), std::string::npos) << d;
}

TEST(Probe, Ext4FileOpenedODirect) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", pattern(8192), O_RDONLY | O_DIRECT);
  ASSERT_TRUE(fd.ok());
  auto caps = aio::probe_fd(fd.get());
  ASSERT_TRUE(caps);
  EXPECT_TRUE(caps->o_direct);
  EXPECT_TRUE(caps->dio_offset_align.has_value());
  EXPECT_FALSE(caps->nowait_read) << caps->nowait_read.message();
  EXPECT_FALSE(caps->ioprio_best_effort) << caps->ioprio_best_effort.message();
}

TEST(Probe, TmpfsFile) {
  TempDir dir("/dev/shm");
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", pattern(100), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  auto caps = aio::probe_fd(fd.get());
  ASSERT_TRUE(caps);
  // Linux 6.18 tmpfs: no FMODE_NOWAIT for AIO, and no STATX_DIOALIGN answer.
  EXPECT_EQ(caps->nowait_read, std::errc::operation_not_supported);
  EXPECT_FALSE(caps->dio_mem_align.has_value());
  EXPECT_FALSE(caps->ioprio_best_effort);
  const std::string d = aio::describe(*caps);
  EXPECT_NE(d.find("O_DIRECT alignment: unknown\n"), std::string::npos) << d;
}

TEST(Probe, WriteOnlyAndBadFd) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", "abc", O_WRONLY);
  ASSERT_TRUE(fd.ok());
  auto caps = aio::probe_fd(fd.get());
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->nowait_read, std::errc::bad_file_descriptor);
  EXPECT_EQ(caps->ioprio_best_effort, std::errc::bad_file_descriptor);

  const int closed = ::dup(fd.get());
  ASSERT_GE(closed, 0);
  ::close(closed);
  auto bad = aio::probe_fd(closed);
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error(), std::errc::bad_file_descriptor);
  EXPECT_EQ(aio::probe_fd(-1).error(), std::errc::bad_file_descriptor);
}

TEST(Probe, PipeAndEventfd) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  auto caps = aio::probe_fd(p.rd.get());
  ASSERT_TRUE(caps) << caps.error().message();
  EXPECT_FALSE(caps->dio_mem_align.has_value());
  (void)aio::describe(*caps);  // whatever the kernel says, it is printable
}

TEST(Probe, RealtimePriorityNeedsCapability) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd fd = dir.make_file("f", pattern(4096), O_RDONLY);
  ASSERT_TRUE(fd.ok());
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Child: no gtest here; the exit code says what happened.
    if (!drop_effective_caps({CAP_SYS_ADMIN, CAP_SYS_NICE})) ::_exit(10);
    auto caps = aio::probe_fd(fd.get());
    if (!caps) ::_exit(11);
    if (caps->ioprio_best_effort) ::_exit(12);
    if (caps->ioprio_realtime != std::errc::operation_not_permitted) ::_exit(13);
    ::_exit(0);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "10: capset, 11: probe_fd, 12: best-effort refused, "
                                       "13: realtime not refused with EPERM";
}

}  // namespace
