// aiopp — context.hpp: aio::Context, the RAII owner of one kernel AIO context.
//
// Ownership
//   A Context owns one aio_context_t from io_setup() and releases it with io_destroy() in
//   its destructor (or in destroy()). It is move-only; a moved-from, default-constructed or
//   destroyed Context is *empty*: native_handle() == 0, every call returns
//   std::errc::invalid_argument, and its destructor does nothing.
//   io_destroy() blocks until every in-flight request has completed (the kernel does not
//   abandon I/O into your buffers), so buffers of requests still in flight stay safe to
//   free only after the destructor / destroy() returns.
//
// Errors
//   Every call returns aio::Result<T> (std::expected<T, std::error_code>) with the kernel's
//   errno in std::system_category(); nothing throws, nothing allocates.
//
// Thread safety
//   - submit() and cancel() may be called from any number of threads at once on one
//     Context (the kernel serialises them).
//   - getevents()/pgetevents() may be called from several threads at once: each completion
//     is delivered exactly once, to one of them. Internally the userspace ring fast path is
//     taken only while no other thread of this Context is reaping (from the ring or inside
//     the kernel), so a reaper never races the kernel's io_getevents over the ring head;
//     with concurrent reapers the calls simply go through the syscall. ready() may be
//     called from any thread.
//   - destroy() may be called while another thread is blocked in getevents()/pgetevents()
//     on the same Context: the kernel wakes that waiter, which returns promptly
//     (invalid_argument, or the events it already had). Calls that start after destroy()
//     returns see an empty Context.
//   - destroy() must not race with submit(), cancel() or a getevents() that is only
//     starting: such a call may have read the handle just before destroy() cleared it, and
//     the handle is the ring's address, which the kernel may hand to a Context created
//     meanwhile — the late call would then act on that other context. Stop submitting and
//     let only waiters remain before destroy() (the usual shutdown order).
//   - Moving a Context, and its destructor, must not race with any other use of it.
//
// fork()
//   The completion ring is a shared mapping, so a forked child sees the parent's ring: a
//   child reaping from it would steal the parent's completions. In a forked child every
//   call on a Context inherited from the parent returns invalid_argument without any
//   syscall or ring access, and its destructor does nothing (the kernel context belongs to
//   the parent, which still owns and destroys it). The child may create Contexts of its own.
//   Detection uses MADV_WIPEONFORK plus a pthread_atfork handler, so it also covers
//   _Fork()/raw clone() without CLONE_VM on Linux >= 4.14.
//
// Requirements: Linux >= 4.18 for pgetevents and IOCB_CMD_POLL; 64-bit targets.
#pragma once

#include <linux/aio_abi.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "aio/result.hpp"

namespace aio {

class Observer;  // aio/observer.hpp

/// How long getevents()/pgetevents() may block: std::nullopt waits forever, zero polls, a
/// negative duration is refused with invalid_argument (the kernel would block forever).
using Timeout = std::optional<std::chrono::nanoseconds>;

/// How a Context reaps completions.
enum class ReapMode : std::uint8_t {
  /// Copy completions that are already in the shared completion ring straight out of it,
  /// with no syscall, whenever that answers the call (enough events ready, or a zero
  /// timeout) and no signal mask is given; otherwise io_getevents/io_pgetevents. Used only
  /// when the ring header has the layout this library knows; never under valgrind
  /// (LD_PRELOAD names vgpreload) or when AIOPP_REAP=syscall is set at create() time.
  automatic,
  /// Always io_getevents/io_pgetevents.
  syscall,
};

class Context {
 public:
  /// An empty Context: native_handle() == 0 and every call returns invalid_argument.
  Context() noexcept = default;

