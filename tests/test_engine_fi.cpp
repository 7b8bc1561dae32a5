// aio::Engine under fault injection (aiopp_fi): a full kernel ring (io_submit EAGAIN), a
// refusal at every position of a batch, EINTR while waiting, the cross-thread cancellation
// race, and a Context that cannot wait at shutdown.
#include <poll.h>

#include <algorithm>
#include <array>
#include <span>
#include <thread>
#include <vector>

#include "fi_hook.hpp"
#include "test_engine_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;

aio::Engine make_engine(aio::EngineOptions o = {}) {
  auto e = aio::Engine::create(o);
  EXPECT_TRUE(e) << e.error().message();
  return e ? std::move(*e) : aio::Engine{};
}

// Records the iocbs of every io_submit the kernel saw, in order.
struct SubmitLog {
  std::vector<const iocb*> seen;
  void record(const fi::Args& a, long accepted) {
    for (long i = 0; i < accepted; ++i) seen.push_back(a.iocbs[i]);
  }
};

TEST(EngineFi, SubmitEagainKeepsOpsQueuedAndAllComplete) {
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  constexpr std::size_t kOps = 10;
  auto e = make_engine({.queue_depth = 16});
  Log log(kOps);
  for (std::size_t i = 0; i < kOps; ++i) e.start(log.prepare(i, aio::make_poll(efd.get(), aio::PollEvents::in)));
  int submits = 0;
  SubmitLog sl;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::submit) return fi::passthrough(a);
    if (++submits <= 3) return -EAGAIN;  // the ring is full (of someone else's requests)
    const long r = fi::passthrough(a);
    sl.record(a, r);
    return r;
  });
  auto n = e.flush();
  ASSERT_TRUE(n) << "EAGAIN is not an error of flush()";
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(e.queued(), kOps);
  EXPECT_EQ(log.total_calls(), 0);
  ASSERT_TRUE(e.run());
  EXPECT_EQ(submits, 4);  // three refusals, with a backoff before each retry, then all in one
  ASSERT_EQ(sl.seen.size(), kOps);
  for (std::size_t i = 0; i < kOps; ++i) {
    EXPECT_EQ(sl.seen[i], &log.ops[i].cb) << "FIFO order";
    EXPECT_EQ(log.recs[i].calls, 1);
    EXPECT_TRUE(log.recs[i].last);
  }
}

// The kernel takes a prefix, then says "full" while requests of ours are in flight: the rest
// wait for completions (no backoff sleep needed), and go in in order.
TEST(EngineFi, RingFullWhileOwnRequestsInFlight) {
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  constexpr std::size_t kOps = 12;
  auto e = make_engine({.queue_depth = 16});
  Log log(kOps);
  for (std::size_t i = 0; i < kOps; ++i) e.start(log.prepare(i, aio::make_poll(efd.get(), aio::PollEvents::in)));
  SubmitLog sl;
  int submits = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call != Call::submit) return fi::passthrough(a);
    ++submits;
    if (submits % 2 == 0) return -EAGAIN;  // every other call: full
    a.nr = std::min(a.nr, 3L);             // the kernel takes at most 3 per call
    const long r = fi::passthrough(a);
    sl.record(a, r);
    return r;
  });
  ASSERT_TRUE(e.run());
  ASSERT_EQ(sl.seen.size(), kOps);
  for (std::size_t i = 0; i < kOps; ++i) {
    EXPECT_EQ(sl.seen[i], &log.ops[i].cb) << "FIFO order";
    EXPECT_EQ(log.recs[i].calls, 1);
  }
}

