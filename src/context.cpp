// aiopp — aio::Context (see include/aio/context.hpp for the contract).
#include "aio/context.hpp"

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <thread>
#include <type_traits>
#include <utility>

#include "aio/observer.hpp"
#include "fork_guard.hpp"
#include "observer_access.hpp"
#include "ring.hpp"
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

// The ring is written by the kernel behind valgrind's back, and AIOPP_REAP=syscall asks
// for the syscall path explicitly: both turn userspace reaping off at create().
[[nodiscard]] bool environment_forbids_ring() noexcept {
  if (const char* reap = std::getenv("AIOPP_REAP"); reap != nullptr && std::strcmp(reap, "syscall") == 0)
    return true;
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "vgpreload") != nullptr;
}

// What an observer sees of a result: the kernel's raw convention (>= 0 or -errno); for
// io_setup (Result<aio_context_t>: Result<std::size_t> on LP64, not on ILP32) the new handle.
template <class T>
  requires std::is_unsigned_v<T>
[[nodiscard]] long raw_of(const Result<T>& r) noexcept {
  return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
}
[[nodiscard]] long raw_of(const Result<long>& r) noexcept {
  return r ? *r : -static_cast<long>(r.error().value());
}
[[nodiscard]] long raw_of(const Result<void>& r) noexcept {
  return r ? 0 : -static_cast<long>(r.error().value());
}

// Runs one shim call; with an observer attached, tells it what happened (and how long it
// took, if it has a hook). Without one, this is the bare call.
template <class Call>
[[nodiscard]] auto observed(Observer* obs, SyscallInfo info, Call&& call) noexcept -> decltype(call()) {
  using detail::ObserverAccess;
  if (obs == nullptr) [[likely]]
    return call();
  const bool timed = ObserverAccess::wants_timing(*obs);
  const std::int64_t t0 = timed ? ObserverAccess::now_ns() : 0;
  auto r = call();
  info.result = raw_of(r);
  info.duration = std::chrono::nanoseconds(timed ? ObserverAccess::now_ns() - t0 : 0);
  ObserverAccess::syscall(*obs, info);
  return r;
}

[[nodiscard]] long long timeout_ns_of(const sys::KernelTimespec* ts) noexcept {
  return ts == nullptr ? -1 : ts->tv_sec * 1'000'000'000LL + ts->tv_nsec;
}

[[nodiscard]] detail::RingHeader* ring_of(aio_context_t handle) noexcept {
  // The handle is the ring's address (kernel ABI).
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  return reinterpret_cast<detail::RingHeader*>(static_cast<std::uintptr_t>(handle));
}

// EINVAL for an empty (or fork-inherited) Context or bad arguments: built out of line, so
// the success paths make no call besides the syscall.
[[nodiscard, gnu::cold, gnu::noinline]] Result<std::size_t> einval_count() noexcept { return fail(EINVAL); }

}  // namespace

inline aio_context_t Context::usable_handle() const noexcept {
  const aio_context_t handle = ctx_.load(std::memory_order_relaxed);
  // In a forked child the handle names the parent's context and ring: refuse it without
  // any syscall (the kernel would say EINVAL too) and without touching the shared ring.
  // owner_ was claimed at create() (which also mapped the incarnation page), so a non-empty
  // Context compares with the current id without any call; in a child the page reads 0 (or
  // the child's own, newer id) and never equals owner_.
  if (handle == 0) [[unlikely]]
    return 0;
  const detail::Incarnation* inc = detail::g_incarnation.load(std::memory_order_relaxed);
  if (inc == nullptr || inc->id.load(std::memory_order_relaxed) != owner_) [[unlikely]]
    return 0;
  return handle;
}

// reap_state_ bits (see context.hpp).
struct Context::Reap {
  static constexpr std::uint64_t ring_reaper = 1;
  static constexpr std::uint64_t reader = 2;
  static constexpr std::uint64_t ring_users = 0xffff'ffffULL;  // ring reaper + readers
  static constexpr std::uint64_t kernel_reaper = 1ULL << 32;
  static constexpr std::uint64_t kernel_reapers = ~ring_users;

  static void pause() noexcept {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#else
    std::this_thread::yield();
#endif
  }

  // Claims the ring for reaping if nobody else reaps (from the ring or in the kernel).
  [[nodiscard]] static bool try_claim_ring(std::atomic<std::uint64_t>& state) noexcept {
    std::uint64_t s = state.load(std::memory_order_relaxed);
    while ((s & (ring_reaper | kernel_reapers)) == 0) {
      if (state.compare_exchange_weak(s, s | ring_reaper, std::memory_order_seq_cst,
                                      std::memory_order_relaxed))
        return true;
    }
    return false;
  }