  /// io_setup(max_events) with ReapMode::automatic and no observer.
  /// Returns: the new Context.
  /// Errors: invalid_argument (0, or more than the kernel allows per context);
  /// resource_unavailable_try_again (aio-nr + max_events would exceed fs.aio-max-nr);
  /// not_enough_memory; function_not_supported (no AIO in this kernel);
  /// operation_not_permitted (seccomp).
  /// Notes: the kernel rounds the ring up (see README, "aio-max-nr diagnostics").
  [[nodiscard]] static Result<Context> create(unsigned max_events) noexcept {
    return create(max_events, ReapMode::automatic);
  }
  /// create() with an explicit reap mode.
  [[nodiscard]] static Result<Context> create(unsigned max_events, ReapMode mode) noexcept {
    return create(max_events, mode, nullptr);
  }
  /// create() with an observer attached from the start; it also sees the io_setup call,
  /// failed or not.
  /// Notes: the observer is not owned and must outlive the attachment.
  [[nodiscard]] static Result<Context> create(unsigned max_events, ReapMode mode,
                                              Observer* observer) noexcept;

  /// Takes over other's context; other becomes empty.
  Context(Context&& other) noexcept;
  /// Destroys what *this owned (as ~Context), then takes over other's context. Self-move safe.
  Context& operator=(Context&& other) noexcept;
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// io_destroy() if it owns a context of this process; blocks until in-flight I/O has
  /// completed. Never throws, never aborts; an io_destroy error is dropped.
  ~Context();

  /// The kernel handle (the completion ring's address); 0 when empty or moved-from.
  [[nodiscard]] aio_context_t native_handle() const noexcept {
    return ctx_.load(std::memory_order_relaxed);
  }

  /// True when the Context owns a kernel context usable from this process (non-empty and
  /// not inherited across fork()).
  [[nodiscard]] bool valid() const noexcept;
  explicit operator bool() const noexcept { return valid(); }

  /// The max_events this Context was created with; 0 when empty.
  [[nodiscard]] unsigned max_events() const noexcept {
    return ctx_.load(std::memory_order_relaxed) != 0 ? max_events_ : 0;
  }

  /// Attaches an observer (aio/observer.hpp); nullptr detaches.
  /// Notes: not owned, it must outlive the attachment. With none attached, a call pays one
  /// predictable branch.
  /// Thread safety: attach/detach while no other thread uses the Context.
  void set_observer(Observer* observer) noexcept { observer_.store(observer, std::memory_order_relaxed); }
  /// The attached observer, or nullptr.
  [[nodiscard]] Observer* observer() const noexcept { return observer_.load(std::memory_order_relaxed); }

  /// True when getevents()/pgetevents() may reap from the ring without a syscall.
  [[nodiscard]] bool ring_reaping() const noexcept { return ring_reap_; }

  /// How many completions are ready in the completion ring right now, with no syscall.
  /// Returns: a snapshot (more may arrive at any moment); 0 when empty, inherited across
  /// fork, or when the ring layout is unknown.
  /// Thread safety: any thread.
  [[nodiscard]] std::size_t ready() const noexcept;

  /// io_submit(): queues the requests in order.
  /// Returns: how many the kernel accepted, maybe fewer than given (the first one not
  /// accepted failed, or the ring was full); 0 for an empty span, without a syscall.
  /// Errors: only when the *first* request fails: bad_file_descriptor, bad_address (null or
  /// unmapped iocb pointer), invalid_argument (bad opcode, non-zero reserved fields; a
  /// misaligned O_DIRECT transfer fails in its completion instead),
  /// resource_unavailable_try_again (ring full: reap, then resubmit).
  /// Notes: at most LONG_MAX requests are passed per call; the kernel takes at most the
  /// ring size.
  [[nodiscard]] Result<std::size_t> submit(std::span<iocb* const> iocbs) noexcept;

  /// io_submit() of one request.
  /// Returns: nothing; success means the request is in flight.
  /// Errors: as submit(span) for its first request.
  [[nodiscard]] Result<void> submit(iocb& request) noexcept {
    iocb* const one[] = {&request};  // NOLINT(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
    auto n = submit(std::span<iocb* const>(one));
    if (!n) return std::unexpected(n.error());
    if (*n == 0) [[unlikely]]
      return fail(EAGAIN);
    return {};
  }

