// aio::Engine against the real kernel: exactly-once completions, backpressure, error
// attribution, cancellation, shutdown, notify_fd with an epoll loop, batching.
#include <sys/epoll.h>
#include <sys/mman.h>

#include <array>
#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "test_engine_util.hpp"

namespace {

using namespace aiotest;

aio::Engine make_engine(aio::EngineOptions o = {}) {
  auto e = aio::Engine::create(o);
  EXPECT_TRUE(e) << e.error().message();
  return e ? std::move(*e) : aio::Engine{};
}

// ---- Creation, moving, accessors ------------------------------------------------------------

TEST(Engine, CreateAndAccessors) {
  auto e = make_engine({.queue_depth = 16});
  ASSERT_TRUE(e.context().valid());
  EXPECT_EQ(e.queue_depth(), 16U);
  EXPECT_GE(e.context().max_events(), 16U);
  EXPECT_EQ(e.notify_fd(), -1);
  EXPECT_EQ(e.queued(), 0U);
  EXPECT_EQ(e.in_flight(), 0U);
  EXPECT_TRUE(e.idle());
  auto n = e.run_ready();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_TRUE(e.run());
}

TEST(Engine, QueueDepthZeroIsRefused) {
  auto e = aio::Engine::create({.queue_depth = 0});
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::invalid_argument);
}

TEST(Engine, MovedFromIsEmpty) {
  auto a = make_engine({.queue_depth = 8, .notify_fd = true});
  const int efd = a.notify_fd();
  ASSERT_GE(efd, 0);
  aio::Engine b(std::move(a));
  EXPECT_EQ(b.notify_fd(), efd);
  EXPECT_EQ(b.queue_depth(), 8U);
  EXPECT_EQ(a.notify_fd(), -1);  // NOLINT(bugprone-use-after-move): moved-from is empty, by contract
  EXPECT_EQ(a.queue_depth(), 0U);
  EXPECT_FALSE(a.context().valid());
  EXPECT_EQ(a.flush().error(), std::errc::invalid_argument);
  EXPECT_EQ(a.run_ready().error(), std::errc::invalid_argument);
  EXPECT_EQ(a.run_once(std::chrono::milliseconds(0)).error(), std::errc::invalid_argument);
  EXPECT_EQ(a.run().error(), std::errc::invalid_argument);
  // The moved-to Engine works.
  DataFile f(1);
  std::array<std::byte, 64> buf{};
  Log log(1);
  b.start(log.prepare(0, aio::make_pread(f.get(), buf, 0)));
  ASSERT_TRUE(b.run());
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[0].last.value_or(0), 64U);
  // Move assignment over a live Engine.
  a = std::move(b);
  EXPECT_EQ(a.notify_fd(), efd);
  EXPECT_EQ(b.queue_depth(), 0U);  // NOLINT(bugprone-use-after-move)
}

TEST(Engine, OpIsAnAggregate) {
  static int hits = 0;
  aio::Op op{.cb = aio::make_fsync(0), .on_complete = [](aio::Op&, aio::Result<std::size_t>) noexcept { ++hits; }};
  EXPECT_FALSE(op.busy());
  EXPECT_EQ(op.user, nullptr);
  aio::Op copy = op;
  EXPECT_EQ(copy.on_complete, op.on_complete);
  EXPECT_FALSE(copy.busy());
}

// ---- Exactly once ---------------------------------------------------------------------------

