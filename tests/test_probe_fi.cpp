// Capability probes (include/aio/probe.hpp) under fault injection: a kernel or seccomp
// filter that refuses io_setup, io_pgetevents, IOCB_CMD_POLL or realtime priorities.
#include <gtest/gtest.h>

#include <poll.h>

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;

TEST(ProbeFi, NoAioAtAll) {
  ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::setup ? -ENOSYS : fi::passthrough(a); });
  const aio::Capabilities caps = aio::probe();
  EXPECT_FALSE(caps.aio_available());
  EXPECT_EQ(caps.setup, std::errc::function_not_supported);
  EXPECT_EQ(caps.pgetevents, std::errc::function_not_supported);
  EXPECT_EQ(caps.poll, std::errc::function_not_supported);
  EXPECT_FALSE(caps.ring_reaping);
  EXPECT_NE(aio::describe(caps).find("io_setup: Function not implemented"), std::string::npos)
      << aio::describe(caps);

  TempDir dir;
  Fd fd = dir.make_file("f", "abc", O_RDONLY);
  auto fc = aio::probe_fd(fd.get());
  ASSERT_TRUE(fc);
  EXPECT_EQ(fc->setup, std::errc::function_not_supported);
  EXPECT_EQ(fc->nowait_read, std::errc::function_not_supported);
  EXPECT_EQ(fc->ioprio_realtime, std::errc::function_not_supported);
  EXPECT_EQ(fc->poll, std::errc::function_not_supported);
  EXPECT_FALSE(fc->poll_always_ready);
  EXPECT_FALSE(fc->supports(aio::FdCapability::poll));
  EXPECT_TRUE(fc->dio_offset_align.has_value()) << "statx does not need AIO";
}

TEST(ProbeFi, SeccompBlocksPgetevents) {
  ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::pgetevents ? -EPERM : fi::passthrough(a); });
  const aio::Capabilities caps = aio::probe();
  EXPECT_FALSE(caps.setup);
  EXPECT_EQ(caps.pgetevents, std::errc::operation_not_permitted);
  EXPECT_FALSE(caps.poll);
}

TEST(ProbeFi, KernelWithoutPoll) {
  ScopedHook hook([](fi::Args& a) -> long {
    if (a.call == Call::submit && a.iocbs[0]->aio_lio_opcode == IOCB_CMD_POLL) return -EINVAL;
    return fi::passthrough(a);
  });
  const aio::Capabilities caps = aio::probe();
  EXPECT_FALSE(caps.setup);
  EXPECT_EQ(caps.poll, std::errc::invalid_argument);
  EXPECT_FALSE(caps.ring_reaping) << "nothing completed, so the ring was never seen to work";
}

TEST(ProbeFi, PollThatNeverCompletesIsCancelled) {
  // Reap through the syscall (the hook cannot hide completions the ring hands out).
  const char* old = std::getenv("AIOPP_REAP");
  struct Restore {
    std::string value;
    bool had;
    ~Restore() {
      if (had) {
        ::setenv("AIOPP_REAP", value.c_str(), 1);
      } else {
        ::unsetenv("AIOPP_REAP");
      }
    }
  } restore{old != nullptr ? old : "", old != nullptr};
  ::setenv("AIOPP_REAP", "syscall", 1);
  bool cancelled = false;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::getevents && !cancelled) return 0;  // pretend nothing arrives
    if (a.call == Call::cancel) cancelled = true;
    return fi::passthrough(a);
  });
  const aio::Capabilities caps = aio::probe();
  EXPECT_EQ(caps.poll, std::errc::timed_out);
  EXPECT_TRUE(cancelled);
  EXPECT_FALSE(caps.ring_reaping);
}

TEST(ProbeFi, RealtimePriorityRefused) {
  ScopedHook hook([](fi::Args& a) -> long {
    if (a.call == Call::submit && (a.iocbs[0]->aio_flags & IOCB_FLAG_IOPRIO) != 0 &&
        (static_cast<unsigned>(static_cast<std::uint16_t>(a.iocbs[0]->aio_reqprio)) >> 13U) == 1U)
      return -EPERM;
    return fi::passthrough(a);
  });
  TempDir dir;
  Fd fd = dir.make_file("f", "abc", O_RDONLY);
  auto fc = aio::probe_fd(fd.get());
  ASSERT_TRUE(fc);
  EXPECT_FALSE(fc->ioprio_best_effort);
  EXPECT_EQ(fc->ioprio_realtime, std::errc::operation_not_permitted);
  EXPECT_FALSE(fc->nowait_read);
  EXPECT_NE(aio::describe(*fc).find("IOCB_FLAG_IOPRIO realtime: Operation not permitted"), std::string::npos);
}

