// Fault injection through the private syscall seam (aiopp_fi): how the typed layer maps
// every kernel answer, and exactly which arguments it hands the kernel.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <functional>
#include <vector>

#include "syscall_testing.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;
using aio::sys::testing::Args;

// What the hook saw, copied (the pointers in Args point into the library's stack frame).
struct Seen {
  Call call;
  aio_context_t ctx;
  long nr;
  long min_nr;
  iocb* const* iocbs;
  iocb* cb;
  bool has_timeout;
  aio::sys::KernelTimespec timeout;
  bool has_sig;
  const sigset_t* sigmask;
  std::size_t sigsetsize;
};

struct Recorder {
  std::vector<Seen> calls;
  std::function<long(Args&)> fn;  // empty: passthrough
  std::size_t count(Call c) const {
    std::size_t n = 0;
    for (const auto& s : calls) n += s.call == c;
    return n;
  }
};

long trampoline(Args& a, void* user) {
  auto* rec = static_cast<Recorder*>(user);
  Seen s{a.call, a.ctx, a.nr, a.min_nr, a.iocbs, a.cb, a.timeout != nullptr, {}, a.sig != nullptr, nullptr, 0};
  if (a.timeout != nullptr) s.timeout = *a.timeout;
  if (a.sig != nullptr) {
    s.sigmask = a.sig->sigmask;
    s.sigsetsize = a.sig->sigsetsize;
  }
  rec->calls.push_back(s);
  return rec->fn ? rec->fn(a) : aio::sys::testing::passthrough(a);
}

// Installs the recording hook for the test; TearDown removes it even if an assert failed.
class FaultInjection : public ::testing::Test {
 protected:
  void SetUp() override { aio::sys::testing::set_hook(&trampoline, &rec); }
  void TearDown() override { aio::sys::testing::set_hook(nullptr, nullptr); }

  // A Context that always enters the kernel to reap, so every getevents reaches the hook.
  aio::Context make_ctx(unsigned n = 8) {
    auto c = aio::Context::create(n, aio::ReapMode::syscall);
    EXPECT_TRUE(c) << c.error().message();
    rec.calls.clear();
    return c ? std::move(*c) : aio::Context{};
  }
  // Fails one call kind with -err; passes everything else through.
  void fail_call(Call which, int err) {
    rec.fn = [which, err](Args& a) -> long {
      return a.call == which ? -err : aio::sys::testing::passthrough(a);
    };
  }
  Recorder rec;
};

// ---- io_setup ---------------------------------------------------------------------------

TEST_F(FaultInjection, SetupErrnoBecomesTheError) {
  struct Case {
    int err;
    std::errc expected;
  };
  for (const Case c : {Case{EAGAIN, std::errc::resource_unavailable_try_again},
                       Case{ENOMEM, std::errc::not_enough_memory}, Case{ENOSYS, std::errc::function_not_supported},
                       Case{EPERM, std::errc::operation_not_permitted}, Case{EINVAL, std::errc::invalid_argument}}) {
    rec.calls.clear();
    fail_call(Call::setup, c.err);
    auto ctx = aio::Context::create(8);
    ASSERT_FALSE(ctx) << c.err;
    EXPECT_EQ(ctx.error(), c.expected);
    ASSERT_EQ(rec.calls.size(), 1u);
    EXPECT_EQ(rec.calls[0].call, Call::setup);
    EXPECT_EQ(rec.calls[0].nr, 8);
  }
}

TEST_F(FaultInjection, SetupPassesMaxEventsAsExactLong) {
  auto ctx = aio::Context::create(4000000u, aio::ReapMode::syscall);  // kernel says EAGAIN
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].nr, 4000000L);
  EXPECT_EQ(rec.calls[0].ctx, 0u);
  ASSERT_FALSE(ctx);
}

// ---- io_submit ---------------------------------------------------------------------------