TEST(Engine, EveryOpCompletesExactlyOnce) {
  constexpr std::size_t kReads = 1000;
  constexpr std::size_t kPolls = 200;
  DataFile f(64);
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));  // always readable
  ASSERT_TRUE(efd.ok());
  auto e = make_engine({.queue_depth = 32});
  Log log(kReads + kPolls);
  log.engine = &e;
  std::vector<std::array<std::byte, 512>> bufs(kReads);
  for (std::size_t i = 0; i < kReads; ++i) {
    const auto off = static_cast<std::int64_t>((i % 64) * 4096 + (i % 7) * 64);
    e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], off)));
  }
  for (std::size_t i = 0; i < kPolls; ++i) e.start(log.prepare(kReads + i, aio::make_poll(efd.get(), aio::PollEvents::in)));
  EXPECT_EQ(log.total_calls(), 0) << "on_complete ran inside start()";
  EXPECT_EQ(e.queued(), kReads + kPolls);
  ASSERT_TRUE(e.run());
  EXPECT_TRUE(e.idle());
  for (std::size_t i = 0; i < kReads; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1) << "op " << i;
    ASSERT_EQ(log.recs[i].last.value_or(0), 512U) << "op " << i;
    const auto off = (i % 64) * 4096 + (i % 7) * 64;
    ASSERT_EQ(std::memcmp(bufs[i].data(), f.content.data() + off, 512), 0) << "op " << i;
  }
  for (std::size_t i = kReads; i < kReads + kPolls; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1) << "poll " << i;
    ASSERT_TRUE(log.recs[i].last);
    EXPECT_NE(*log.recs[i].last & POLLIN, 0U);
  }
  EXPECT_LE(log.max_in_flight, 32U);
  // Nothing more ever runs.
  auto n = e.run_ready();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(log.total_calls(), static_cast<int>(kReads + kPolls));
}

TEST(Engine, FlushRunsNoCompletion) {
  DataFile f(1);
  auto e = make_engine({.queue_depth = 4});
  std::array<std::byte, 16> buf{};
  Log log(1);
  e.start(log.prepare(0, aio::make_pread(f.get(), buf, 0)));
  auto n = e.flush();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(log.recs[0].calls, 0);
  EXPECT_TRUE(log.ops[0].busy());
  EXPECT_EQ(e.in_flight(), 1U);
  auto r = e.run_once();
  ASSERT_TRUE(r);
  EXPECT_EQ(*r, 1U);
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_FALSE(log.ops[0].busy());
  EXPECT_EQ(e.in_flight(), 0U);
}

// ---- Backpressure ---------------------------------------------------------------------------

TEST(Engine, MoreOpsThanQueueDepthStayQueuedInFifoOrder) {
  constexpr std::size_t kOps = 100;
  DataFile f(kOps);
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 4, .observer = &obs});
  Log log(kOps);
  log.engine = &e;
  std::vector<std::array<std::byte, 64>> bufs(kOps);
  for (std::size_t i = 0; i < kOps; ++i)
    e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], static_cast<std::int64_t>(i * 4096))));
  EXPECT_EQ(e.queued(), kOps);
  auto n = e.flush();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 4U);
  EXPECT_EQ(e.in_flight(), 4U);
  EXPECT_EQ(e.queued(), kOps - 4);
  // A second flush has no free slot: no syscall.
  const auto submits = obs.syscalls(aio::Syscall::submit);
  auto again = e.flush();
  ASSERT_TRUE(again);
  EXPECT_EQ(*again, 0U);
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), submits);
  ASSERT_TRUE(e.run());
  for (std::size_t i = 0; i < kOps; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1);
    EXPECT_EQ(log.recs[i].order, static_cast<int>(i)) << "completions of page-cache reads follow submission order";
    EXPECT_EQ(std::memcmp(bufs[i].data(), f.content.data() + i * 4096, 64), 0);
  }
  EXPECT_LE(log.max_in_flight, 4U);
  // No io_submit batch was larger than the queue depth (buckets 8+ are empty).
  for (std::size_t b = 3; b < aio::Observer::batch_buckets; ++b) EXPECT_EQ(obs.batch_histogram(b), 0U) << b;
  EXPECT_EQ(obs.requests_submitted(), kOps);
}