// io_submit accepts the prefix before request k and refuses k when it comes first, as the
// kernel does; for every k, op k alone gets the error and the others succeed.
TEST(EngineFi, RefusalAtEveryBatchPosition) {
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  constexpr std::size_t kOps = 6;
  for (const int err : {EBADF, EINVAL, EFAULT, EOPNOTSUPP}) {
    for (std::size_t k = 0; k < kOps; ++k) {
      aio::Observer obs;
      auto e = make_engine({.queue_depth = 8, .observer = &obs});
      Log log(kOps);
      for (std::size_t i = 0; i < kOps; ++i) e.start(log.prepare(i, aio::make_poll(efd.get(), aio::PollEvents::in)));
      const iocb* bad = &log.ops[k].cb;
      ScopedHook hook([&](fi::Args& a) -> long {
        if (a.call != Call::submit) return fi::passthrough(a);
        for (long i = 0; i < a.nr; ++i) {
          if (a.iocbs[i] != bad) continue;
          if (i == 0) return -err;
          a.nr = i;
          break;
        }
        return fi::passthrough(a);
      });
      auto n = e.flush();
      ASSERT_TRUE(n) << "a refused op does not fail flush()";
      EXPECT_EQ(*n, kOps - 1) << "err " << err << " k " << k;
      EXPECT_EQ(e.queued(), 0U);
      ASSERT_TRUE(e.run());
      for (std::size_t i = 0; i < kOps; ++i) {
        ASSERT_EQ(log.recs[i].calls, 1) << "err " << err << " k " << k << " i " << i;
        if (i == k) {
          ASSERT_FALSE(log.recs[i].last);
          EXPECT_EQ(log.recs[i].last.error().value(), err);
        } else {
          EXPECT_TRUE(log.recs[i].last) << "err " << err << " k " << k << " i " << i;
        }
      }
      EXPECT_EQ(obs.errors(err), 1U) << "an attached observer sees the refusal";
    }
  }
}

TEST(EngineFi, EintrWhileWaitingIsReportedAndNothingIsLost) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  int waits = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if ((a.call == Call::getevents || a.call == Call::pgetevents) && a.min_nr > 0 && waits++ == 0) return -EINTR;
    return fi::passthrough(a);
  });
  auto n = e.run_once();
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::interrupted);
  EXPECT_EQ(e.in_flight(), 1U);
  EXPECT_EQ(log.total_calls(), 0);
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  n = e.run_once();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(log.recs[0].calls, 1);
}

TEST(EngineFi, RunRetriesEintr) {
  auto e = make_engine({.queue_depth = 4});
  Fd efd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(efd.get(), aio::PollEvents::in)));
  int waits = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if ((a.call == Call::getevents || a.call == Call::pgetevents) && a.min_nr > 0 && ++waits <= 3) {
      if (waits == 3) {
        const std::uint64_t one = 1;
        (void)!::write(efd.get(), &one, sizeof one);  // ready from now on
      }
      return -EINTR;
    }
    return fi::passthrough(a);
  });
  ASSERT_TRUE(e.run());
  EXPECT_GE(waits, 3);
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_TRUE(log.recs[0].last);
}

// A stop request from another thread that lands while the owner is inside io_submit with
// that poll: the other thread's io_cancel finds nothing in flight yet, so flush() must see
// the flag after its submit and cancel the poll itself.
TEST(EngineFi, CancelRequestRacingTheSubmitIsNotLost) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  int cancels = 0;
  bool raced = false;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::cancel) ++cancels;
    if (a.call == Call::submit && !raced) {
      raced = true;
      // While "inside" io_submit: the other thread asks and its io_cancel fails.
      std::thread t([&] { e.request_cancel(log.ops[0]); });
      t.join();
    }
    return fi::passthrough(a);
  });
  ASSERT_EQ(e.flush().value_or(0), 1U);
  EXPECT_EQ(cancels, 2) << "the other thread's (too early) and flush()'s own";
  ASSERT_TRUE(run_until(e, log, 1, 10));
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
}

// A request_cancel() that flush() has already taken into account (after a batch the kernel
// took only partly) still cancels the op it named when that op is submitted later: it
// completes operation_canceled without reaching the kernel.
TEST(EngineFi, CancelRequestSeenBeforeTheOpsSubmitIsNotLost) {
  Pipe p;
  Log log(2);
  auto e = make_engine({.queue_depth = 4});  // destroyed first: op 0 completes at its shutdown
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  e.start(log.prepare(1, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  int cancels = 0;
  int submitted = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::cancel) ++cancels;
    if (a.call == Call::submit) {
      if (submitted == 0) {
        std::thread t([&] { e.request_cancel(log.ops[1]); });  // op 1 is still queued
        t.join();
        a.nr = 1;  // the kernel takes op 0 only
      }
      submitted += static_cast<int>(a.nr);
    }
    return fi::passthrough(a);
  });
  ASSERT_EQ(e.flush().value_or(0), 1U);
  EXPECT_EQ(submitted, 1) << "op 1 was completed, not submitted";
  EXPECT_EQ(cancels, 1) << "only the other thread's (too early) io_cancel";
  EXPECT_EQ(e.in_flight(), 1U);
  ASSERT_TRUE(run_until(e, log, 1, 10));
  EXPECT_EQ(log.recs[1].calls, 1);
  EXPECT_EQ(log.recs[1].last.error(), std::errc::operation_canceled);
  EXPECT_EQ(log.recs[0].calls, 0) << "op 0 is still waiting for its fd";
}

