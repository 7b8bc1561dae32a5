// Fault injection, complete: every error a syscall of the shim can return, for every public
// call, through the seam (aiopp_fi), with the exact std::errc each call reports — and that
// nothing is lost: events reaped before an EINTR or an error are returned, io_pgetevents
// refused (ENOSYS: kernel < 4.18; EPERM: seccomp) is reported by probe(). Also the error
// branches of probe(), create_shrinking(), system_limits() and the ring reader's refusal of
// an unknown ring layout. submit_all() under faults is in test_batch_fi.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "fi_child.hpp"
#include "fi_hook.hpp"
#include "ring.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using namespace std::chrono_literals;
using aio::sys::Call;

// ---- The table: (call x errno) -> the exact error -------------------------------------

struct Errno {
  int err;
  std::errc errc;
};
// EINTR (signal), EAGAIN (ring full / aio-max-nr), ENOMEM, EFAULT (bad pointer), EBADF
// (fd of an iocb), EINVAL (bad context or argument), ENOSYS (no such syscall), EPERM
// (seccomp), EIO: all reported as themselves, never retried by the Context.
constexpr std::array<Errno, 9> kErrnos{{{EINTR, std::errc::interrupted},
                                        {EAGAIN, std::errc::resource_unavailable_try_again},
                                        {ENOMEM, std::errc::not_enough_memory},
                                        {EFAULT, std::errc::bad_address},
                                        {EBADF, std::errc::bad_file_descriptor},
                                        {EINVAL, std::errc::invalid_argument},
                                        {ENOSYS, std::errc::function_not_supported},
                                        {EPERM, std::errc::operation_not_permitted},
                                        {EIO, std::errc::io_error}}};

enum class Op { setup, submit, getevents, pgetevents_mask, pgetevents_nomask, cancel, destroy };
constexpr std::array<Op, 7> kOps{Op::setup,           Op::submit, Op::getevents, Op::pgetevents_mask,
                                 Op::pgetevents_nomask, Op::cancel, Op::destroy};

const char* op_name(Op op) {
  switch (op) {
    case Op::setup: return "create";
    case Op::submit: return "submit";
    case Op::getevents: return "getevents";
    case Op::pgetevents_mask: return "pgetevents(mask)";
    case Op::pgetevents_nomask: return "pgetevents(nullptr)";
    case Op::cancel: return "cancel";
    case Op::destroy: return "destroy";
  }
  return "?";
}

Call call_of(Op op) {
  switch (op) {
    case Op::setup: return Call::setup;
    case Op::submit: return Call::submit;
    case Op::getevents: return Call::getevents;
    case Op::pgetevents_mask:
    case Op::pgetevents_nomask: return Call::pgetevents;
    case Op::cancel: return Call::cancel;
    case Op::destroy: return Call::destroy;
  }
  return Call::setup;
}