// Fills the kernel ring with polls that are not the Engine's (submitted to context()
// directly): the Engine keeps its requests queued, neither errors nor spins, and submits
// them once the ring has room.
TEST(Engine, KernelRingFullOfForeignRequests) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  ASSERT_TRUE(p.ok());
  std::vector<iocb> foreign(4096);
  std::size_t in = 0;
  for (; in < foreign.size(); ++in) {
    foreign[in] = aio::make_poll(p.rd.get(), aio::PollEvents::in);
    aio::set_user_data(foreign[in], 7);  // not an Op: io_event::data != obj
    auto r = submit_one(e.context(), foreign[in]);
    if (!r) {
      ASSERT_EQ(r.error(), std::errc::resource_unavailable_try_again) << r.error().message();
      break;
    }
  }
  ASSERT_LT(in, foreign.size()) << "the kernel never refused: cannot fill the ring";
  DataFile f(4);
  std::array<std::array<std::byte, 32>, 4> bufs{};
  Log log(4);
  for (std::size_t i = 0; i < 4; ++i)
    e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], static_cast<std::int64_t>(i * 4096))));
  auto n = e.flush();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(e.queued(), 4U);
  auto r = e.run_once(std::chrono::milliseconds(5));  // backs off; no error
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(*r, 0U);
  EXPECT_EQ(log.total_calls(), 0);
  // Their owner cancels and reaps them: the ring has room again.
  for (std::size_t i = 0; i < in; ++i) EXPECT_TRUE(e.context().cancel(foreign[i]));
  EXPECT_EQ(reap(e.context(), in).size(), in);
  ASSERT_TRUE(e.run());
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(log.recs[i].calls, 1);
    EXPECT_EQ(log.recs[i].last.value_or(0), 32U);
  }
}

// Completions of requests submitted to context() directly are reaped and dropped by the
// Engine: they never reach an on_complete.
TEST(Engine, ForeignCompletionsAreNotMistakenForOps) {
  auto e = make_engine({.queue_depth = 8});
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  std::array<iocb, 3> foreign{};
  for (auto& cb : foreign) {
    cb = aio::make_poll(efd.get(), aio::PollEvents::in);
    aio::set_user_data(cb, 0);
    ASSERT_TRUE(submit_one(e.context(), cb));
  }
  Log log(2);
  e.start(log.prepare(0, aio::make_poll(efd.get(), aio::PollEvents::in)));
  e.start(log.prepare(1, aio::make_poll(efd.get(), aio::PollEvents::in)));
  ASSERT_TRUE(e.run());
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[1].calls, 1);
  EXPECT_TRUE(e.idle());
}

// A foreign completion does not end run_once()'s wait: without a timeout it waits on for
// one of the Engine's own; with one, for the rest of it.
TEST(Engine, ForeignCompletionsDoNotEndRunOnce) {
  auto e = make_engine({.queue_depth = 8});
  Pipe p;
  ASSERT_TRUE(p.ok());
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_TRUE(e.flush());
  std::array<iocb, 2> foreign{};
  for (auto& cb : foreign) {
    cb = aio::make_poll(efd.get(), aio::PollEvents::in);
    aio::set_user_data(cb, 0);
  }
  // Bounded: the foreign completion is dropped and the wait lasts the whole timeout.
  ASSERT_TRUE(submit_one(e.context(), foreign[0]));
  const auto t0 = std::chrono::steady_clock::now();
  auto n = e.run_once(std::chrono::milliseconds(100));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(95));
  EXPECT_EQ(log.recs[0].calls, 0);
  EXPECT_EQ(e.in_flight(), 1U);
  // Unbounded: a foreign completion, then the Engine's own 50 ms later; run_once() returns
  // with the latter.
  ASSERT_TRUE(submit_one(e.context(), foreign[1]));
  std::thread writer([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_EQ(::write(p.wr.get(), "x", 1), 1);
  });
  n = e.run_once();
  writer.join();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(log.recs[0].calls, 1);
  EXPECT_TRUE(e.idle());
}

// ---- Error attribution ----------------------------------------------------------------------