  /// io_getevents(): waits until at least min_nr completions are available or the timeout
  /// expires, and copies up to events.size() of them.
  /// Returns: the number copied; fewer than min_nr only on timeout, or when a signal
  /// arrived after some were copied.
  /// Errors: invalid_argument (min_nr > events.size(), negative timeout, empty Context,
  /// Context destroyed while waiting); interrupted (a signal handler ran; not retried).
  /// Notes: with ReapMode::automatic, when min_nr completions are already in the ring (or
  /// the timeout is zero) they are copied from the ring with no syscall.
  [[nodiscard]] Result<std::size_t> getevents(std::size_t min_nr, std::span<io_event> events,
                                              Timeout timeout = std::nullopt) noexcept;

  /// io_pgetevents() (Linux >= 4.18): getevents() with the thread's signal mask replaced
  /// by *sigmask for the duration of the call, atomically, as ppoll() does.
  /// Returns: as getevents().
  /// Errors: as getevents(); with a mask, function_not_supported / operation_not_permitted
  /// when the kernel or a seccomp filter refuses io_pgetevents.
  /// Notes: with a mask the call is always the kernel's io_pgetevents, exactly: the kernel
  /// installs the mask before it looks at the ring, so a pending signal the mask unblocks is
  /// delivered (its handler runs) even when completions are ready, and with none ready and a
  /// zero timeout the call fails with interrupted. sigmask == nullptr leaves the mask alone;
  /// the call then behaves as getevents() (ring fast path included) and falls back to
  /// io_getevents when io_pgetevents is refused.
  [[nodiscard]] Result<std::size_t> pgetevents(std::size_t min_nr, std::span<io_event> events,
                                               Timeout timeout, const sigset_t* sigmask) noexcept;

  /// io_cancel(): asks the kernel to cancel an in-flight request.
  /// Returns: nothing; success means the cancellation was accepted (the kernel answers
  /// -EINPROGRESS) and the request's completion still arrives through getevents() (for a
  /// cancelled poll with res == 0, an empty ready mask).
  /// Errors: invalid_argument for anything but an in-flight IOCB_CMD_POLL (file I/O cannot
  /// be cancelled; nor can a request that already completed), or an empty Context.
  [[nodiscard]] Result<void> cancel(iocb& request) noexcept;

  /// io_destroy() now; leaves the Context empty.
  /// Errors: invalid_argument for an empty Context (or one inherited across fork()).
  /// Notes: blocks until in-flight I/O has completed; wakes threads blocked in getevents()
  /// on this Context.
  [[nodiscard]] Result<void> destroy() noexcept;

 private:
  struct Reap;  // the reaping machinery, in context.cpp

  // The handle if this Context may be used from the calling process, else 0.
  [[nodiscard]] aio_context_t usable_handle() const noexcept;
  // Leaves the Context empty; io_destroy()s the handle if it belongs to this process.
  [[nodiscard]] Result<void> close() noexcept;
  [[nodiscard]] Result<std::size_t> submit_observed(Observer& observer, aio_context_t handle, long nr,
                                                    std::span<iocb* const> iocbs) noexcept;

  std::atomic<aio_context_t> ctx_{0};
  // Who touches the ring right now (bit 0: a ring reaper; bits 1-31: ready() readers, 2
  // each; bits 32-63: reapers inside the kernel, 1<<32 each). destroy() waits for the low
  // half to drain before io_destroy() unmaps the ring.
  mutable std::atomic<std::uint64_t> reap_state_{0};
  std::atomic<Observer*> observer_{nullptr};
  std::uint64_t owner_ = 0;  // the process incarnation that created ctx_ (see fork above)
  unsigned max_events_ = 0;
  std::uint32_t ring_nr_ = 0;  // the ring's event slots, fixed at setup; 0: ring unreadable
  bool ring_reap_ = false;     // reap from the ring (ReapMode::automatic and a known ring)
};

}  // namespace aio