// Runs one public call with `err` injected into its syscall (every other syscall real) and
// checks the error it returns. With `observed`, an Observer is attached and must count the
// failure under that errno.
void check_one(Op op, Errno e, bool observed) {
  SCOPED_TRACE(std::string(op_name(op)) + " <- -" + std::to_string(e.err) + (observed ? " (observed)" : ""));
  aio::Observer obs;
  aio::Observer* o = observed ? &obs : nullptr;
  const Call target = call_of(op);
  int injected = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == target) {
      ++injected;
      return -e.err;
    }
    return fi::passthrough(a);
  });
  const std::error_code want(e.err, std::system_category());

  if (op == Op::setup) {
    auto c = aio::Context::create(8, aio::ReapMode::syscall, o);
    ASSERT_FALSE(c);
    EXPECT_EQ(c.error(), want);
    EXPECT_EQ(c.error(), e.errc);
    EXPECT_EQ(injected, 1);
    if (observed) {
      EXPECT_EQ(obs.errors(e.err), 1U);
    }
    return;
  }

  auto c = aio::Context::create(8, aio::ReapMode::syscall, o);  // setup is not the target
  ASSERT_TRUE(c) << c.error().message();
  aio::Context ctx = std::move(*c);
  TempDir dir;
  Fd fd = dir.make_file("f", pattern(64));
  std::string buf(16, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  iocb* list[1] = {&cb};
  std::array<io_event, 2> ev{};
  sigset_t mask;
  sigemptyset(&mask);

  switch (op) {
    case Op::setup: break;
    case Op::submit: {
      auto n = ctx.submit(list);
      ASSERT_FALSE(n);
      EXPECT_EQ(n.error(), want);
      EXPECT_EQ(n.error(), e.errc);
      break;
    }
    case Op::getevents: {
      auto n = ctx.getevents(1, ev, 1ms);
      ASSERT_FALSE(n);
      EXPECT_EQ(n.error(), want);
      EXPECT_EQ(n.error(), e.errc);
      break;
    }
    case Op::pgetevents_mask: {
      auto n = ctx.pgetevents(1, ev, 1ms, &mask);
      ASSERT_FALSE(n);
      EXPECT_EQ(n.error(), want) << "with a mask there is no fallback";
      break;
    }
    case Op::pgetevents_nomask: {
      auto n = ctx.pgetevents(0, ev, 0ns, nullptr);
      if (e.err == ENOSYS || e.err == EPERM) {
        // Kernel < 4.18 or seccomp: without a mask io_getevents does the same job.
        ASSERT_TRUE(n) << n.error().message();
        EXPECT_EQ(*n, 0U);
      } else {
        ASSERT_FALSE(n);
        EXPECT_EQ(n.error(), want);
      }
      break;
    }
    case Op::cancel: {
      auto r = ctx.cancel(cb);
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error(), want);
      EXPECT_EQ(r.error(), e.errc);
      break;
    }
    case Op::destroy: {
      auto r = ctx.destroy();
      ASSERT_FALSE(r);
      EXPECT_EQ(r.error(), want);
      EXPECT_FALSE(ctx.valid()) << "a failed io_destroy still leaves the Context empty";
      break;
    }
  }
  EXPECT_EQ(injected, 1);
  if (observed) {
    EXPECT_EQ(obs.errors(e.err), 1U);
  }
  if (op == Op::destroy) return;
  // Nothing was accepted by the failed call; with the fault gone the Context still works.
  hook.fn = [](fi::Args& a) { return fi::passthrough(a); };
  io_event done = run_one(ctx, cb);
  EXPECT_EQ(done.res, 16);
  EXPECT_EQ(buf, pattern(64).substr(0, 16));
}

TEST(FiErrors, EveryCallReportsEveryErrnoExactly) {
  for (Op op : kOps)
    for (const Errno& e : kErrnos) check_one(op, e, false);
}

TEST(FiErrors, EveryCallReportsEveryErrnoExactlyWithAnObserver) {
  for (Op op : kOps)
    for (const Errno& e : kErrnos) check_one(op, e, true);
}

// ---- EINTR before and after partial results --------------------------------------------

TEST(FiErrors, WaitForKeepsEventsReapedBeforeAnEintr) {
  auto c = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(c);
  Requests b = Requests::file_reads(8);
  ASSERT_EQ(aio::submit_all(*c, b.batch(0, 3)).submitted, 3U);
  // EINTR with nothing yet, one event, EINTR after it, one more, EINTR, then the rest.
  int call = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    switch (call++) {
      case 0: return -EINTR;
      case 1: a.nr = 1; a.min_nr = 1; return fi::passthrough(a);
      case 2: return -EINTR;
      case 3: a.nr = 1; a.min_nr = 1; return fi::passthrough(a);
      case 4: return -EINTR;
      default: return fi::passthrough(a);
    }
  });
  std::array<io_event, 8> evs{};
  auto n = aio::wait_for(*c, 3, evs, 5s);
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 3U);
  EXPECT_EQ(call, 6);
  int seen[3] = {};
  for (std::size_t i = 0; i < 3; ++i) {
    ASSERT_LT(aio::user_data(evs[i]), 3U);
    ++seen[aio::user_data(evs[i])];
  }
  for (int s : seen) EXPECT_EQ(s, 1);
}

// With no deadline, a short return (a signal after some events were copied) makes
// wait_until go on for the rest; min_nr 0 returns at once with what is ready.
TEST(FiErrors, WaitWithoutDeadlineGoesOnAfterAShortReturn) {
  auto c = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(c);
  Requests b = Requests::file_reads(8);
  ASSERT_EQ(aio::submit_all(*c, b.batch(0, 2)).submitted, 2U);
  int call = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::getevents) return fi::passthrough(a);
    if (call++ == 0) {
      a.nr = 1;
      a.min_nr = 1;
    }
    return fi::passthrough(a);
  });
  std::array<io_event, 4> evs{};
  auto n = aio::wait_until(*c, 2, evs, std::chrono::steady_clock::time_point::max());
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 2U);
  EXPECT_EQ(call, 2);
  auto zero = aio::wait_for(*c, 0, evs, 1s);
  ASSERT_TRUE(zero);
  EXPECT_EQ(*zero, 0U);
}