TEST(Engine, RefusedOpGetsTheKernelsErrorOthersGoOn) {
  constexpr std::size_t kOps = 8;
  DataFile f(kOps);
  const int bad_fd = [] {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ::close(fd);
    return fd;  // closed: EBADF
  }();
  for (std::size_t k = 0; k < kOps; ++k) {
    aio::Observer obs;
    auto e = make_engine({.queue_depth = 16, .observer = &obs});
    Log log(kOps);
    std::array<std::array<std::byte, 64>, kOps> bufs{};
    for (std::size_t i = 0; i < kOps; ++i)
      e.start(log.prepare(i, aio::make_pread(i == k ? bad_fd : f.get(), bufs[i], static_cast<std::int64_t>(i * 4096))));
    auto n = e.flush();
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, kOps - 1) << "k=" << k;
    EXPECT_EQ(log.total_calls(), 0) << "flush runs no completion";
    ASSERT_TRUE(e.run());
    for (std::size_t i = 0; i < kOps; ++i) {
      ASSERT_EQ(log.recs[i].calls, 1);
      if (i == k) {
        ASSERT_FALSE(log.recs[i].last) << "k=" << k;
        EXPECT_EQ(log.recs[i].last.error(), std::errc::bad_file_descriptor);
      } else {
        EXPECT_EQ(log.recs[i].last.value_or(0), 64U) << "k=" << k << " i=" << i;
      }
    }
    EXPECT_EQ(obs.errors(EBADF), 1U) << "the refusal came from io_submit";
  }
}

TEST(Engine, IoErrorInTheEventIsThatOpsError) {
  DataFile f(2);
  auto e = make_engine({.queue_depth = 4});
  void* ro = ::mmap(nullptr, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(ro, MAP_FAILED);
  std::array<std::byte, 64> good{};
  Log log(2);
  e.start(log.prepare(0, aio::make_pread(f.get(), std::span<std::byte>(static_cast<std::byte*>(ro), 64), 0)));
  e.start(log.prepare(1, aio::make_pread(f.get(), good, 0)));
  ASSERT_TRUE(e.run());
  ::munmap(ro, 4096);
  ASSERT_EQ(log.recs[0].calls, 1);
  ASSERT_FALSE(log.recs[0].last);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::bad_address);
  EXPECT_EQ(log.recs[1].last.value_or(0), 64U);
}

// ---- Batching -------------------------------------------------------------------------------

TEST(Engine, FlushOfACleanBatchIsOneSubmit) {
  constexpr std::size_t kOps = 16;
  DataFile f(kOps);
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 32, .observer = &obs});
  Log log(kOps);
  std::array<std::array<std::byte, 64>, kOps> bufs{};
  for (std::size_t i = 0; i < kOps; ++i)
    e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], static_cast<std::int64_t>(i * 4096))));
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), 0U) << "start() makes no syscall";
  auto n = e.flush();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, kOps);
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), 1U);
  EXPECT_EQ(obs.batch_histogram(4), 1U);  // one batch of 16
  ASSERT_TRUE(e.run());
  EXPECT_EQ(log.total_calls(), static_cast<int>(kOps));
}

TEST(Engine, RunReadyRunsEveryReadyCompletionInOneCall) {
  constexpr std::size_t kOps = 32;
  DataFile f(kOps);
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 64, .observer = &obs});
  Log log(kOps);
  std::array<std::array<std::byte, 64>, kOps> bufs{};
  for (std::size_t i = 0; i < kOps; ++i)
    e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], static_cast<std::int64_t>(i * 4096))));
  // Cached buffered reads complete inside io_submit: all are ready when run_ready reaps.
  auto n = e.run_ready();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, kOps);
  EXPECT_EQ(log.total_calls(), static_cast<int>(kOps));
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), 1U);
  if (e.context().ring_reaping()) {
    EXPECT_EQ(obs.syscalls(aio::Syscall::getevents) + obs.syscalls(aio::Syscall::pgetevents), 0U);
    EXPECT_EQ(obs.events_via_ring(), kOps);
  }
}

