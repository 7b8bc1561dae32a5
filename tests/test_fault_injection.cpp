// Fault injection through the private syscall seam (aiopp_fi): exactly which arguments the
// typed layer hands the kernel, which calls never reach it, and how it maps the answers that
// are not plain errors (-EINPROGRESS from io_cancel, a refused io_pgetevents). Every errno of
// every call is in test_fi_errors.
#include <gtest/gtest.h>

#include "fi_child.hpp"
#include "fi_hook.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;
using aio::sys::Call;
using aio::sys::testing::Args;

// Every test records the syscalls the library makes (rec) for its whole life.
class FaultInjection : public ::testing::Test {
 protected:
  // A Context that always enters the kernel to reap, so every getevents reaches the hook.
  aio::Context make_ctx(unsigned n = 8) {
    auto c = aio::Context::create(n, aio::ReapMode::syscall);
    EXPECT_TRUE(c) << c.error().message();
    rec.calls.clear();
    return c ? std::move(*c) : aio::Context{};
  }
  Recorder rec;
};

// ---- io_setup ---------------------------------------------------------------------------

TEST_F(FaultInjection, SetupPassesMaxEventsAsExactLong) {
  auto ctx = aio::Context::create(4000000u, aio::ReapMode::syscall);  // kernel says EAGAIN
  ASSERT_EQ(rec.calls.size(), 1u);
  EXPECT_EQ(rec.calls[0].nr, 4000000L);
  EXPECT_EQ(rec.calls[0].ctx, 0u);
  ASSERT_FALSE(ctx);
}

// ---- io_submit ---------------------------------------------------------------------------

TEST_F(FaultInjection, SubmitPassesCountAndArrayExactly) {
  aio::Context ctx = make_ctx();
  rec.answer = [](Args& a) -> long { return a.call == Call::submit ? a.nr : fi::passthrough(a); };
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
  for (long accepted = 0; accepted <= 4; ++accepted) {
    SCOPED_TRACE(accepted);
    aio::Context ctx = make_ctx();
    const Requests r = Requests::file_reads(4);
    bool first = true;
    rec.answer = [&first, accepted](Args& a) -> long {
      if (a.call == Call::submit && first) {
        first = false;
        a.nr = accepted;
      }
      return fi::passthrough(a);
    };
    auto n = ctx.submit(r.batch());
    ASSERT_TRUE(n) << n.error().message();
    EXPECT_EQ(*n, static_cast<std::size_t>(accepted));
    auto got = reap(ctx, static_cast<std::size_t>(accepted));
    ASSERT_EQ(got.size(), static_cast<std::size_t>(accepted));
    // Resubmitting the rest completes the batch; each request completes exactly once.
    auto rest = ctx.submit(r.batch(*n));
    ASSERT_TRUE(rest);
    EXPECT_EQ(*rest, static_cast<std::size_t>(4 - accepted));
    auto more = reap(ctx, *rest);
    got.insert(got.end(), more.begin(), more.end());
    for (const auto& ev : got) EXPECT_EQ(ev.res, 16);
    EXPECT_TRUE(r.each_once(got));
    EXPECT_TRUE(r.data_ok());
  }
}

// ---- io_getevents / io_pgetevents ------------------------------------------------------

TEST_F(FaultInjection, GeteventsPassesMinNrAndNrAsExactLongs) {
  aio::Context ctx = make_ctx();
  rec.answer = [](Args& a) -> long { return a.call == Call::getevents || a.call == Call::pgetevents ? 0 : -ENOSYS; };
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
  rec.answer = [](Args&) -> long { return 0; };
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
  rec.answer = [](Args&) -> long { return 0; };
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

// With a mask the refusal is the answer (test_fi_errors); without one io_getevents does the
// same job, with the same arguments.
TEST_P(PgeteventsRefused, NullMaskFallsBackToGeteventsAndReturnsItsResult) {
  aio::Context ctx = make_ctx();
  const Requests r = Requests::file_reads(1, 8);
  ASSERT_TRUE(r.submit_to(ctx));
  rec.calls.clear();
  rec.fail(Call::pgetevents, GetParam());
  io_event ev[2];
  auto p = ctx.pgetevents(1, ev, 2s, nullptr);
  ASSERT_TRUE(p) << p.error().message();
  EXPECT_EQ(*p, 1u);
  EXPECT_EQ(ev[0].res, 8);
  EXPECT_EQ(aio::request_of(ev[0]), &r.cbs[0]);
  ASSERT_EQ(rec.calls.size(), 2u);
  EXPECT_EQ(rec.calls[0].call, Call::pgetevents);
  EXPECT_EQ(rec.calls[1].call, Call::getevents);
  EXPECT_EQ(rec.calls[1].min_nr, 1L);
  EXPECT_EQ(rec.calls[1].nr, 2L);
  ASSERT_TRUE(rec.calls[1].has_timeout);
  EXPECT_EQ(rec.calls[1].timeout.tv_sec, 2);

  // The fallback's own error is what comes back.
  rec.calls.clear();
  rec.answer = [err = GetParam()](Args& a) -> long { return a.call == Call::pgetevents ? -err : -EINTR; };
  auto e = ctx.pgetevents(1, ev, 2s, nullptr);
  ASSERT_FALSE(e);
  EXPECT_EQ(e.error(), std::errc::interrupted);
  EXPECT_EQ(rec.calls.size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(EnosysAndEperm, PgeteventsRefused, ::testing::Values(ENOSYS, EPERM),
                         [](const ::testing::TestParamInfo<int>& i) { return i.param == ENOSYS ? "ENOSYS" : "EPERM"; });

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
    rec.answer = [raw = c.raw](Args&) -> long { return raw; };
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
  rec.answer = [](Args& a) -> long {
    if (a.call != Call::destroy) return fi::passthrough(a);
    (void)fi::passthrough(a);  // really release it, then report a failure
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
      aio::Context outer;
      {
        aio::Context moved = std::move(ctx);
        outer = std::move(moved);
        { aio::Context empty; }
      }  // moved (moved-from) destroyed: must not io_destroy the context outer owns
      EXPECT_EQ(rec.count(Call::destroy), 0u);
      EXPECT_TRUE(outer.getevents(0, std::span<io_event>{}, 0ns)) << "outer still owns a live context";
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

// What the child may do with the inherited Context is in test_fork; here: none of it, its
// destructor included, reaches the kernel.
TEST_F(FaultInjection, ForkedChildMakesNoSyscallOnTheInheritedContext) {
  aio::Context ctx = make_ctx();
  EXPECT_EQ(run_in_child([&]() -> int {
              rec.calls.clear();  // the child's copy of the recorder (the hook is inherited)
              Pipe p;
              iocb cb = aio::make_poll(p.rd.get(), POLLIN);
              if (const int rc = check_inherited_refused(ctx, cb); rc != 0) return rc;
              { aio::Context inherited = std::move(ctx); }  // its destructor must not io_destroy
              AIOTEST_CHILD_CHECK(rec.calls.empty(), 1);
              return 0;
            }),
            0);
  EXPECT_TRUE(rec.calls.empty());
  EXPECT_TRUE(ctx.valid());
}

}  // namespace