// ---- io_pgetevents refused: ENOSYS (kernel < 4.18) and EPERM (seccomp) ----------------

// What Context::pgetevents() does then is in test_fault_injection (the fallback) and in
// the table above (the refusal with a mask).
TEST(FiErrors, PgeteventsRefusedIsReportedByProbe) {
  for (const Errno e : {Errno{ENOSYS, std::errc::function_not_supported},
                        Errno{EPERM, std::errc::operation_not_permitted}}) {
    SCOPED_TRACE(e.err);
    ScopedHook hook([&](fi::Args& a) -> long { return a.call == Call::pgetevents ? -e.err : fi::passthrough(a); });
    const aio::Capabilities caps = aio::probe();
    EXPECT_TRUE(caps.aio_available());
    EXPECT_EQ(caps.pgetevents, e.errc);
    EXPECT_FALSE(caps.poll) << "poll does not need io_pgetevents";
  }
}

// ---- Observed reaping: every kind of call is recorded with its arguments ---------------

// io_pgetevents with a mask works here (not under valgrind, which does not implement it).
bool real_pgetevents() {
  auto c = aio::Context::create(1, aio::ReapMode::syscall);
  sigset_t mask;
  sigemptyset(&mask);
  std::array<io_event, 1> ev{};
  return c && c->pgetevents(0, ev, 0ns, &mask).has_value();
}
constexpr const char* no_pgetevents = "io_pgetevents is not available here (valgrind does not implement it)";

TEST(FiErrors, ObservedReapsRecordKindMaskAndFallback) {
  if (!real_pgetevents()) GTEST_SKIP() << no_pgetevents;
  aio::Observer obs(16);  // latency tracking on
  auto c = aio::Context::create(8, aio::ReapMode::syscall, &obs);
  ASSERT_TRUE(c);
  Requests b = Requests::file_reads(8);
  std::array<io_event, 4> evs{};
  sigset_t mask;
  sigemptyset(&mask);
  ASSERT_TRUE(submit_one(*c, b.cbs[0]));
  auto n = c->pgetevents(1, evs, 1s, &mask);
  ASSERT_TRUE(n);
  ASSERT_TRUE(submit_one(*c, b.cbs[1]));
  n = c->pgetevents(1, evs, 1s, nullptr);
  ASSERT_TRUE(n);
  {
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::pgetevents ? -ENOSYS : fi::passthrough(a); });
    ASSERT_TRUE(submit_one(*c, b.cbs[2]));
    n = c->pgetevents(1, evs, 1s, nullptr);
    ASSERT_TRUE(n);
    EXPECT_EQ(*n, 1U);
  }
  n = c->getevents(0, evs, std::nullopt);
  ASSERT_TRUE(n);
  EXPECT_EQ(obs.syscalls(aio::Syscall::pgetevents), 3U);
  EXPECT_EQ(obs.syscalls(aio::Syscall::getevents), 2U) << "the fallback and the plain call";
  EXPECT_EQ(obs.errors(ENOSYS), 1U);
  EXPECT_EQ(obs.events_via_syscall(), 3U);
  EXPECT_EQ(obs.latency().count, 3U);

  // An observer without latency tracking still counts accepted requests.
  aio::Observer plain;
  auto d = aio::Context::create(8, aio::ReapMode::syscall, &plain);
  ASSERT_TRUE(d);
  ASSERT_TRUE(submit_one(*d, b.cbs[3]));
  EXPECT_EQ(reap(*d, 1).size(), 1U);
  EXPECT_EQ(plain.requests_submitted(), 1U);
  EXPECT_EQ(plain.latency().count, 0U);

  // A submit that accepted nothing records no submit time.
  ScopedHook none([](fi::Args& a) -> long { return a.call == Call::submit ? 0 : fi::passthrough(a); });
  auto z = c->submit(b.batch(0, 1));
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, 0U);
  EXPECT_EQ(obs.requests_submitted(), 3U);
}

