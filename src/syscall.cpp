// aiopp — private syscall shim (see syscall.hpp). The raw calls and the typed layer are
// inline in syscall.hpp; this file holds the fault-injection seam of the test-only
// `aiopp_fi` twin and nothing else.
#include "syscall.hpp"

#ifdef AIOPP_FAULT_INJECTION
#include <atomic>

#include "syscall_testing.hpp"

namespace aio::sys {
namespace testing {
namespace {
// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): one process-wide test hook
std::atomic<Hook> g_hook{nullptr};
std::atomic<void*> g_user{nullptr};
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)
}  // namespace

void set_hook(Hook hook, void* user) noexcept {
  g_user.store(user, std::memory_order_relaxed);
  g_hook.store(hook, std::memory_order_release);
}

long passthrough(const Args& a) noexcept {
  switch (a.call) {
    case Call::setup: return raw::setup(a.nr, a.ctxp);
    case Call::destroy: return raw::destroy(a.ctx);
    case Call::submit: return raw::submit(a.ctx, a.nr, a.iocbs);
    case Call::cancel: return raw::cancel(a.ctx, a.cb, a.events);
    case Call::getevents: return raw::getevents(a.ctx, a.min_nr, a.nr, a.events, a.timeout);
    case Call::pgetevents: return raw::pgetevents(a.ctx, a.min_nr, a.nr, a.events, a.timeout, a.sig);
  }
  return -ENOSYS;
}

// With a hook installed, the hook decides; otherwise the real syscall runs.
[[nodiscard]] long dispatch(Args a) noexcept {
  if (Hook hook = g_hook.load(std::memory_order_acquire)) return hook(a, g_user.load(std::memory_order_relaxed));
  return passthrough(a);
}
}  // namespace testing

using testing::Args;
using testing::dispatch;

long hooked_setup(long nr, aio_context_t* ctxp) noexcept {
  return dispatch(Args{Call::setup, 0, nr, 0, nullptr, nullptr, nullptr, nullptr, nullptr, ctxp});
}
long hooked_destroy(aio_context_t ctx) noexcept {
  return dispatch(Args{Call::destroy, ctx, 0, 0, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr});
}
long hooked_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  return dispatch(Args{Call::submit, ctx, nr, 0, iocbs, nullptr, nullptr, nullptr, nullptr, nullptr});
}
long hooked_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  return dispatch(Args{Call::cancel, ctx, 0, 0, nullptr, cb, result, nullptr, nullptr, nullptr});
}
long hooked_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                      const KernelTimespec* timeout) noexcept {
  return dispatch(Args{Call::getevents, ctx, nr, min_nr, nullptr, nullptr, events, timeout, nullptr, nullptr});
}
long hooked_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events, const KernelTimespec* timeout,
                       const AioSigset* sig) noexcept {
  return dispatch(Args{Call::pgetevents, ctx, nr, min_nr, nullptr, nullptr, events, timeout, sig, nullptr});
}

}  // namespace aio::sys
#endif  // AIOPP_FAULT_INJECTION