TEST(Engine, RunOnceReturnsZeroWhenNothingCompletesInTime) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  ASSERT_TRUE(p.ok());
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  auto n = e.run_once(std::chrono::milliseconds(20));
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(e.in_flight(), 1U);
  EXPECT_EQ(log.total_calls(), 0);
  ASSERT_TRUE(e.cancel(log.ops[0]));
  n = e.run_once(std::chrono::seconds(5));
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  ASSERT_FALSE(log.recs[0].last);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
}

TEST(Engine, RunOnceWithNothingToDoReturnsAtOnce) {
  auto e = make_engine({.queue_depth = 4});
  auto n = e.run_once();  // no timeout: would block forever if it waited
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 0U);
  EXPECT_EQ(e.run_once(std::chrono::nanoseconds(-1)).error(), std::errc::invalid_argument);
}

TEST(Engine, OpsStartedFromOnCompleteAreSubmittedBeforeRunReadyReturns) {
  DataFile f(8);
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 8, .observer = &obs});
  struct Chain {
    aio::Engine* e;
    int left;
    int runs = 0;
    std::array<std::byte, 64> buf{};
  } chain{&e, 50};
  aio::Op op{.cb = aio::make_pread(f.get(), chain.buf, 0),
             .on_complete = [](aio::Op& o, aio::Result<std::size_t> r) noexcept {
               auto* c = static_cast<Chain*>(o.user);
               ++c->runs;
               if (r && --c->left > 0) c->e->start(o);  // the same Op again
             },
             .user = &chain};
  e.start(op);
  int calls = 0;
  while (chain.left > 0 && calls < 200) {
    auto n = e.run_ready();
    ASSERT_TRUE(n) << n.error().message();
    ++calls;
    // Whatever on_complete started went in already: nothing is left queued.
    EXPECT_EQ(e.queued(), 0U);
  }
  EXPECT_EQ(chain.runs, 50);
  EXPECT_EQ(chain.left, 0);
  EXPECT_EQ(obs.syscalls(aio::Syscall::submit), 50U);
  EXPECT_TRUE(e.idle());
}

TEST(Engine, RunFromInsideOnCompleteIsRefused) {
  auto e = make_engine({.queue_depth = 4});
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  struct Ctx {
    aio::Engine* e;
    std::error_code ready, once, run;
    aio::Result<std::size_t> flushed{};
  } c{&e, {}, {}, {}};
  aio::Op op{.cb = aio::make_poll(efd.get(), aio::PollEvents::in),
             .on_complete = [](aio::Op& o, aio::Result<std::size_t>) noexcept {
               auto* x = static_cast<Ctx*>(o.user);
               x->ready = x->e->run_ready().error();
               x->once = x->e->run_once(std::chrono::milliseconds(0)).error();
               x->run = x->e->run().error();
               x->flushed = x->e->flush();  // allowed
             },
             .user = &c};
  e.start(op);
  ASSERT_TRUE(e.run());
  EXPECT_EQ(c.ready, std::errc::resource_deadlock_would_occur);
  EXPECT_EQ(c.once, std::errc::resource_deadlock_would_occur);
  EXPECT_EQ(c.run, std::errc::resource_deadlock_would_occur);
  EXPECT_TRUE(c.flushed);
}

// ---- Cancellation ---------------------------------------------------------------------------

TEST(Engine, CancelOfAQueuedOpCompletesItOnce) {
  DataFile f(1);
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 4, .observer = &obs});
  std::array<std::byte, 16> buf{};
  Log log(2);
  e.start(log.prepare(0, aio::make_pread(f.get(), buf, 0)));
  e.start(log.prepare(1, aio::make_pread(f.get(), buf, 0)));
  ASSERT_TRUE(e.cancel(log.ops[0]));
  EXPECT_EQ(e.queued(), 1U);
  EXPECT_EQ(log.recs[0].calls, 0) << "completes at the next run_*, not inside cancel()";
  EXPECT_EQ(e.cancel(log.ops[0]).error(), std::errc::invalid_argument) << "already completing";
  auto n = e.run_ready();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 2U);
  ASSERT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
  EXPECT_EQ(log.recs[1].last.value_or(0), 16U);
  EXPECT_EQ(obs.requests_submitted(), 1U) << "the cancelled op never reached the kernel";
  EXPECT_EQ(e.cancel(log.ops[0]).error(), std::errc::invalid_argument) << "not started";
  ASSERT_TRUE(e.run());
  EXPECT_EQ(log.recs[0].calls, 1);
}