// ---- Arguments the wrapper handles itself ------------------------------------------------

// A batch longer than LONG_MAX cannot exist in memory, but the count handed to the kernel
// is clamped so the cast to long stays exact. The hook answers without touching the array.
TEST(FiErrors, SubmitClampsAHugeCountToLongMax) {
  auto c = aio::Context::create(8, aio::ReapMode::syscall);
  ASSERT_TRUE(c);
  long seen = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::submit) return fi::passthrough(a);
    seen = a.nr;
    return -EFAULT;
  });
  iocb* one = nullptr;
  const std::span<iocb* const> huge(&one, static_cast<std::size_t>(LONG_MAX) + 1U);
  auto n = c->submit(huge);
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::bad_address);
  EXPECT_EQ(seen, LONG_MAX);
}

// ---- The ring reader refuses a layout it does not know ---------------------------------

aio::detail::RingHeader* ring_of(const aio::Context& c) {
  return reinterpret_cast<aio::detail::RingHeader*>(static_cast<std::uintptr_t>(c.native_handle()));
}

// The kernel writes magic, header_length and incompat_features once at io_setup and never
// reads them back (fs/aio.c aio_setup_ring); a different value there must turn userspace
// reaping off at create() (then ready() answers 0 and reaping goes through the kernel).
TEST(FiErrors, UnknownRingLayoutAtSetupMeansSyscallReaping) {
  ScopedHook hook([](fi::Args& a) -> long {
    const long r = fi::passthrough(a);
    if (a.call == Call::setup && r == 0) {
      auto* ring = reinterpret_cast<aio::detail::RingHeader*>(static_cast<std::uintptr_t>(*a.ctxp));
      std::atomic_ref<std::uint32_t>(ring->incompat_features).store(1);
    }
    return r;
  });
  auto c = aio::Context::create(8, aio::ReapMode::automatic);
  ASSERT_TRUE(c);
  EXPECT_FALSE(c->ring_reaping());
  Requests b = Requests::file_reads(8);
  ASSERT_TRUE(submit_one(*c, b.cbs[0]));
  EXPECT_EQ(c->ready(), 0U) << "no ring, nothing counted";
  EXPECT_EQ(reap(*c, 1).size(), 1U);
  std::atomic_ref<std::uint32_t>(ring_of(*c)->incompat_features).store(0);
}

// A head out of range later (a corrupt or hostile ring) makes ready() answer 0 and reaping
// go to the kernel, which still delivers the completion.
TEST(FiErrors, CorruptRingHeadAfterSetupIsNotTrusted) {
  auto c = aio::Context::create(8, aio::ReapMode::automatic);
  ASSERT_TRUE(c);
  if (!c->ring_reaping()) GTEST_SKIP() << "userspace reaping is off here (AIOPP_REAP=syscall or valgrind)";
  Requests b = Requests::file_reads(8);
  ASSERT_TRUE(submit_one(*c, b.cbs[0]));
  aio::detail::RingHeader* ring = ring_of(*c);
  const std::uint32_t good = std::atomic_ref<std::uint32_t>(ring->magic).load();
  std::atomic_ref<std::uint32_t>(ring->magic).store(0);
  EXPECT_EQ(c->ready(), 0U);
  std::atomic_ref<std::uint32_t>(ring->magic).store(good);
  EXPECT_EQ(reap(*c, 1).size(), 1U);
}

// ---- probe() and probe_fd() through their error paths ----------------------------------

