// Capability probes (include/aio/probe.hpp) against the real kernel: Linux 6.18, /tmp on
// ext4, /dev/shm on tmpfs, running as root (the realtime-priority denial is checked in a
// forked child that drops CAP_SYS_ADMIN and CAP_SYS_NICE).
#include <gtest/gtest.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/inotify.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>

#include <array>
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
  EXPECT_TRUE(caps.supports(aio::Capability::setup));
  EXPECT_TRUE(caps.supports(aio::Capability::pgetevents));
  EXPECT_TRUE(caps.supports(aio::Capability::poll));
  EXPECT_EQ(caps.supports(aio::Capability::ring_reaping), !ring_forbidden_by_environment());
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
  EXPECT_TRUE(caps->supports(aio::FdCapability::nowait_read));
  EXPECT_TRUE(caps->supports(aio::FdCapability::ioprio_best_effort));
  EXPECT_TRUE(caps->supports(aio::FdCapability::o_direct)) << "alignment known and non-zero";
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
  EXPECT_FALSE(caps->supports(aio::FdCapability::nowait_read));
  EXPECT_FALSE(caps->dio_mem_align.has_value());
  EXPECT_FALSE(caps->supports(aio::FdCapability::o_direct)) << "alignment unknown";
  EXPECT_FALSE(caps->ioprio_best_effort);
  EXPECT_TRUE(caps->poll_always_ready) << "tmpfs files have no poll method either";
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

TEST(Probe, SupportsReadsTheFields) {
  aio::Capabilities caps;
  EXPECT_TRUE(caps.supports(aio::Capability::setup));
  EXPECT_FALSE(caps.supports(aio::Capability::ring_reaping));
  caps.ring_reaping = true;
  caps.pgetevents = std::make_error_code(std::errc::function_not_supported);
  EXPECT_TRUE(caps.supports(aio::Capability::ring_reaping));
  EXPECT_FALSE(caps.supports(aio::Capability::pgetevents));
  EXPECT_TRUE(caps.supports(aio::Capability::poll));
  caps.setup = std::make_error_code(std::errc::operation_not_permitted);
  EXPECT_FALSE(caps.supports(aio::Capability::setup));
  EXPECT_FALSE(caps.aio_available());

  aio::FdCapabilities fc;
  EXPECT_TRUE(fc.supports(aio::FdCapability::nowait_read));
  EXPECT_TRUE(fc.supports(aio::FdCapability::poll));
  EXPECT_FALSE(fc.supports(aio::FdCapability::o_direct)) << "alignment unknown";
  fc.dio_mem_align = 512;
  EXPECT_FALSE(fc.supports(aio::FdCapability::o_direct)) << "offset alignment unknown";
  fc.dio_offset_align = 0;
  EXPECT_FALSE(fc.supports(aio::FdCapability::o_direct)) << "0: the file cannot do O_DIRECT";
  fc.dio_offset_align = 4096;
  EXPECT_TRUE(fc.supports(aio::FdCapability::o_direct));
  fc.ioprio_realtime = std::make_error_code(std::errc::operation_not_permitted);
  EXPECT_FALSE(fc.supports(aio::FdCapability::ioprio_realtime));
  EXPECT_TRUE(fc.supports(aio::FdCapability::ioprio_best_effort));
  fc.poll_always_ready = true;
  EXPECT_FALSE(fc.supports(aio::FdCapability::poll)) << "accepted, but never waits";
  fc.poll_always_ready = false;
  fc.poll = std::make_error_code(std::errc::invalid_argument);
  EXPECT_FALSE(fc.supports(aio::FdCapability::poll));
}

// ---- IOCB_CMD_POLL per fd ---------------------------------------------------------------

void expect_pollable(int fd, const char* what) {
  SCOPED_TRACE(what);
  auto caps = aio::probe_fd(fd);
  ASSERT_TRUE(caps) << caps.error().message();
  EXPECT_FALSE(caps->poll) << caps->poll.message();
  EXPECT_FALSE(caps->poll_always_ready);
  EXPECT_TRUE(caps->supports(aio::FdCapability::poll));
  const std::string d = aio::describe(*caps);
  EXPECT_NE(d.find("IOCB_CMD_POLL: ok\n"), std::string::npos) << d;
}

