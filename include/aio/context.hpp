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

/// How long getevents()/pgetevents() may block: std::nullopt waits forever, zero polls,
/// a negative duration is rejected with invalid_argument (the kernel would block forever).
using Timeout = std::optional<std::chrono::nanoseconds>;

/// How a Context reaps completions.
enum class ReapMode : std::uint8_t {
  /// Copy completions that are already in the shared completion ring straight out of it,
  /// with no syscall, whenever that answers the call (enough events ready, or a zero
  /// timeout); otherwise io_getevents/io_pgetevents. Used only when the ring header has the
  /// layout this library knows; never under valgrind (LD_PRELOAD names vgpreload) or when
  /// the environment variable AIOPP_REAP=syscall is set at create() time.
  automatic,
  /// Always io_getevents/io_pgetevents.
  syscall,
};

class Context {
 public:
  /// An empty Context (native_handle() == 0); every call returns invalid_argument.
  Context() noexcept = default;

  /// io_setup(max_events). The kernel rounds the ring up (io_setup(1) gives 127 slots) and
  /// charges the request against /proc/sys/fs/aio-max-nr.
  /// Errors: invalid_argument for 0 or more than the kernel allows per context;
  /// resource_unavailable_try_again when aio-nr + max_events would exceed aio-max-nr;
  /// not_enough_memory; function_not_supported (no AIO in this kernel);
  /// operation_not_permitted (seccomp).
  [[nodiscard]] static Result<Context> create(unsigned max_events) noexcept {
    return create(max_events, ReapMode::automatic);
  }
  /// create() with an explicit reap mode.
  [[nodiscard]] static Result<Context> create(unsigned max_events, ReapMode mode) noexcept {
    return create(max_events, mode, nullptr);
  }
  /// create() with an observer attached from the start (it also sees the io_setup call,
  /// failed or not). The observer is not owned and must outlive the attachment.
  [[nodiscard]] static Result<Context> create(unsigned max_events, ReapMode mode,
                                              Observer* observer) noexcept;

  Context(Context&& other) noexcept;
  Context& operator=(Context&& other) noexcept;  // destroys what *this owned; self-move safe
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  /// io_destroy() if it owns a context of this process; never throws, never aborts. Blocks
  /// until in-flight I/O has completed.
  ~Context();

  /// The kernel handle (the address of the completion ring); 0 when empty or moved-from.
  [[nodiscard]] aio_context_t native_handle() const noexcept {
    return ctx_.load(std::memory_order_relaxed);
  }

  /// True when the Context owns a kernel context that is usable from this process
  /// (non-empty, and not inherited across fork()).
  [[nodiscard]] bool valid() const noexcept;
  explicit operator bool() const noexcept { return valid(); }

  /// The max_events this Context was created with (0 when empty).
  [[nodiscard]] unsigned max_events() const noexcept {
    return ctx_.load(std::memory_order_relaxed) != 0 ? max_events_ : 0;
  }

  /// Attaches an observer (aio/observer.hpp) that counts this Context's syscalls, events and
  /// errors and, if asked, request latencies; nullptr detaches. Not owned: it must outlive
  /// the attachment. Attach/detach while no other thread uses the Context. With none
  /// attached, each call pays one predictable branch.
  void set_observer(Observer* observer) noexcept { observer_.store(observer, std::memory_order_relaxed); }
  [[nodiscard]] Observer* observer() const noexcept { return observer_.load(std::memory_order_relaxed); }

  /// True when getevents()/pgetevents() may reap from the ring without a syscall.
  [[nodiscard]] bool ring_reaping() const noexcept { return ring_reap_; }

  /// How many completions are ready to be reaped right now, read from the completion ring
  /// with no syscall (0 when empty, inherited across fork, or the ring layout is unknown).
  /// A snapshot: more may arrive at any moment. Safe from any thread.
  [[nodiscard]] std::size_t ready() const noexcept;

  /// io_submit(): queues the requests in order and returns how many the kernel accepted,
  /// which may be fewer than given (then the first not accepted failed, or the ring was
  /// full). An error is returned only when the *first* request fails: bad_file_descriptor,
  /// bad_address (null or unmapped iocb pointer), invalid_argument (bad opcode, reserved
  /// fields, misaligned O_DIRECT is reported in the completion instead),
  /// resource_unavailable_try_again (ring full: reap, then resubmit).
  /// An empty span returns 0 without a syscall. No more than INT_MAX/ring size are
  /// passed per call; submit the rest in another call.
  [[nodiscard]] Result<std::size_t> submit(std::span<iocb* const> iocbs) noexcept;

  /// io_getevents(): waits until at least min_nr completions are available (or the timeout
  /// expires) and copies up to events.size() of them. Returns the number copied (fewer
  /// than min_nr only on timeout, or on a signal after some were copied). With
  /// ReapMode::automatic, when min_nr are already in the ring (or the timeout is zero) they
  /// are copied from the ring with no syscall.
  /// Errors: invalid_argument (min_nr > events.size(), negative timeout, empty Context,
  /// Context destroyed while waiting); interrupted (a signal handler ran; not retried).
  [[nodiscard]] Result<std::size_t> getevents(std::size_t min_nr, std::span<io_event> events,
                                              Timeout timeout = std::nullopt) noexcept;

  /// io_pgetevents() (Linux >= 4.18): like getevents(), but the thread's signal mask is
  /// replaced by *sigmask atomically for the duration of the wait, exactly like ppoll():
  /// signals blocked in the thread can be unblocked only while waiting, without races.
  /// If the call need not wait (min_nr completions already in the ring, or a zero timeout),
  /// the ring answers it with no syscall and the mask is not applied — exactly what the
  /// kernel does then (it restores the mask without delivering signals when it did not wait).
  /// sigmask == nullptr leaves the mask alone; then, if the kernel or a seccomp filter
  /// refuses io_pgetevents (function_not_supported / operation_not_permitted), it falls
  /// back to io_getevents. With a mask, those errors are returned.
  [[nodiscard]] Result<std::size_t> pgetevents(std::size_t min_nr, std::span<io_event> events,
                                               Timeout timeout, const sigset_t* sigmask) noexcept;

  /// io_cancel(): asks the kernel to cancel an in-flight request. Success means the
  /// cancellation was accepted (the kernel answers -EINPROGRESS); the request's completion
  /// still arrives through getevents() and must be reaped. For a cancelled poll Linux
  /// reports res == 0 (an empty ready mask), not -ECANCELED.
  /// Only IOCB_CMD_POLL requests can be cancelled: file reads/writes/fsyncs give
  /// invalid_argument, and so does a request that has already completed.
  [[nodiscard]] Result<void> cancel(iocb& request) noexcept;

  /// io_destroy() now; leaves the Context empty. Blocks until in-flight I/O has completed;
  /// wakes any thread blocked in getevents() on this Context. Calling it on an empty
  /// Context returns invalid_argument.
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