TEST(FiErrors, ProbeSubmitAndReapPaths) {
  TempDir dir;
  Fd fd = dir.make_file("f", "abc", O_RDONLY);
  ScopedEnv reap("AIOPP_REAP", "syscall");
  {
    // io_submit accepting nothing for a one-request batch: reported as EAGAIN.
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::submit ? 0 : fi::passthrough(a); });
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_EQ(fc->nowait_read, std::errc::resource_unavailable_try_again);
  }
  {
    // EINTR while waiting for the completion is retried.
    int eintrs = 0;
    ScopedHook hook([&](fi::Args& a) -> long {
      if (a.call == Call::getevents && eintrs < 3) {
        ++eintrs;
        return -EINTR;
      }
      return fi::passthrough(a);
    });
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_FALSE(fc->nowait_read);
    EXPECT_FALSE(fc->ioprio_best_effort);
    EXPECT_EQ(eintrs, 3);
  }
  {
    // EINTR every time: gives up after 100 tries, cancels, reports timed_out.
    ScopedHook hook([](fi::Args& a) -> long {
      return a.call == Call::getevents && a.timeout != nullptr ? -EINTR : fi::passthrough(a);
    });
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_EQ(fc->nowait_read, std::errc::timed_out);
  }
  {
    // Another error, or a completion that does not come: cancelled, timed_out.
    ScopedHook hook([](fi::Args& a) -> long {
      if (a.call == Call::getevents) return a.min_nr == 1 && a.timeout != nullptr ? -EBADF : 0;
      return fi::passthrough(a);
    });
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_EQ(fc->nowait_read, std::errc::timed_out);
  }
  {
    int calls = 0;
    ScopedHook hook([&](fi::Args& a) -> long {
      if (a.call == Call::getevents && calls++ < 1) return 0;  // the first wait times out empty
      return fi::passthrough(a);
    });
    auto fc = aio::probe_fd(fd.get());
    ASSERT_TRUE(fc);
    EXPECT_EQ(fc->nowait_read, std::errc::timed_out);
  }
}

TEST(FiErrors, ProbePollAndPgeteventsPaths) {
  ScopedEnv reap("AIOPP_REAP", "syscall");
  {
    // pgetevents: EINTR is retried; 100 in a row give up with interrupted.
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::pgetevents ? -EINTR : fi::passthrough(a); });
    EXPECT_EQ(aio::probe().pgetevents, std::errc::interrupted);
  }
  if (real_pgetevents()) {
    int n = 0;
    ScopedHook hook([&](fi::Args& a) -> long { return a.call == Call::pgetevents && n++ == 0 ? -EINTR : fi::passthrough(a); });
    EXPECT_FALSE(aio::probe().pgetevents);
  }
  {
    // The poll's completion wait: EINTR retried, other errors reported.
    int n = 0;
    ScopedHook hook([&](fi::Args& a) -> long { return a.call == Call::getevents && n++ == 0 ? -EINTR : fi::passthrough(a); });
    EXPECT_FALSE(aio::probe().poll);
    EXPECT_EQ(n, 2);
  }
  {
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::getevents ? -EBADF : fi::passthrough(a); });
    EXPECT_EQ(aio::probe().poll, std::errc::bad_file_descriptor);
  }
  {
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::getevents ? -EINTR : fi::passthrough(a); });
    EXPECT_EQ(aio::probe().poll, std::errc::interrupted) << "100 signals in a row: given up";
  }
  {
    // A poll completing with an error, or without POLLIN.
    ScopedHook hook([](fi::Args& a) -> long {
      const long r = fi::passthrough(a);
      if (a.call == Call::getevents && r == 1) a.events[0].res = -EINVAL;
      return r;
    });
    EXPECT_EQ(aio::probe().poll, std::errc::invalid_argument);
  }
  {
    ScopedHook hook([](fi::Args& a) -> long {
      const long r = fi::passthrough(a);
      if (a.call == Call::getevents && r == 1) a.events[0].res = POLLOUT;
      return r;
    });
    EXPECT_EQ(aio::probe().poll, std::errc::protocol_error);
  }
  {
    // io_destroy failing at the end is reported as the setup outcome.
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::destroy ? -EIO : fi::passthrough(a); });
    EXPECT_EQ(aio::probe().setup, std::errc::io_error);
  }
}

// With userspace reaping, probe() waits (up to a second) for the poll's completion to show
// in the ring. The hook points the poll at an empty pipe that a thread fills a little later.
TEST(FiErrors, ProbeWaitsForTheRingToShowThePoll) {
  ScopedEnv reap("AIOPP_REAP", nullptr);
  if (auto c = aio::Context::create(1); !c || !c->ring_reaping())
    GTEST_SKIP() << "userspace reaping is off here (valgrind: the kernel writes the ring behind its back)";
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::atomic<bool> submitted{false};
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit && a.iocbs[0]->aio_lio_opcode == IOCB_CMD_POLL) {
      a.iocbs[0]->aio_fildes = static_cast<std::uint32_t>(p.rd.get());
      submitted = true;
    }
    return fi::passthrough(a);
  });
  std::thread writer([&] {
    while (!submitted) std::this_thread::sleep_for(1ms);
    std::this_thread::sleep_for(20ms);
    EXPECT_EQ(::write(p.wr.get(), "x", 1), 1);
  });
  const aio::Capabilities caps = aio::probe();
  writer.join();
  EXPECT_FALSE(caps.poll) << caps.poll.message();
  EXPECT_TRUE(caps.ring_reaping);
}