TEST_F(FaultInjection, SubmitEagainAndEnomemAreReturned) {
  aio::Context ctx = make_ctx();
  Pipe p;
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  fail_call(Call::submit, EAGAIN);
  auto a = submit_one(ctx, cb);
  ASSERT_FALSE(a);
  EXPECT_EQ(a.error(), std::errc::resource_unavailable_try_again);
  fail_call(Call::submit, ENOMEM);
  auto m = submit_one(ctx, cb);
  ASSERT_FALSE(m);
  EXPECT_EQ(m.error(), std::errc::not_enough_memory);
  EXPECT_EQ(rec.count(Call::submit), 2u);
}

TEST_F(FaultInjection, SubmitPassesCountAndArrayExactly) {
  aio::Context ctx = make_ctx();
  rec.fn = [](Args& a) -> long { return a.call == Call::submit ? a.nr : aio::sys::testing::passthrough(a); };
  iocb cbs[3] = {};
  iocb* list[3] = {&cbs[0], &cbs[1], &cbs[2]};
  auto n = ctx.submit(list);
  ASSERT_TRUE(n);
  EXPECT_EQ(*n, 3u);
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].nr, 3L);
  EXPECT_EQ(rec.calls[0].iocbs, list);
  EXPECT_EQ(rec.calls[0].ctx, ctx.native_handle());
  rec.calls.clear();
  EXPECT_EQ(ctx.submit({}).value_or(99), 0u);
  EXPECT_TRUE(rec.calls.empty()) << "an empty batch must not reach the kernel";
}

// The kernel stops at the first request it cannot queue and returns how many it took; the
// hook forces that by handing the real kernel a shorter batch.
TEST_F(FaultInjection, PartialSubmitAtEveryPositionOfAFourRequestBatch) {
  TempDir dir;
  Fd fd = dir.make_file("f", pattern(64));
  ASSERT_TRUE(fd.ok());
  for (long accepted = 0; accepted <= 4; ++accepted) {
    aio::Context ctx = make_ctx();
    std::string bufs[4];
    iocb cbs[4];
    iocb* list[4];
    for (int i = 0; i < 4; ++i) {
      bufs[i].assign(16, '\0');
      cbs[i] = aio::make_pread(fd.get(), bytes(bufs[i]), i * 16);
      aio::set_user_data(cbs[i], static_cast<std::uint64_t>(i));
      list[i] = &cbs[i];
    }
    bool first = true;
    rec.fn = [&first, accepted](Args& a) -> long {
      if (a.call == Call::submit && first) {
        first = false;
        a.nr = accepted;
      }
      return aio::sys::testing::passthrough(a);
    };
    auto n = ctx.submit(list);
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, static_cast<std::size_t>(accepted));
    auto got = reap(ctx, static_cast<std::size_t>(accepted));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(accepted));
    // Resubmitting the rest completes the batch; each request completes exactly once.
    auto rest = ctx.submit(std::span<iocb* const>(list).subspan(*n));
    ASSERT_TRUE(rest);
    EXPECT_EQ(*rest, static_cast<std::size_t>(4 - accepted));
    auto more = reap(ctx, *rest);
    got.insert(got.end(), more.begin(), more.end());
    ASSERT_EQ(got.size(), 4u);
    int seen[4] = {};
    for (const auto& ev : got) {
      ++seen[aio::user_data(ev)];
      EXPECT_EQ(ev.res, 16);
    }
    for (int s : seen) EXPECT_EQ(s, 1) << "accepted=" << accepted;
    for (int i = 0; i < 4; ++i) EXPECT_EQ(bufs[i], pattern(64).substr(static_cast<std::size_t>(i) * 16, 16));
  }
}

// ---- io_getevents / io_pgetevents ------------------------------------------------------

TEST_F(FaultInjection, GeteventsEintrIsInterruptedAndNotRetried) {
  aio::Context ctx = make_ctx();
  fail_call(Call::getevents, EINTR);
  io_event ev[2];
  auto g = ctx.getevents(1, ev, 1s);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::interrupted);
  EXPECT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.count(Call::getevents), 1u);
}