  // Registers a reaper about to enter io_(p)getevents: waits out a ring reaper (its
  // critical section is a bounded copy, never a wait).
  static void enter_kernel(std::atomic<std::uint64_t>& state) noexcept {
    std::uint64_t s = state.load(std::memory_order_relaxed);
    for (;;) {
      if ((s & ring_reaper) != 0) {
        pause();
        s = state.load(std::memory_order_relaxed);
        continue;
      }
      if (state.compare_exchange_weak(s, s + kernel_reaper, std::memory_order_acquire,
                                      std::memory_order_relaxed))
        return;
    }
  }

  // What the ring did for a call.
  enum class Answer : std::uint8_t {
    answered,  // n completions copied (maybe 0, for a zero timeout)
    kernel,    // too few ready and the call may wait, another thread reaps, or the ring looks wrong
    emptied,   // the Context was destroyed under us
  };
  struct FromRing {
    std::size_t n;
    Answer answer;
  };

  // What the ring can answer without waiting.
  [[nodiscard]] static FromRing from_ring(Context& self, std::size_t min_nr, std::span<io_event> events,
                                          bool zero_timeout) noexcept {
    if (!try_claim_ring(self.reap_state_)) [[unlikely]]
      return {0, Answer::kernel};
    FromRing out{0, Answer::emptied};
    // seq_cst claim above, seq_cst load here, against destroy()'s exchange-then-load: either
    // we see the Context emptied, or destroy() sees our claim and waits before unmapping.
    if (const aio_context_t handle = self.ctx_.load(std::memory_order_seq_cst); handle != 0) [[likely]] {
      const detail::RingCount r = detail::ring_reap_at_least(ring_of(handle), self.ring_nr_, events.data(),
                                                             events.size(), zero_timeout ? 0 : min_nr);
      out = r.ok() ? FromRing{r.count, Answer::answered} : FromRing{0, Answer::kernel};
    }
    self.reap_state_.fetch_and(~ring_reaper, std::memory_order_release);
    if (out.n != 0) {
      if (Observer* obs = self.observer(); obs != nullptr) [[unlikely]]
        detail::ObserverAccess::reaped(*obs, events.first(out.n), true);
    }
    return out;
  }

  // io_getevents or io_pgetevents (with the ENOSYS/EPERM fallback when there is no mask),
  // registered as a kernel reaper when the ring is in use, and observed if Observed.
  template <bool Observed>
  // NOLINTNEXTLINE(bugprone-easily-swappable-parameters): kernel handle and count, both unsigned long typedefs
  [[nodiscard]] static Result<std::size_t> in_kernel(Context& self, aio_context_t handle, std::size_t min_nr,
                                                     std::span<io_event> events, const sys::KernelTimespec* tsp,
                                                     const sigset_t* sigmask, bool use_pgetevents) noexcept {
    const auto min = static_cast<long>(min_nr);
    const auto nr = static_cast<long>(events.size());
    Observer* obs = Observed ? self.observer() : nullptr;
    // `masked` is computed by the caller: inside this generic lambda a test of `kind` would
    // be constant per instantiation (half of its branches never taken by construction).
    auto call = [&](Syscall kind, bool masked, auto&& syscall) noexcept -> Result<std::size_t> {
      if constexpr (Observed) {
        return observed(obs, {.call = kind, .ctx = handle, .nr = nr, .min_nr = min, .timeout_ns = timeout_ns_of(tsp), .sigmask = masked}, syscall);
      } else {
        (void)kind;
        (void)masked;
        return syscall();
      }
    };
    auto getevents = [&]() noexcept { return sys::io_getevents(handle, min, nr, events.data(), tsp); };
    const bool ring = self.ring_reap_;
    if (ring) enter_kernel(self.reap_state_);
    Result<std::size_t> n;
    if (!use_pgetevents) {
      n = call(Syscall::getevents, false, getevents);
    } else {
      const sys::AioSigset sig{sigmask, sys::kernel_sigset_size};
      n = call(Syscall::pgetevents, sigmask != nullptr, [&]() noexcept {
        return sys::io_pgetevents(handle, min, nr, events.data(), tsp, sigmask != nullptr ? &sig : nullptr);
      });
      if (!n && sigmask == nullptr &&
          (n.error() == std::errc::function_not_supported || n.error() == std::errc::operation_not_permitted)) {
        // Old kernel (< 4.18) or a seccomp filter that blocks io_pgetevents: without a mask to
        // apply, io_getevents does the same job.
        n = call(Syscall::getevents, false, getevents);
      }
    }
    if (ring) self.reap_state_.fetch_sub(kernel_reaper, std::memory_order_release);
    if constexpr (Observed) {
      if (n && *n != 0) detail::ObserverAccess::reaped(*obs, events.first(*n), false);
    }
    return n;
  }