// A poll that never completes: the ring wait gives up after a second, then the reap does,
// and the poll is cancelled (only polls can be: fs/aio.c aio_poll_cancel).
TEST(FiErrors, ProbeRingWaitGivesUpOnAPollThatNeverCompletes) {
  ScopedEnv reap("AIOPP_REAP", nullptr);
  Pipe p;
  ASSERT_TRUE(p.ok());
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::submit && a.iocbs[0]->aio_lio_opcode == IOCB_CMD_POLL)
      a.iocbs[0]->aio_fildes = static_cast<std::uint32_t>(p.rd.get());
    return fi::passthrough(a);
  });
  const aio::Capabilities caps = aio::probe();
  EXPECT_EQ(caps.poll, std::errc::timed_out);
  EXPECT_FALSE(caps.ring_reaping);
}

// ---- Resource limits: no fd left, no /proc --------------------------------------------

// RLIMIT_NOFILE 0: every new fd fails with EMFILE (open(2)). probe() cannot make its
// eventfd; system_limits() cannot open /proc; create_shrinking() then halves without it;
// aio_max_nr_advice() still says what to do. In a child: the limit must not leak.
TEST(FiErrors, NoFileDescriptorsLeft) {
  const int rc = run_in_child([]() -> int {
    // The same calls once with fds to spare: UBSan's vptr check looks a type up the first
    // time through a pipe() (its readable-memory probe), which fails without fds and would
    // be reported as an invalid vptr. Afterwards the answer is cached.
    (void)aio::probe();
    (void)aio::system_limits();
    (void)aio::aio_max_nr_advice(64);
    volatile bool warm = std::error_code(EBADF, std::system_category()) == std::errc::resource_unavailable_try_again;
    (void)warm;  // both categories' equivalent(): the comparison is false, so both are asked
    struct rlimit old {};
    ::getrlimit(RLIMIT_NOFILE, &old);
    struct rlimit none = old;
    none.rlim_cur = 0;
    AIOTEST_CHILD_CHECK(::setrlimit(RLIMIT_NOFILE, &none) == 0, 2);
    const aio::Capabilities caps = aio::probe();
    const auto limits = aio::system_limits();
    const std::string advice = aio::aio_max_nr_advice(64);
    std::vector<unsigned> sizes;
    aio::Result<aio::Context> shrunk;
    {
      ScopedHook hook([&](fi::Args& a) -> long {
        if (a.call != Call::setup) return fi::passthrough(a);
        sizes.push_back(static_cast<unsigned>(a.nr));
        return a.nr > 16 ? -EAGAIN : fi::passthrough(a);
      });
      shrunk = aio::create_shrinking(128, 4);
    }
    ::setrlimit(RLIMIT_NOFILE, &old);
    AIOTEST_CHILD_CHECK(!caps.setup, 3);
    AIOTEST_CHILD_CHECK(caps.poll == std::errc::too_many_files_open, 4);
    AIOTEST_CHILD_CHECK(!limits && limits.error() == std::errc::too_many_files_open, 5);
    AIOTEST_CHILD_CHECK(advice.starts_with("io_setup(64) needs 64 free AIO slots; raise fs.aio-max-nr by at least 64"), 6);
    AIOTEST_CHILD_CHECK(advice.find("unreadable") != std::string::npos, 6);
    AIOTEST_CHILD_CHECK(shrunk.has_value() && shrunk->max_events() == 16, 7);
    AIOTEST_CHILD_CHECK((sizes == std::vector<unsigned>{128, 64, 32, 16}), 8);
    return 0;
  });
  EXPECT_EQ(rc, 0);
}