// ---- probe_fd()'s IOCB_CMD_POLL probe ----------------------------------------------------

bool is_poll_submit(const fi::Args& a) { return a.call == Call::submit && a.iocbs[0]->aio_lio_opcode == IOCB_CMD_POLL; }
bool zero_timeout(const fi::Args& a) { return a.timeout != nullptr && a.timeout->tv_sec == 0 && a.timeout->tv_nsec == 0; }

// A poll of an empty pipe waits: it is cancelled, and its completion reaped (so the probe
// Context's io_destroy finds nothing in flight). The pipe is never read.
TEST(ProbeFi, WaitingPollIsCancelledAndReaped) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int polls = 0;
  int cancels = 0;
  long reaped = 0;
  bool cancelled = false;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (is_poll_submit(a)) ++polls;
    if (a.call == Call::cancel) ++cancels;
    const long r = fi::passthrough(a);
    if (a.call == Call::cancel) cancelled = true;
    if (a.call == Call::getevents && cancelled && r > 0) reaped += r;
    return r;
  });
  auto fc = aio::probe_fd(p.rd.get());
  ASSERT_TRUE(fc);
  EXPECT_FALSE(fc->poll) << fc->poll.message();
  EXPECT_FALSE(fc->poll_always_ready);
  EXPECT_EQ(polls, 1);
  EXPECT_EQ(cancels, 1);
  EXPECT_EQ(reaped, 1);
}

TEST(ProbeFi, PollSubmitAcceptingNothing) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  ScopedHook hook([](fi::Args& a) -> long { return is_poll_submit(a) ? 0 : fi::passthrough(a); });
  auto fc = aio::probe_fd(p.rd.get());
  ASSERT_TRUE(fc);
  EXPECT_EQ(fc->poll, std::errc::resource_unavailable_try_again);
  EXPECT_FALSE(fc->supports(aio::FdCapability::poll));
}

TEST(ProbeFi, PollReapRetriesInterruptions) {
  Pipe p;
  ASSERT_TRUE(p.ok());
  int eintrs = 0;
  bool cancelled = false;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::cancel) cancelled = true;
    if (cancelled && a.call == Call::getevents && eintrs < 3) {
      ++eintrs;
      return -EINTR;
    }
    return fi::passthrough(a);
  });
  auto fc = aio::probe_fd(p.rd.get());
  ASSERT_TRUE(fc);
  EXPECT_FALSE(fc->poll);
  EXPECT_EQ(eintrs, 3);
}

// A regular file refuses a poll that would have to wait; one for its events completes
// inside io_submit. If that completion were not there at once, it is not "always ready":
// the refusal stands.
TEST(ProbeFi, AlwaysReadyOnlyWhenCompletedAtOnce) {
  TempDir dir;
  Fd fd = dir.make_file("f", "abc", O_RDONLY);
  ASSERT_TRUE(fd.ok());
  int polls = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (is_poll_submit(a)) ++polls;
    if (a.call == Call::getevents && zero_timeout(a)) return 0;
    return fi::passthrough(a);
  });
  auto fc = aio::probe_fd(fd.get());
  ASSERT_TRUE(fc);
  EXPECT_EQ(polls, 2) << "the waiting poll, then one for POLLIN";
  EXPECT_EQ(fc->poll, std::errc::invalid_argument);
  EXPECT_FALSE(fc->poll_always_ready);
}

TEST(ProbeFi, AlwaysReadyPollIsAskedForTheAccessModesEvents) {
  TempDir dir;
  std::vector<std::uint64_t> asked;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (is_poll_submit(a)) asked.push_back(a.iocbs[0]->aio_buf);
    return fi::passthrough(a);
  });
  for (const int mode : {O_RDONLY, O_WRONLY, O_RDWR}) {
    Fd fd = dir.make_file("f" + std::to_string(mode), "abc", mode);
    ASSERT_TRUE(fd.ok());
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_TRUE(fc->poll_always_ready);
  }
  EXPECT_EQ(asked, (std::vector<std::uint64_t>{0, POLLIN, 0, POLLOUT, 0, POLLIN | POLLOUT}));
}

}  // namespace