TEST(Engine, CancelOfAnInFlightPollCompletesItCanceled) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  Log log(2);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  e.start(log.prepare(1, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 2U);
  ASSERT_TRUE(e.cancel(log.ops[0]));
  ASSERT_TRUE(run_until(e, log, 1));
  ASSERT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
  EXPECT_EQ(log.recs[1].calls, 0);
  // The other one still works.
  ASSERT_EQ(::write(p.wr.get(), "x", 1), 1);
  ASSERT_TRUE(run_until(e, log, 2));
  ASSERT_TRUE(log.recs[1].last);
  EXPECT_NE(*log.recs[1].last & POLLIN, 0U);
}

TEST(Engine, CancelOfInFlightFileIoFailsAndItCompletesNormally) {
  DataFile f(4);
  auto e = make_engine({.queue_depth = 4});
  std::array<std::byte, 4096> buf{};
  Log log(1);
  e.start(log.prepare(0, aio::make_pread(f.get(), buf, 4096)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  ASSERT_EQ(e.in_flight(), 1U);
  auto c = e.cancel(log.ops[0]);
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error(), std::errc::invalid_argument);
  ASSERT_TRUE(e.run());
  ASSERT_EQ(log.recs[0].calls, 1);
  EXPECT_EQ(log.recs[0].last.value_or(0), 4096U);
  EXPECT_EQ(std::memcmp(buf.data(), f.content.data() + 4096, 4096), 0);
}

TEST(Engine, RequestCancelFromAnotherThread) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  Log log(2);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  // Op 1 is still queued when the other thread asks.
  e.start(log.prepare(1, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  std::thread t([&] {
    e.request_cancel(log.ops[0]);
    e.request_cancel(log.ops[1]);
  });
  t.join();
  ASSERT_TRUE(run_until(e, log, 2));
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
  EXPECT_EQ(log.recs[1].last.error(), std::errc::operation_canceled);
  EXPECT_TRUE(e.idle());
}

TEST(Engine, RequestCancelWakesABlockedRunOnce) {
  auto e = make_engine({.queue_depth = 4});
  Pipe p;
  Log log(1);
  e.start(log.prepare(0, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  const pid_t tid = ::gettid();
  std::thread t([&] {
    wait_until_sleeping(tid);
    e.request_cancel(log.ops[0]);
  });
  auto n = e.run_once();  // blocks until the cancellation completes the poll
  t.join();
  ASSERT_TRUE(n) << n.error().message();
  EXPECT_EQ(*n, 1U);
  EXPECT_EQ(log.recs[0].last.error(), std::errc::operation_canceled);
}

// ---- Shutdown -------------------------------------------------------------------------------

TEST(Engine, DestructorCompletesEverythingOnce) {
  DataFile f(32);
  Pipe p;
  constexpr std::size_t kPolls = 3, kReads = 3, kQueued = 10;
  constexpr std::size_t kOps = kPolls + kReads + kQueued;
  Log log(kOps + 1);  // + one op started from a completion during shutdown
  std::vector<std::array<std::byte, 128>> bufs(kOps);
  struct Restart {
    aio::Engine* e = nullptr;
    Log* log = nullptr;
    int late_calls = 0;
    aio::Result<std::size_t> late{};
  } restart;
  {
    auto e = make_engine({.queue_depth = kPolls + kReads});
    restart.e = &e;
    restart.log = &log;
    for (std::size_t i = 0; i < kPolls; ++i) e.start(log.prepare(i, aio::make_poll(p.rd.get(), aio::PollEvents::in)));
    for (std::size_t i = kPolls; i < kOps; ++i)
      e.start(log.prepare(i, aio::make_pread(f.get(), bufs[i], static_cast<std::int64_t>(i * 1024))));
    ASSERT_EQ(e.flush().value_or(0), kPolls + kReads);
    EXPECT_EQ(e.queued(), kQueued);
    // The first queued op's completion starts one more op: during shutdown.
    aio::Op& first_queued = log.ops[kPolls + kReads];
    first_queued.user = &restart;
    first_queued.on_complete = [](aio::Op& o, aio::Result<std::size_t> r) noexcept {
      auto* rs = static_cast<Restart*>(o.user);
      Rec& rec = rs->log->recs[kPolls + kReads];
      ++rec.calls;
      rec.last = r;
      aio::Op& late = rs->log->ops[kOps];
      late.cb = aio::make_fsync(0);
      late.user = rs;
      late.on_complete = [](aio::Op& l, aio::Result<std::size_t> lr) noexcept {
        auto* x = static_cast<Restart*>(l.user);
        ++x->late_calls;
        x->late = lr;
      };
      rs->e->start(late);
    };
  }  // ~Engine
  for (std::size_t i = 0; i < kPolls; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1) << i;
    EXPECT_EQ(log.recs[i].last.error(), std::errc::operation_canceled) << i;
  }
  for (std::size_t i = kPolls; i < kPolls + kReads; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1) << i;
    EXPECT_EQ(log.recs[i].last.value_or(0), 128U) << "in-flight file I/O completes normally";
  }
  for (std::size_t i = kPolls + kReads; i < kOps; ++i) {
    ASSERT_EQ(log.recs[i].calls, 1) << i;
    EXPECT_EQ(log.recs[i].last.error(), std::errc::operation_canceled) << "queued: never submitted";
  }
  EXPECT_EQ(restart.late_calls, 1);
  EXPECT_EQ(restart.late.error(), std::errc::operation_canceled) << "started during shutdown";
}

// ---- notify_fd ------------------------------------------------------------------------------

TEST(Engine, NotifyModeSetsResfdOnEveryRequest) {
  auto e = make_engine({.queue_depth = 4, .notify_fd = true});
  ASSERT_GE(e.notify_fd(), 0);
  EXPECT_EQ(::fcntl(e.notify_fd(), F_GETFL) & O_NONBLOCK, O_NONBLOCK);
  EXPECT_EQ(::fcntl(e.notify_fd(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
  DataFile f(1);
  std::array<std::byte, 16> buf{};
  Log log(1);
  e.start(log.prepare(0, aio::make_pread(f.get(), buf, 0)));
  EXPECT_NE(log.ops[0].cb.aio_flags & IOCB_FLAG_RESFD, 0U);
  EXPECT_EQ(static_cast<int>(log.ops[0].cb.aio_resfd), e.notify_fd());
  EXPECT_EQ(log.ops[0].cb.aio_data, reinterpret_cast<std::uintptr_t>(&log.ops[0]));
  ASSERT_EQ(e.flush().value_or(0), 1U);
  pollfd pfd{e.notify_fd(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1) << "the completion signals the eventfd";
  auto n = e.run_ready();
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 1U);
  pfd.revents = 0;
  EXPECT_EQ(::poll(&pfd, 1, 0), 0) << "run_ready drains the eventfd";
}

// An epoll loop that calls run_ready() only when the eventfd is readable runs every
// completion — including chains of ops started from completions, and more ops than the
// queue depth — and with ring reaping makes no io_getevents.
TEST(Engine, EpollLoopOnNotifyFdNeverStalls) {
  constexpr std::size_t kChains = 16;  // > queue depth: backpressure too
  constexpr int kLinks = 40;
  DataFile f(64);
  Fd ready_efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  aio::Observer obs;
  auto e = make_engine({.queue_depth = 8, .notify_fd = true, .observer = &obs});
  struct Chain {
    aio::Engine* e = nullptr;
    int fd = -1;
    int poll_fd = -1;
    int done = 0;
    std::array<std::byte, 64> buf{};
  };
  std::vector<Chain> chains(kChains);
  std::vector<aio::Op> ops(kChains);
  auto on_complete = [](aio::Op& o, aio::Result<std::size_t> r) noexcept {
    auto* c = static_cast<Chain*>(o.user);
    if (!r) return;
    if (++c->done == kLinks) return;
    // Alternate reads and ready polls.
    o.cb = (c->done % 2 == 0) ? aio::make_pread(c->fd, c->buf, static_cast<std::int64_t>((c->done % 64) * 4096))
                              : aio::make_poll(c->poll_fd, aio::PollEvents::in);
    c->e->start(o);
  };
  for (std::size_t i = 0; i < kChains; ++i) {
    chains[i] = Chain{&e, f.get(), ready_efd.get(), 0, {}};
    ops[i] = aio::Op{.cb = aio::make_pread(f.get(), chains[i].buf, 0), .on_complete = on_complete, .user = &chains[i]};
    e.start(ops[i]);
  }
  ASSERT_TRUE(e.flush());
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  ASSERT_TRUE(ep.ok());
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, e.notify_fd(), &ev), 0);
  auto all_done = [&] {
    for (const Chain& c : chains)
      if (c.done != kLinks) return false;
    return true;
  };
  int wakeups = 0;
  while (!all_done()) {
    epoll_event out{};
    const int n = ::epoll_wait(ep.get(), &out, 1, 5000);
    ASSERT_EQ(n, 1) << "stalled: the eventfd never became readable with work left";
    ++wakeups;
    auto r = e.run_ready();
    ASSERT_TRUE(r) << r.error().message();
  }
  EXPECT_TRUE(e.idle());
  EXPECT_GT(wakeups, 0);
  if (e.context().ring_reaping()) {
    EXPECT_EQ(obs.syscalls(aio::Syscall::getevents) + obs.syscalls(aio::Syscall::pgetevents), 0U);
  }
}

// Refusals made by the second flush of run_ready() are due at the next call: the eventfd is
// signalled for them, so an epoll loop comes back.
TEST(Engine, NotifySignalsForRefusalsLeftForTheNextCall) {
  auto e = make_engine({.queue_depth = 4, .notify_fd = true});
  Fd efd(::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC));
  struct State {
    aio::Engine* e;
    aio::Op second{};
    int first_calls = 0;
    int second_calls = 0;
    aio::Result<std::size_t> second_result{};
  } s{&e};
  s.second = aio::Op{.cb = aio::make_poll(-1, aio::PollEvents::in),  // EBADF at submit
                     .on_complete = [](aio::Op& o, aio::Result<std::size_t> r) noexcept {
                       auto* st = static_cast<State*>(o.user);
                       ++st->second_calls;
                       st->second_result = r;
                     },
                     .user = &s};
  aio::Op first{.cb = aio::make_poll(efd.get(), aio::PollEvents::in),
                .on_complete = [](aio::Op& o, aio::Result<std::size_t>) noexcept {
                  auto* st = static_cast<State*>(o.user);
                  ++st->first_calls;
                  st->e->start(st->second);
                },
                .user = &s};
  e.start(first);
  ASSERT_TRUE(e.flush());
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  epoll_event ev{};
  ev.events = EPOLLIN;
  ASSERT_EQ(::epoll_ctl(ep.get(), EPOLL_CTL_ADD, e.notify_fd(), &ev), 0);
  for (int i = 0; i < 10 && s.second_calls == 0; ++i) {
    epoll_event out{};
    ASSERT_EQ(::epoll_wait(ep.get(), &out, 1, 5000), 1) << "stalled";
    ASSERT_TRUE(e.run_ready());
  }
  EXPECT_EQ(s.first_calls, 1);
  EXPECT_EQ(s.second_calls, 1);
  EXPECT_EQ(s.second_result.error(), std::errc::bad_file_descriptor);
}

}  // namespace