void expect_always_ready(int fd, const char* what) {
  SCOPED_TRACE(what);
  auto caps = aio::probe_fd(fd);
  ASSERT_TRUE(caps) << caps.error().message();
  EXPECT_FALSE(caps->poll) << caps->poll.message();
  EXPECT_TRUE(caps->poll_always_ready);
  EXPECT_FALSE(caps->supports(aio::FdCapability::poll));
  const std::string d = aio::describe(*caps);
  EXPECT_NE(d.find("IOCB_CMD_POLL: always ready (never waits)\n"), std::string::npos) << d;
}

// Nothing is read by the probe: `fd` still has exactly `want` to read.
void expect_unread(int fd, const std::string& want) {
  std::array<char, 64> buf{};
  const ssize_t n = ::read(fd, buf.data(), buf.size());
  ASSERT_EQ(n, static_cast<ssize_t>(want.size())) << std::strerror(errno);
  EXPECT_EQ(std::string(buf.data(), want.size()), want);
}

TEST(ProbePoll, PipesAndSockets) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  expect_pollable(p.rd.get(), "empty pipe, read end");
  expect_pollable(p.wr.get(), "pipe, write end");
  ASSERT_EQ(::write(p.wr.get(), "abc", 3), 3);
  expect_pollable(p.rd.get(), "pipe with data");
  expect_unread(p.rd.get(), "abc");

  std::array<int, 2> sv{-1, -1};
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv.data()), 0);
  Fd a(sv[0]);
  Fd b(sv[1]);
  expect_pollable(a.get(), "socketpair, nothing to read");
  ASSERT_EQ(::write(b.get(), "xy", 2), 2);
  expect_pollable(a.get(), "socketpair with data");
  expect_unread(a.get(), "xy");

  Pipe hung;
  ASSERT_TRUE(hung.ok());
  hung.wr.reset();
  expect_pollable(hung.rd.get(), "pipe without writers (POLLHUP at once)");
}

// A FIFO opened for reading only can be polled; opened O_RDWR its poll waits on both the
// reader and the writer queue, which IOCB_CMD_POLL refuses like a terminal's.
TEST(ProbePoll, FifoOpenedReadWriteIsRefused) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  const std::string path = dir.file("fifo");
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
  Fd rd(::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(rd.ok()) << std::strerror(errno);
  expect_pollable(rd.get(), "FIFO, O_RDONLY");
  Fd rw(::open(path.c_str(), O_RDWR | O_NONBLOCK | O_CLOEXEC));
  ASSERT_TRUE(rw.ok()) << std::strerror(errno);
  auto caps = aio::probe_fd(rw.get());
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->poll, std::errc::invalid_argument) << caps->poll.message();
  EXPECT_FALSE(caps->poll_always_ready);
}

TEST(ProbePoll, EventTimerSignalEpollAndInotifyFds) {
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  expect_pollable(efd.get(), "eventfd at 0");
  const std::uint64_t five = 5;
  ASSERT_EQ(::write(efd.get(), &five, sizeof five), static_cast<ssize_t>(sizeof five));
  expect_pollable(efd.get(), "readable eventfd");
  EXPECT_EQ(read_eventfd(efd.get()), std::optional<std::uint64_t>(5)) << "the counter was not read";

  Fd tfd(::timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK));
  ASSERT_TRUE(tfd.ok()) << std::strerror(errno);
  expect_pollable(tfd.get(), "timerfd");

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR2);
  Fd sfd(::signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK));
  ASSERT_TRUE(sfd.ok()) << std::strerror(errno);
  expect_pollable(sfd.get(), "signalfd");

  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.ok()) << std::strerror(errno);
  expect_pollable(ep.get(), "epoll fd");

  Fd in(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  ASSERT_TRUE(in.ok()) << std::strerror(errno);
  expect_pollable(in.get(), "inotify fd");
}

// A pseudo-terminal pair: the slave (and the master) are terminals.
struct Pty {
  Fd master, slave;
  std::string error;
  Pty() {
    master = Fd(::posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC));
    if (!master.ok()) {
      error = std::string("posix_openpt: ") + std::strerror(errno);
      return;
    }
    std::array<char, 128> name{};
    if (::grantpt(master.get()) != 0 || ::unlockpt(master.get()) != 0 ||
        ::ptsname_r(master.get(), name.data(), name.size()) != 0) {
      error = std::string("grantpt/unlockpt/ptsname_r: ") + std::strerror(errno);
      return;
    }
    slave = Fd(::open(name.data(), O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK));
    if (!slave.ok()) error = std::string("open ") + name.data() + ": " + std::strerror(errno);
  }
};