// A request_cancel() of an in-flight poll cancels that poll only: later batches (a poll with
// a read, then a poll alone) are submitted and complete normally, with no further io_cancel.
TEST(EngineFi, CancelRequestCancelsOnlyItsOwnPoll) {
  Pipe p;
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  DataFile f(1);
  std::array<std::byte, 4096> buf{};
  Log log(4);
  auto e = make_engine({.queue_depth = 4});
  int cancels = 0;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (a.call == Call::cancel) ++cancels;
    return fi::passthrough(a);
  });
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  std::thread t([&] { e.request_cancel(log.ops[0]); });
  t.join();
  EXPECT_EQ(cancels, 1);
  e.start(log.prepare(1, aio::make_poll(efd.get(), aio::PollEvents::in)));
  e.start(log.prepare(2, aio::make_pread(f.get(), std::span<std::byte>(buf), 0)));
  ASSERT_EQ(e.flush().value_or(0), 2U);
  e.start(log.prepare(3, aio::make_poll(efd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  ASSERT_TRUE(run_until(e, log, 4, 10));
  EXPECT_EQ(cancels, 1) << "no io_cancel for the later requests";
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
  for (const std::size_t i : {1U, 3U}) {
    ASSERT_TRUE(log.recs[i].last) << i;
    EXPECT_NE(*log.recs[i].last & POLLIN, 0U) << i;
  }
  ASSERT_TRUE(log.recs[2].last);
  EXPECT_EQ(*log.recs[2].last, buf.size());
}

// When the Context cannot wait at shutdown (here: every wait fails with EINVAL, as after
// fork()), in-flight requests still complete exactly once, with operation_canceled.
TEST(EngineFi, ShutdownWhenWaitingFails) {
  Pipe p;
  Log log(2);
  bool armed = false;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (armed && (a.call == Call::getevents || a.call == Call::pgetevents)) return -EINVAL;
    if (armed && a.call == Call::cancel) return -EINVAL;  // and the polls cannot be cancelled
    return fi::passthrough(a);
  });
  {
    auto e = make_engine({.queue_depth = 4});
    e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
    e.start(log.prepare(1, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
    ASSERT_EQ(e.flush().value_or(0), 2U);
    armed = true;
    // ~Engine: io_destroy (not hooked away) still cancels the real polls.
  }
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[1].calls, 1);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
  EXPECT_EQ(log.recs[1].last.error(), std::errc::operation_canceled);
}

}  // namespace

TEST(EngineFi, CreateReportsTheIoSetupError) {
  ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::setup ? -EAGAIN : fi::passthrough(a); });
  auto e = aio::Engine::create({.queue_depth = 4});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::resource_unavailable_try_again);
}

// io_submit interrupted, or taking nothing without an error: the ops stay queued, nothing fails.
TEST(EngineFi, SubmitInterruptedOrTakingNothingKeepsTheOpQueued) {
  for (const long answer : {-static_cast<long>(EINTR), 0L}) {
    auto e = make_engine({.queue_depth = 4});
    Fd efd = make_eventfd(1);  // polls ready at once
    Log log(1);
    e.start(log.prepare(0, aio::make_poll(efd.get(), aio::PollEvents::in)));
    int submits = 0;
    {
      ScopedHook hook([&](fi::Args& a) -> long {
        if (a.call == Call::submit && submits++ == 0) return answer;
        return fi::passthrough(a);
      });
      auto n = e.flush();
      ASSERT_TRUE(n) << answer;
      EXPECT_EQ(*n, 0U) << answer;
      EXPECT_EQ(e.queued(), 1U) << answer;
      EXPECT_EQ(log.total_calls(), 0) << answer;
    }
    ASSERT_TRUE(e.run()) << answer;
    EXPECT_EQ(log.recs[0].calls, 1) << answer;
    ASSERT_TRUE(log.recs[0].last) << answer;
  }
}