// /proc/sys/fs/aio-nr and aio-max-nr replaced (bind mounts in a private mount namespace of
// a child) by files system_limits() must refuse: not a number, a read error, a value with
// trailing padding that fills its buffer.
TEST(FiErrors, SystemLimitsRefusesWhatIsNotANumber) {
  if (::geteuid() != 0) GTEST_SKIP() << "bind mounts over /proc need CAP_SYS_ADMIN";
  TempDir dir;
  ASSERT_TRUE(dir.make_file("garbage", "many\n").ok());
  ASSERT_TRUE(dir.make_file("padded", "7" + std::string(40, ' ')).ok());
  ASSERT_TRUE(dir.make_file("big", "1000\n").ok());
  const std::string d = dir.file("");  // the directory, with a trailing slash
  const int rc = run_in_child([&]() -> int {
    if (::unshare(CLONE_NEWNS) != 0) return 77;
    AIOTEST_CHILD_CHECK(::mount("none", "/", "none", MS_REC | MS_PRIVATE, nullptr) == 0, 2);
    auto bind = [](const std::string& from, const char* to) {
      return ::mount(from.c_str(), to, "none", MS_BIND, nullptr) == 0;  // type ignored
    };
    AIOTEST_CHILD_CHECK(bind(d + "garbage", "/proc/sys/fs/aio-nr"), 3);
    auto r = aio::system_limits();
    AIOTEST_CHILD_CHECK(!r && r.error() == std::errc::invalid_argument, 4);
    AIOTEST_CHILD_CHECK(::umount("/proc/sys/fs/aio-nr") == 0, 5);
    // aio-nr fine (and padded to more than the 32-byte buffer), aio-max-nr unreadable:
    // /proc/self/mem read at offset 0 fails (EIO: nothing is mapped at address 0).
    AIOTEST_CHILD_CHECK(bind(d + "padded", "/proc/sys/fs/aio-nr"), 6);
    AIOTEST_CHILD_CHECK(bind("/proc/self/mem", "/proc/sys/fs/aio-max-nr"), 7);
    r = aio::system_limits();
    AIOTEST_CHILD_CHECK(!r && r.error() == std::errc::io_error, 8);
    AIOTEST_CHILD_CHECK(::umount("/proc/sys/fs/aio-max-nr") == 0, 9);
    AIOTEST_CHILD_CHECK(bind(d + "big", "/proc/sys/fs/aio-max-nr"), 10);
    r = aio::system_limits();
    AIOTEST_CHILD_CHECK(r && r->nr == 7 && r->max_nr == 1000, 11);

    // A signal while the read blocks (a FIFO here; /proc never blocks, but nothing says
    // a read cannot be interrupted): EINTR is retried, the number still read.
    AIOTEST_CHILD_CHECK(::umount("/proc/sys/fs/aio-nr") == 0, 12);
    const std::string fifo = d + "fifo";
    AIOTEST_CHILD_CHECK(::mkfifo(fifo.c_str(), 0600) == 0, 13);
    AIOTEST_CHILD_CHECK(bind(fifo, "/proc/sys/fs/aio-nr"), 14);
    struct sigaction sa {};
    sa.sa_handler = [](int) {};  // no SA_RESTART: a blocked read returns EINTR
    sigemptyset(&sa.sa_mask);
    AIOTEST_CHILD_CHECK(::sigaction(SIGUSR1, &sa, nullptr) == 0, 15);
    const pid_t reader = static_cast<pid_t>(::syscall(SYS_gettid));
    const pthread_t reader_thread = ::pthread_self();
    std::thread writer([&] {
      const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);  // waits for the reader's open
      // Wait until the reader is blocked in read(2) (syscall 0 in /proc/.../syscall).
      const std::string sys = "/proc/self/task/" + std::to_string(reader) + "/syscall";
      for (;;) {
        std::ifstream in(sys);
        long nr = -1;
        in >> nr;
        if (nr == SYS_read) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
      ::pthread_kill(reader_thread, SIGUSR1);
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      (void)!::write(w, "5\n", 2);
      ::close(w);
    });
    r = aio::system_limits();
    writer.join();
    AIOTEST_CHILD_CHECK(r && r->nr == 5 && r->max_nr == 1000, 16);
    return 0;
  });
  if (rc == 77) GTEST_SKIP() << "no mount namespace here (unshare(CLONE_NEWNS) refused)";
  EXPECT_EQ(rc, 0);
}

// ---- The seam itself -------------------------------------------------------------------

TEST(FiErrors, PassthroughOfAnUnknownCallIsEnosys) {
  fi::Args a{};
  a.call = static_cast<Call>(42);
  EXPECT_EQ(fi::passthrough(a), -ENOSYS);
}

}  // namespace