TEST(ProbePoll, TerminalIsRefused) {
  Pty pty;
  if (!pty.error.empty()) GTEST_SKIP() << "no pseudo-terminal here: " << pty.error;

  // What the probe reports is what the kernel does to a poll of a terminal that has to wait.
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  iocb raw = aio::make_poll(pty.slave.get(), aio::PollEvents::in);
  EXPECT_EQ(submit_one(*ctx, raw).error(), std::errc::invalid_argument);

  for (const int fd : {pty.slave.get(), pty.master.get()}) {
    SCOPED_TRACE(fd == pty.slave.get() ? "slave" : "master");
    auto caps = aio::probe_fd(fd);
    ASSERT_TRUE(caps) << caps.error().message();
    EXPECT_EQ(caps->poll, std::errc::invalid_argument) << caps->poll.message();
    EXPECT_FALSE(caps->poll_always_ready);
    EXPECT_FALSE(caps->supports(aio::FdCapability::poll));
    const std::string d = aio::describe(*caps);
    EXPECT_NE(d.find("IOCB_CMD_POLL: Invalid argument\n"), std::string::npos) << d;
  }

  // Input waiting on the terminal: a poll for POLLIN would now complete at once, but the
  // terminal still cannot be waited on; and the probe does not read the input.
  ASSERT_EQ(::write(pty.master.get(), "hi\n", 3), 3);
  struct pollfd pfd {pty.slave.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  iocb ready = aio::make_poll(pty.slave.get(), aio::PollEvents::in);
  ASSERT_EQ(submit_one(*ctx, ready), 1U) << "a poll that needs no waiting is accepted";
  std::array<io_event, 1> ev{};
  ASSERT_EQ(ctx->getevents(1, ev, std::chrono::seconds(5)), 1U);
  EXPECT_TRUE(aio::any(aio::poll_events(ev[0]) & aio::PollEvents::in));
  auto caps = aio::probe_fd(pty.slave.get());
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->poll, std::errc::invalid_argument);
  EXPECT_FALSE(caps->poll_always_ready);
  expect_unread(pty.slave.get(), "hi\n");
}

TEST(ProbePoll, RegularFilesDirectoriesAndDevNullAreAlwaysReady) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  Fd rd = dir.make_file("r", "data", O_RDONLY);
  ASSERT_TRUE(rd.ok());
  expect_always_ready(rd.get(), "ext4 file, read-only");
  Fd wr = dir.make_file("w", "", O_WRONLY);
  ASSERT_TRUE(wr.ok());
  expect_always_ready(wr.get(), "ext4 file, write-only");
  Fd null(::open("/dev/null", O_RDWR | O_CLOEXEC));
  ASSERT_TRUE(null.ok());
  expect_always_ready(null.get(), "/dev/null");
  Fd d(::open(dir.file(".").c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  ASSERT_TRUE(d.ok()) << std::strerror(errno);
  expect_always_ready(d.get(), "a directory");
}

TEST(ProbePoll, BlockDeviceIsAlwaysReady) {
  // A loop device (bound or not) if there is one, else a disk; opened read-only, never read.
  Fd dev;
  std::string name;
  for (const char* path : {"/dev/loop0", "/dev/loop1", "/dev/vda", "/dev/sda", "/dev/nvme0n1", "/dev/xvda"}) {
    struct stat st {};
    if (::stat(path, &st) != 0 || !S_ISBLK(st.st_mode)) continue;
    dev = Fd(::open(path, O_RDONLY | O_CLOEXEC));
    if (dev.ok()) {
      name = path;
      break;
    }
  }
  if (!dev.ok()) GTEST_SKIP() << "no block device can be opened here (not root, or none of the usual names)";
  expect_always_ready(dev.get(), name.c_str());
}

TEST(ProbePoll, OPathFdIsRefused) {
  TempDir dir;
  ASSERT_TRUE(dir.ok());
  ASSERT_TRUE(dir.make_file("f", "x", O_RDONLY).ok());
  Fd path(::open(dir.file("f").c_str(), O_PATH | O_CLOEXEC));
  ASSERT_TRUE(path.ok()) << std::strerror(errno);
  auto caps = aio::probe_fd(path.get());
  ASSERT_TRUE(caps);
  EXPECT_EQ(caps->poll, std::errc::bad_file_descriptor);
  EXPECT_FALSE(caps->poll_always_ready);
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