TEST_F(FaultInjection, GeteventsEfaultIsBadAddress) {
  aio::Context ctx = make_ctx();
  fail_call(Call::getevents, EFAULT);
  io_event ev[2];
  auto g = ctx.getevents(0, ev, 0ns);
  ASSERT_FALSE(g);
  EXPECT_EQ(g.error(), std::errc::bad_address);
}

TEST_F(FaultInjection, GeteventsPassesMinNrAndNrAsExactLongs) {
  aio::Context ctx = make_ctx();
  rec.fn = [](Args& a) -> long { return a.call == Call::getevents || a.call == Call::pgetevents ? 0 : -ENOSYS; };
  std::vector<io_event> evs(100000);
  auto g = ctx.getevents(65537, evs, 0ns);
  ASSERT_TRUE(g);
  auto p = ctx.pgetevents(3, std::span(evs).first(7), 0ns, nullptr);
  ASSERT_TRUE(p);
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].call, Call::getevents);
  EXPECT_EQ(rec.calls[0].min_nr, 65537L);
  EXPECT_EQ(rec.calls[0].nr, 100000L);
  EXPECT_EQ(rec.calls[0].ctx, ctx.native_handle());
  EXPECT_EQ(rec.calls[1].call, Call::pgetevents);
  EXPECT_EQ(rec.calls[1].min_nr, 3L);
  EXPECT_EQ(rec.calls[1].nr, 7L);
}

TEST_F(FaultInjection, TimeoutsAreConvertedExactlyAndNulloptIsNull) {
  aio::Context ctx = make_ctx();
  rec.fn = [](Args&) -> long { return 0; };
  io_event ev[1];
  struct Case {
    aio::Timeout t;
    bool present;
    long long sec, nsec;
  };
  const Case cases[] = {
      {std::chrono::milliseconds(1500), true, 1, 500000000},
      {0ns, true, 0, 0},
      {999999999ns, true, 0, 999999999},
      {std::chrono::nanoseconds(3s) + 1ns, true, 3, 1},
      {std::chrono::hours(24 * 365), true, 31536000, 0},
      {std::nullopt, false, 0, 0},
  };
  for (int pg = 0; pg < 2; ++pg) {
    for (const Case& c : cases) {
      rec.calls.clear();
      auto r = pg ? ctx.pgetevents(0, ev, c.t, nullptr) : ctx.getevents(0, ev, c.t);
      ASSERT_TRUE(r);
      ASSERT_EQ(rec.calls.size(), 1u);
      EXPECT_EQ(rec.calls[0].has_timeout, c.present);
      if (c.present) {
        EXPECT_EQ(rec.calls[0].timeout.tv_sec, c.sec);
        EXPECT_EQ(rec.calls[0].timeout.tv_nsec, c.nsec);
      }
    }
  }
}

TEST_F(FaultInjection, PgeteventsPassesKernelSigsetSizeNotGlibcSize) {
  aio::Context ctx = make_ctx();
  rec.fn = [](Args&) -> long { return 0; };
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  io_event ev[1];
  ASSERT_TRUE(ctx.pgetevents(0, ev, 0ns, &mask));
  ASSERT_TRUE(ctx.pgetevents(0, ev, 0ns, nullptr));
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_TRUE(rec.calls[0].has_sig);
  EXPECT_EQ(rec.calls[0].sigmask, &mask);
  EXPECT_EQ(rec.calls[0].sigsetsize, 8u);
  EXPECT_EQ(rec.calls[0].sigsetsize, static_cast<std::size_t>(_NSIG / 8));
  EXPECT_NE(rec.calls[0].sigsetsize, sizeof(sigset_t));
  EXPECT_FALSE(rec.calls[1].has_sig) << "a null mask must pass a null __aio_sigset";
}

class PgeteventsRefused : public FaultInjection, public ::testing::WithParamInterface<int> {};