  [[gnu::cold, gnu::noinline]] static Result<std::size_t> in_kernel_observed(
      Context& self, aio_context_t handle, std::size_t min_nr, std::span<io_event> events,
      const sys::KernelTimespec* tsp, const sigset_t* sigmask, bool use_pgetevents) noexcept {
    return in_kernel<true>(self, handle, min_nr, events, tsp, sigmask, use_pgetevents);
  }

  // getevents() and pgetevents(): argument checks, then the ring if it can answer, then the
  // kernel.
  [[nodiscard, gnu::always_inline]] static inline Result<std::size_t> reap(Context& self, std::size_t min_nr, std::span<io_event> events,
                                                const Timeout& timeout, const sigset_t* sigmask,
                                                bool use_pgetevents) noexcept {
    const aio_context_t handle = self.usable_handle();
    if (handle == 0 || min_nr > events.size()) [[unlikely]]
      return einval_count();
    sys::KernelTimespec ts{};
    const sys::KernelTimespec* tsp = nullptr;
    if (!to_kernel_timeout(timeout, ts, tsp)) [[unlikely]]
      return einval_count();
    // With a signal mask the call is io_pgetevents' own: the kernel installs the mask before
    // it looks at the ring, so a pending signal the mask unblocks is delivered (or the call
    // fails with EINTR) even when completions are ready. No ring shortcut then.
    if (self.ring_reap_ && sigmask == nullptr) {
      const bool zero_timeout = tsp != nullptr && ts.tv_sec == 0 && ts.tv_nsec == 0;
      const FromRing r = from_ring(self, min_nr, events, zero_timeout);
      if (r.answer == Answer::answered) [[likely]]
        return r.n;
      if (r.answer == Answer::emptied) return einval_count();
    }
    if (self.observer() != nullptr) [[unlikely]]
      return in_kernel_observed(self, handle, min_nr, events, tsp, sigmask, use_pgetevents);
    return in_kernel<false>(self, handle, min_nr, events, tsp, sigmask, use_pgetevents);
  }

  // Waits until nobody reads the ring of a handle that has just been taken out of ctx_.
  static void drain_ring_users(const std::atomic<std::uint64_t>& state) noexcept {
    while ((state.load(std::memory_order_seq_cst) & ring_users) != 0) pause();
  }
};

Result<Context> Context::create(unsigned max_events, ReapMode mode, Observer* observer) noexcept {
  auto handle = observed(observer, {.call = Syscall::setup, .nr = static_cast<long>(max_events)},
                         [&]() noexcept { return sys::io_setup(max_events); });
  if (!handle) return std::unexpected(handle.error());
  Context ctx;
  ctx.observer_.store(observer, std::memory_order_relaxed);
  ctx.ctx_.store(*handle, std::memory_order_relaxed);
  ctx.owner_ = detail::process_incarnation();
  ctx.max_events_ = max_events;
  // The ring was just mapped by io_setup in this process: read its size once, and use it
  // only if the header is the layout we know (magic, no incompatible features, length).
  const detail::RingHeader* ring = ring_of(*handle);
  const std::uint32_t nr = detail::ring_load(ring->nr, std::memory_order_relaxed);
  if (detail::ring_header_ok(ring, nr)) {
    ctx.ring_nr_ = nr;
    ctx.ring_reap_ = mode == ReapMode::automatic && !environment_forbids_ring();
  }
  return ctx;
}

Context::Context(Context&& other) noexcept
    : ctx_(other.ctx_.exchange(0, std::memory_order_relaxed)),
      observer_(other.observer_.exchange(nullptr, std::memory_order_relaxed)),
      owner_(std::exchange(other.owner_, 0)),
      max_events_(std::exchange(other.max_events_, 0)),
      ring_nr_(std::exchange(other.ring_nr_, 0)),
      ring_reap_(std::exchange(other.ring_reap_, false)) {}