TEST(EngineFi, AnOpWithoutACallbackCompletesSilently) {
  auto e = make_engine({.queue_depth = 4});
  Fd efd = make_eventfd(1);
  aio::Op op{.cb = aio::make_poll(efd.get(), aio::PollEvents::in)};
  e.start(op);
  ASSERT_TRUE(e.run());
  EXPECT_EQ(e.in_flight(), 0U);
  EXPECT_EQ(e.queued(), 0U);
}

// A completion whose res is below -4095 is no errno: the op sees EIO.
TEST(EngineFi, ResultOutsideTheErrnoRangeIsEio) {
  auto e = make_engine({.queue_depth = 4, .reap = aio::ReapMode::syscall});
  Fd efd = make_eventfd(1);
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(efd.get(), aio::PollEvents::in)));
  ScopedHook hook([](fi::Args& a) -> long {
    const long r = fi::passthrough(a);
    if ((a.call == Call::getevents || a.call == Call::pgetevents) && r > 0) a.events[0].res = -5000;
    return r;
  });
  ASSERT_TRUE(e.run());
  ASSERT_EQ(log.recs[0].calls, 1);
  ASSERT_FALSE(log.recs[0].last);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::io_error);
}

TEST(EngineFi, SelfMoveAssignmentKeepsTheEngine) {
  auto e = make_engine({.queue_depth = 4});
  aio::Engine& same = e;
  e = std::move(same);
  EXPECT_NE(e.context().native_handle(), 0U);
  Fd efd = make_eventfd(1);
  aio::Op op{.cb = aio::make_poll(efd.get(), aio::PollEvents::in)};
  e.start(op);
  ASSERT_TRUE(e.run());
}

// A failing reap: reported when nothing ran, else the completions that ran are counted; a
// refused request (bad fd) is one that runs without the kernel.
TEST(EngineFi, ReapFailureIsReportedOnlyWhenNothingRan) {
  auto e = make_engine({.queue_depth = 4, .reap = aio::ReapMode::syscall});
  Pipe p;  // never written: its poll stays in flight
  Log log(3);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  bool armed = true;
  ScopedHook hook([&](fi::Args& a) -> long {
    if (armed && (a.call == Call::getevents || a.call == Call::pgetevents)) return -EIO;
    return fi::passthrough(a);
  });
  auto n = e.run_ready();
  ASSERT_FALSE(n);
  EXPECT_EQ(n.error(), std::errc::io_error);
  auto r = e.run();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::io_error);

  e.start(log.prepare(1, aio::make_pread(-1, std::span<std::byte>(), 0)));  // refused: EBADF
  n = e.run_ready();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(log.recs[1].last.error(), std::errc::bad_file_descriptor);
  e.start(log.prepare(2, aio::make_pread(-1, std::span<std::byte>(), 0)));
  n = e.run_once(std::chrono::milliseconds(10));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  armed = false;
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  ASSERT_TRUE(e.run());
  EXPECT_EQ(log.recs[0].calls, 1);
}

// io_submit taking nothing while none of the Engine's requests is in flight: run_once backs
// off no longer than its timeout (a zero timeout: not at all) and the op stays queued.
TEST(EngineFi, BackoffIsBoundedByTheTimeout) {
  auto e = make_engine({.queue_depth = 4});
  Fd efd = make_eventfd(1);
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(efd.get(), aio::PollEvents::in)));
  {
    ScopedHook hook([](fi::Args& a) -> long { return a.call == Call::submit ? 0 : fi::passthrough(a); });
    for (const auto t : {std::chrono::nanoseconds(0), std::chrono::nanoseconds(std::chrono::microseconds(20))}) {
      auto n = e.run_once(t);
      ASSERT_TRUE(n) << n.error().message();
      EXPECT_EQ(*n, 0U);
      EXPECT_EQ(e.queued(), 1U);
    }
  }
  ASSERT_TRUE(e.run());
  EXPECT_EQ(log.recs[0].calls, 1);
}