TEST_P(PgeteventsRefused, NullMaskFallsBackToGeteventsAndReturnsItsResult) {
  TempDir dir;
  Fd fd = dir.make_file("f", "fallback");
  ASSERT_TRUE(fd.ok());
  aio::Context ctx = make_ctx();
  std::string buf(8, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  ASSERT_TRUE(submit_one(ctx, cb));
  rec.calls.clear();
  fail_call(Call::pgetevents, GetParam());
  io_event ev[2];
  auto p = ctx.pgetevents(1, ev, 2s, nullptr);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, 1u);
  EXPECT_EQ(ev[0].res, 8);
  EXPECT_EQ(aio::request_of(ev[0]), &cb);
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].call, Call::pgetevents);
  EXPECT_EQ(rec.calls[1].call, Call::getevents);
  EXPECT_EQ(rec.calls[1].min_nr, 1L);
  EXPECT_EQ(rec.calls[1].nr, 2L);
  ASSERT_TRUE(rec.calls[1].has_timeout);
  EXPECT_EQ(rec.calls[1].timeout.tv_sec, 2);

  // The fallback's own error is what comes back.
  rec.calls.clear();
  rec.fn = [err = GetParam()](Args& a) -> long { return a.call == Call::pgetevents ? -err : -EINTR; };
  auto e = ctx.pgetevents(1, ev, 2s, nullptr);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::interrupted);
  EXPECT_EQ(rec.calls.size(), 2u);
}

TEST_P(PgeteventsRefused, WithMaskTheErrorIsReturnedWithoutFallback) {
  aio::Context ctx = make_ctx();
  fail_call(Call::pgetevents, GetParam());
  sigset_t mask;
  sigemptyset(&mask);
  io_event ev[2];
  auto p = ctx.pgetevents(1, ev, 10ms, &mask);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), std::error_code(GetParam(), std::system_category()));
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].call, Call::pgetevents);
}

INSTANTIATE_TEST_SUITE_P(EnosysAndEperm, PgeteventsRefused, ::testing::Values(ENOSYS, EPERM),
                         [](const ::testing::TestParamInfo<int>& i) { return i.param == ENOSYS ? "ENOSYS" : "EPERM"; });

TEST_F(FaultInjection, PgeteventsOtherErrorsWithNullMaskAreNotFallenBackFrom) {
  aio::Context ctx = make_ctx();
  fail_call(Call::pgetevents, EFAULT);
  io_event ev[1];
  auto p = ctx.pgetevents(0, ev, 0ns, nullptr);
  ASSERT_FALSE(p);
  EXPECT_EQ(p.error(), std::errc::bad_address);
  EXPECT_EQ(rec.calls.size(), 1u);
}

// ---- io_cancel ---------------------------------------------------------------------------

TEST_F(FaultInjection, CancelEinprogressAndZeroAreSuccessOtherErrnoIsError) {
  aio::Context ctx = make_ctx();
  iocb cb{};
  struct Case {
    long raw;
    bool ok;
  };
  for (const Case c : {Case{-EINPROGRESS, true}, Case{0, true}, Case{-EINVAL, false}, Case{-EAGAIN, false}}) {
    rec.calls.clear();
    rec.fn = [raw = c.raw](Args&) -> long { return raw; };
    auto r = ctx.cancel(cb);
    EXPECT_EQ(r.has_value(), c.ok) << c.raw;
    if (!c.ok) {
      EXPECT_EQ(r.error(), std::error_code(static_cast<int>(-c.raw), std::system_category()));
    }
    ASSERT_EQ(rec.calls.size(), 1u);
    EXPECT_EQ(rec.calls[0].call, Call::cancel);
    EXPECT_EQ(rec.calls[0].cb, &cb);
    EXPECT_EQ(rec.calls[0].ctx, ctx.native_handle());
  }
}

// ---- io_destroy ----------------------------------------------------------------------------

