// Capability probes (include/aio/probe.hpp) under fault injection: a kernel or seccomp
// filter that refuses io_setup, io_pgetevents, IOCB_CMD_POLL or realtime priorities.
#include <gtest/gtest.h>

#include <cstdlib>
#include <functional>
#include <string>

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

}  // namespace