Context& Context::operator=(Context&& other) noexcept {
  if (this != &other) {
    (void)close();
    ctx_.store(other.ctx_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
    owner_ = std::exchange(other.owner_, 0);
    max_events_ = std::exchange(other.max_events_, 0);
    ring_nr_ = std::exchange(other.ring_nr_, 0);
    ring_reap_ = std::exchange(other.ring_reap_, false);
    observer_.store(other.observer_.exchange(nullptr, std::memory_order_relaxed), std::memory_order_relaxed);
  }
  return *this;
}

// Nothing useful can be done with an io_destroy error in a destructor.
Context::~Context() { (void)close(); }


bool Context::valid() const noexcept { return usable_handle() != 0; }

Result<void> Context::close() noexcept {
  const bool ours = owner_ == detail::process_incarnation();
  const aio_context_t handle = ctx_.exchange(0, std::memory_order_seq_cst);
  if (handle == 0) return fail(EINVAL);  // empty, or lost a race with another destroy()
  // max_events_ stays as it is: other threads may read it (max_events() checks ctx_).
  if (!ours) return fail(EINVAL);  // the parent's context, seen in a forked child: not ours
  Reap::drain_ring_users(reap_state_);
  return observed(observer(), {.call = Syscall::destroy, .ctx = handle},
                  [&]() noexcept { return sys::io_destroy(handle); });
}

Result<void> Context::destroy() noexcept {
  if (usable_handle() == 0) return fail(EINVAL);
  return close();
}

std::size_t Context::ready() const noexcept {
  if (ring_nr_ == 0 || usable_handle() == 0) return 0;
  reap_state_.fetch_add(Reap::reader, std::memory_order_seq_cst);
  const aio_context_t handle = ctx_.load(std::memory_order_seq_cst);
  std::size_t n = 0;
  if (handle != 0) {
    const detail::RingCount r = detail::ring_ready(ring_of(handle), ring_nr_);
    n = r.ok() ? r.count : 0;
  }
  reap_state_.fetch_sub(Reap::reader, std::memory_order_release);
  return n;
}

Result<std::size_t> Context::submit(std::span<iocb* const> iocbs) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0) [[unlikely]]
    return einval_count();
  if (iocbs.empty()) return 0;
  // The kernel clamps nr to the ring size; clamping to LONG_MAX only keeps the cast exact.
  constexpr auto max_nr = static_cast<std::size_t>(std::numeric_limits<long>::max());
  const long nr = static_cast<long>(iocbs.size() < max_nr ? iocbs.size() : max_nr);
  Observer* obs = observer();
  if (obs == nullptr) [[likely]]
    return sys::io_submit(handle, nr, iocbs.data());
  return submit_observed(*obs, handle, nr, iocbs);
}

[[gnu::cold]] Result<std::size_t> Context::submit_observed(Observer& observer, aio_context_t handle, long nr,
                                             std::span<iocb* const> iocbs) noexcept {
  Observer* obs = &observer;
  const std::int64_t t_submit = obs->latency_tracking() ? detail::ObserverAccess::now_ns() : 0;
  auto n = observed(obs, {.call = Syscall::submit, .ctx = handle, .nr = nr},
                    [&]() noexcept { return sys::io_submit(handle, nr, iocbs.data()); });
  if (n && *n != 0 && obs->latency_tracking()) detail::ObserverAccess::submitted(*obs, iocbs.first(*n), t_submit);
  return n;
}

Result<std::size_t> Context::getevents(std::size_t min_nr, std::span<io_event> events,
                                       Timeout timeout) noexcept {
  return Reap::reap(*this, min_nr, events, timeout, nullptr, false);
}

Result<std::size_t> Context::pgetevents(std::size_t min_nr, std::span<io_event> events,
                                        Timeout timeout, const sigset_t* sigmask) noexcept {
  return Reap::reap(*this, min_nr, events, timeout, sigmask, true);
}

Result<void> Context::cancel(iocb& request) noexcept {
  const aio_context_t handle = usable_handle();
  if (handle == 0) return fail(EINVAL);
  io_event unused{};  // only pre-3.x kernels wrote the event here; now it comes via the ring
  auto r = observed(observer(), {.call = Syscall::cancel, .ctx = handle},
                    [&]() noexcept { return sys::io_cancel(handle, &request, &unused); });
  if (!r) return std::unexpected(r.error());
  return {};  // -EINPROGRESS (or 0): accepted; the completion arrives through getevents()
}

}  // namespace aio
