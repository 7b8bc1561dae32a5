// aiopp — private syscall shim (see syscall.hpp). The only ::syscall() calls and errno reads.
#include "syscall.hpp"

#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#ifdef AIOPP_FAULT_INJECTION
#include <atomic>

#include "syscall_testing.hpp"
#endif

static_assert(sizeof(long) == 8, "aiopp supports 64-bit targets only (64-bit time in io_getevents)");
static_assert(sizeof(aio::sys::KernelTimespec) == 16);

namespace aio::sys {
namespace {

// ::syscall() reports failure as -1 with errno set; fold that into -errno, once, here.
[[nodiscard]] long kernel_result(long r) noexcept { return r == -1 ? -errno : r; }

// Every argument is widened to long explicitly: ::syscall() is variadic.
[[nodiscard]] long raw_setup(long nr, aio_context_t* ctxp) noexcept {
  return kernel_result(::syscall(SYS_io_setup, nr, ctxp));
}
[[nodiscard]] long raw_destroy(aio_context_t ctx) noexcept {
  return kernel_result(::syscall(SYS_io_destroy, static_cast<long>(ctx)));
}
[[nodiscard]] long raw_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  return kernel_result(::syscall(SYS_io_submit, static_cast<long>(ctx), nr, iocbs));
}
[[nodiscard]] long raw_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  return kernel_result(::syscall(SYS_io_cancel, static_cast<long>(ctx), cb, result));
}
[[nodiscard]] long raw_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                 const KernelTimespec* timeout) noexcept {
  return kernel_result(::syscall(SYS_io_getevents, static_cast<long>(ctx), min_nr, nr, events, timeout));
}
[[nodiscard]] long raw_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                  const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  return kernel_result(
      ::syscall(SYS_io_pgetevents, static_cast<long>(ctx), min_nr, nr, events, timeout, sig));
}

// The one conversion from the raw convention to Result.
[[nodiscard]] Result<std::size_t> count_result(long r) noexcept {
  if (r < 0) return fail(static_cast<int>(-r));
  return static_cast<std::size_t>(r);
}

}  // namespace

#ifdef AIOPP_FAULT_INJECTION
namespace testing {
namespace {
std::atomic<Hook> g_hook{nullptr};
std::atomic<void*> g_user{nullptr};
}  // namespace

void set_hook(Hook hook, void* user) noexcept {
  g_user.store(user, std::memory_order_relaxed);
  g_hook.store(hook, std::memory_order_release);
}

long passthrough(const Args& a) noexcept {
  switch (a.call) {
    case Call::setup: return raw_setup(a.nr, a.ctxp);
    case Call::destroy: return raw_destroy(a.ctx);
    case Call::submit: return raw_submit(a.ctx, a.nr, a.iocbs);
    case Call::cancel: return raw_cancel(a.ctx, a.cb, a.events);
    case Call::getevents: return raw_getevents(a.ctx, a.min_nr, a.nr, a.events, a.timeout);
    case Call::pgetevents: return raw_pgetevents(a.ctx, a.min_nr, a.nr, a.events, a.timeout, a.sig);
  }
  return -ENOSYS;
}
}  // namespace testing

// With a hook installed, the hook decides; otherwise the real syscall runs.
#define AIOPP_SHIM_CALL(raw_call, ...)                                                \
  [&]() noexcept -> long {                                                           \
    if (auto* hook = testing::g_hook.load(std::memory_order_acquire)) {               \
      testing::Args a{__VA_ARGS__};                                                   \
      return hook(a, testing::g_user.load(std::memory_order_relaxed));                \
    }                                                                                 \
    return raw_call;                                                                  \
  }()
#else
#define AIOPP_SHIM_CALL(raw_call, ...) (raw_call)
#endif

Result<aio_context_t> io_setup(unsigned nr_events) noexcept {
  aio_context_t ctx = 0;  // the kernel requires *ctxp == 0 on entry
  const long nr = static_cast<long>(nr_events);
  const long r = AIOPP_SHIM_CALL(raw_setup(nr, &ctx), Call::setup, 0, nr, 0, nullptr, nullptr,
                                 nullptr, nullptr, nullptr, &ctx);
  if (r < 0) return fail(static_cast<int>(-r));
  return ctx;
}

Result<void> io_destroy(aio_context_t ctx) noexcept {
  const long r = AIOPP_SHIM_CALL(raw_destroy(ctx), Call::destroy, ctx, 0, 0, nullptr, nullptr,
                                 nullptr, nullptr, nullptr, nullptr);
  if (r < 0) return fail(static_cast<int>(-r));
  return {};
}

Result<std::size_t> io_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  return count_result(AIOPP_SHIM_CALL(raw_submit(ctx, nr, iocbs), Call::submit, ctx, nr, 0, iocbs,
                                      nullptr, nullptr, nullptr, nullptr, nullptr));
}

Result<long> io_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  const long r = AIOPP_SHIM_CALL(raw_cancel(ctx, cb, result), Call::cancel, ctx, 0, 0, nullptr, cb,
                                 result, nullptr, nullptr, nullptr);
  if (r < 0 && r != -EINPROGRESS) return fail(static_cast<int>(-r));
  return r;
}

Result<std::size_t> io_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                 const KernelTimespec* timeout) noexcept {
  return count_result(AIOPP_SHIM_CALL(raw_getevents(ctx, min_nr, nr, events, timeout),
                                      Call::getevents, ctx, nr, min_nr, nullptr, nullptr, events,
                                      timeout, nullptr, nullptr));
}

Result<std::size_t> io_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                  const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  return count_result(AIOPP_SHIM_CALL(raw_pgetevents(ctx, min_nr, nr, events, timeout, sig),
                                      Call::pgetevents, ctx, nr, min_nr, nullptr, nullptr, events,
                                      timeout, sig, nullptr));
}

#undef AIOPP_SHIM_CALL

}  // namespace aio::sys