TEST_F(FaultInjection, DestroyFailureIsReturnedAndContextIsLeftEmpty) {
  aio::Context ctx = make_ctx();
  const aio_context_t handle = ctx.native_handle();
  rec.fn = [](Args& a) -> long {
    if (a.call != Call::destroy) return aio::sys::testing::passthrough(a);
    (void)aio::sys::testing::passthrough(a);  // really release it, then report a failure
    return -EFAULT;
  };
  auto d = ctx.destroy();
  ASSERT_FALSE(d);
  EXPECT_EQ(d.error(), std::errc::bad_address);
  ASSERT_EQ(rec.count(Call::destroy), 1u);
  EXPECT_EQ(rec.calls.back().ctx, handle);
  EXPECT_EQ(ctx.native_handle(), 0u);
  EXPECT_FALSE(ctx.valid());
  rec.calls.clear();
  auto again = ctx.destroy();
  ASSERT_FALSE(again);
  EXPECT_EQ(again.error(), std::errc::invalid_argument);
  EXPECT_TRUE(rec.calls.empty());
}

TEST_F(FaultInjection, DestructorDestroysExactlyOnceAndMovedFromDestructorNever) {
  {
    aio::Context ctx = make_ctx();
    const aio_context_t handle = ctx.native_handle();
    {
      aio::Context moved = std::move(ctx);
      { aio::Context empty; }
      EXPECT_EQ(rec.count(Call::destroy), 0u);
    }
    ASSERT_EQ(rec.count(Call::destroy), 1u);
    EXPECT_EQ(rec.calls.back().ctx, handle);
  }
  EXPECT_EQ(rec.count(Call::destroy), 1u) << "the moved-from Context must not io_destroy";
}

TEST_F(FaultInjection, EmptyContextMakesNoSyscall) {
  aio::Context ctx;
  Pipe p;
  iocb cb = aio::make_poll(p.rd.get(), POLLIN);
  iocb* list[] = {&cb};
  io_event ev[1];
  sigset_t mask;
  sigemptyset(&mask);
  EXPECT_FALSE(ctx.submit(list));
  EXPECT_FALSE(ctx.getevents(1, ev, std::nullopt));
  EXPECT_FALSE(ctx.pgetevents(1, ev, std::nullopt, &mask));
  EXPECT_FALSE(ctx.cancel(cb));
  EXPECT_FALSE(ctx.destroy());
  EXPECT_TRUE(rec.calls.empty());
}

TEST_F(FaultInjection, ArgumentErrorsAreCaughtBeforeTheSyscall) {
  aio::Context ctx = make_ctx();
  io_event ev[2];
  EXPECT_FALSE(ctx.getevents(3, ev, 0ns));
  EXPECT_FALSE(ctx.getevents(1, ev, -1ns));
  EXPECT_FALSE(ctx.pgetevents(3, ev, 0ns, nullptr));
  EXPECT_FALSE(ctx.pgetevents(1, ev, -1s, nullptr));
  EXPECT_TRUE(rec.calls.empty());
}

// ---- fork -----------------------------------------------------------------------------------

TEST_F(FaultInjection, ForkedChildMakesNoSyscallOnTheInheritedContext) {
  aio::Context ctx = make_ctx();
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    rec.calls.clear();  // the child's copy of the recorder (the hook is inherited)
    Pipe p;
    iocb cb = aio::make_poll(p.rd.get(), POLLIN);
    iocb* list[] = {&cb};
    io_event ev[1];
    int code = 0;
    if (ctx.submit(list)) code |= 1;
    if (ctx.getevents(0, ev, 0ns)) code |= 2;
    if (ctx.pgetevents(0, ev, 0ns, nullptr)) code |= 4;
    if (ctx.cancel(cb)) code |= 8;
    { aio::Context inherited = std::move(ctx); }  // its destructor must not io_destroy
    if (!rec.calls.empty()) code |= 16;
    ::_exit(code);
  }
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << "bits 1-8: a call succeeded, 16: a syscall was made";
  EXPECT_TRUE(rec.calls.empty());
  EXPECT_TRUE(ctx.valid());
}

}  // namespace
