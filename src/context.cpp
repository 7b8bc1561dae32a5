// aiopp — aio::Context (see include/aio/context.hpp for the contract).
#include "aio/context.hpp"

#include <cerrno>
#include <limits>
#include <utility>

#include "fork_guard.hpp"
#include "syscall.hpp"

namespace aio {
namespace {

// Converts a Timeout for the kernel. The kernel does not validate the timespec: a negative
// one makes io_getevents block forever, so it is refused here (invalid_argument).
[[nodiscard]] bool to_kernel_timeout(const Timeout& timeout, sys::KernelTimespec& storage,
                                     const sys::KernelTimespec*& out) noexcept {
  out = nullptr;
  if (!timeout) return true;
  const long long ns = timeout->count();
  if (ns < 0) return false;
  storage.tv_sec = ns / 1'000'000'000LL;
  storage.tv_nsec = ns % 1'000'000'000LL;
  out = &storage;
  return true;
}

}  // namespace

Result<Context> Context::create(unsigned max_events) noexcept {
  auto handle = sys::io_setup(max_events);
  if (!handle) return std::unexpected(handle.error());
  return Context(*handle, detail::process_incarnation(), max_events);
}

Context::Context(Context&& other) noexcept
    : ctx_(other.ctx_.exchange(0, std::memory_order_relaxed)),
      owner_(std::exchange(other.owner_, 0)),
      max_events_(std::exchange(other.max_events_, 0)) {}

Context& Context::operator=(Context&& other) noexcept {
  if (this != &other) {
    release();
    ctx_.store(other.ctx_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    owner_ = std::exchange(other.owner_, 0);
    max_events_ = std::exchange(other.max_events_, 0);
  }
  return *this;
}

Context::~Context() { release(); }

aio_context_t Context::usable_handle() const noexcept {
  const aio_context_t handle = ctx_.load(std::memory_order_relaxed);
  // In a forked child the handle names the parent's context and ring: refuse it without
  // any syscall (the kernel would say EINVAL too) and without touching the shared ring.
  if (handle == 0 || owner_ != detail::process_incarnation()) return 0;
  return handle;
}

bool Context::valid() const noexcept { return usable_handle() != 0; }

void Context::release() noexcept {
  const bool ours = owner_ == detail::process_incarnation();
  const aio_context_t handle = ctx_.exchange(0, std::memory_order_acq_rel);
  owner_ = 0;
  max_events_ = 0;
  // Nothing useful can be done with an io_destroy error in a destructor; it can only fail
  // for a handle the kernel no longer knows.
  if (handle != 0 && ours) (void)sys::io_destroy(handle);
}

Result<void> Context::destroy() noexcept {
  if (usable_handle() == 0) return fail(EINVAL);
  const aio_context_t handle = ctx_.exchange(0, std::memory_order_acq_rel);
  if (handle == 0) return fail(EINVAL);  // lost a race with another destroy()
  owner_ = 0;
  max_events_ = 0;
  return sys::io_destroy(handle);
}

Result<std::size_t> Context::submit(std::span<iocb* const> iocbs) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0) return fail(EINVAL);
  if (iocbs.empty()) return 0;
  // The kernel clamps nr to the ring size; clamping to LONG_MAX only keeps the cast exact.
  constexpr std::size_t max_nr = static_cast<std::size_t>(std::numeric_limits<long>::max());
  const long nr = static_cast<long>(iocbs.size() < max_nr ? iocbs.size() : max_nr);
  return sys::io_submit(handle, nr, iocbs.data());
}

Result<std::size_t> Context::getevents(std::size_t min_nr, std::span<io_event> events,
                                       Timeout timeout) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0 || min_nr > events.size()) return fail(EINVAL);
  sys::KernelTimespec ts{};
  const sys::KernelTimespec* tsp = nullptr;
  if (!to_kernel_timeout(timeout, ts, tsp)) return fail(EINVAL);
  return sys::io_getevents(handle, static_cast<long>(min_nr), static_cast<long>(events.size()),
                           events.data(), tsp);
}

Result<std::size_t> Context::pgetevents(std::size_t min_nr, std::span<io_event> events,
                                        Timeout timeout, const sigset_t* sigmask) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0 || min_nr > events.size()) return fail(EINVAL);
  sys::KernelTimespec ts{};
  const sys::KernelTimespec* tsp = nullptr;
  if (!to_kernel_timeout(timeout, ts, tsp)) return fail(EINVAL);
  const auto min = static_cast<long>(min_nr);
  const auto nr = static_cast<long>(events.size());
  const sys::AioSigset sig{sigmask, sys::kernel_sigset_size};
  auto n = sys::io_pgetevents(handle, min, nr, events.data(), tsp, sigmask ? &sig : nullptr);
  if (!n && sigmask == nullptr &&
      (n.error() == std::errc::function_not_supported || n.error() == std::errc::operation_not_permitted)) {
    // Old kernel (< 4.18) or a seccomp filter that blocks io_pgetevents: without a mask to
    // apply, io_getevents does the same job.
    return sys::io_getevents(handle, min, nr, events.data(), tsp);
  }
  return n;
}

Result<void> Context::cancel(iocb& request) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0) return fail(EINVAL);
  io_event unused{};  // only pre-3.x kernels wrote the event here; now it comes via the ring
  auto r = sys::io_cancel(handle, &request, &unused);
  if (!r) return std::unexpected(r.error());
  return {};  // -EINPROGRESS (or 0): accepted; the completion arrives through getevents()
}

}  // namespace aio
