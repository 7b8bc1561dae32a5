// aiopp — observer.hpp: optional per-Context observability (profile AIO latency, find
// repeated calls).
//
// Attach with Context::create(n, mode, &obs) or Context::set_observer(&obs); detach with
// set_observer(nullptr). The Observer is not owned by the Context and must outlive the
// attachment. With one attached, a Context records:
//   - syscalls by kind, and what each returned (errors by errno),
//   - events reaped from the user-space ring vs through io_(p)getevents,
//   - a histogram of submit batch sizes (powers of two),
//   - the most repeated (syscall, nr, min_nr, timeout, mask) tuples — the "same call again and
//     again" that profiling AIO code usually looks for,
//   - opt-in (latency_capacity > 0): per-request completion latency, submit -> reap, in a
//     log-linear histogram (p50/p99/p99.9), keyed by iocb address in a fixed table allocated
//     once in the constructor — nothing is allocated on the submit/reap path,
//   - and calls an optional hook with each syscall's kind, arguments, result and duration.
//
// Errors: nothing here fails or throws except summary(), which allocates its string.
// Thread safety: every counter is atomic; one Observer may be shared by several Contexts and
// threads. Reading (the accessors, summary()) may run concurrently with recording. The hook
// runs on the calling thread, after the syscall, and must not call back into the same Context.
#pragma once

#include <linux/aio_abi.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "aio/syscall_kind.hpp"

namespace aio {

namespace detail {
struct ObserverAccess;  // src/observer_access.hpp: the library's recording entry points
}  // namespace detail

/// What the hook sees of one syscall.
struct SyscallInfo {
  Syscall call{};
  aio_context_t ctx = 0;
  long nr = 0;                   ///< submit/getevents: nr; setup: nr_events; else 0
  long min_nr = 0;               ///< getevents/pgetevents; else 0
  long long timeout_ns = -1;     ///< -1: none (wait forever, or not a waiting call)
  bool sigmask = false;          ///< pgetevents with a mask
  long result = 0;               ///< >= 0, or -errno (cancel's accepted is -EINPROGRESS; setup: the new handle,
                                 ///< which on ILP32 may look negative: only -4095..-1 is an error)
  std::chrono::nanoseconds duration{};
};

/// The hook: called with each syscall's kind, arguments, result and duration.
/// Thread safety: runs on the thread that made the call; must not call into the same Context.
using SyscallHook = void (*)(const SyscallInfo& info, void* user) noexcept;

/// One entry of Observer::top_calls(): a call tuple and how often it was made.
struct CallCount {
  Syscall call{};
  long nr = 0;
  long min_nr = 0;
  long long timeout_ns = -1;
  bool sigmask = false;
  std::uint64_t count = 0;
};

/// Per-request latency, submit to reap, of the requests an Observer timed.
struct LatencySummary {
  std::uint64_t count = 0;       ///< completions whose latency was measured
  std::uint64_t untracked = 0;   ///< completions not measured (table full at submit)
  std::chrono::nanoseconds p50{}, p99{}, p999{}, max{};
};

/// Counters, histograms and an optional hook for the Contexts it is attached to.
class Observer {
 public:
  /// An Observer timing up to `latency_capacity` requests in flight (0: no latency tracking).
  /// Notes: the latency table is allocated here, never on the I/O path; if that fails,
  /// latency_tracking() is false.
  explicit Observer(std::size_t latency_capacity = 0) noexcept;
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  /// Installs the per-syscall hook; nullptr removes it.
  /// Thread safety: set it before attaching.
  void set_hook(SyscallHook hook, void* user) noexcept {
    hook_user_.store(user, std::memory_order_relaxed);
    hook_.store(hook, std::memory_order_release);
  }

  /// True when request latencies are measured.
  [[nodiscard]] bool latency_tracking() const noexcept { return slots_ != nullptr; }

  /// Syscalls of this kind made (failed ones included).
  [[nodiscard]] std::uint64_t syscalls(Syscall call) const noexcept {
    return calls_[static_cast<std::size_t>(call)].load(std::memory_order_relaxed);
  }
  /// Syscalls of every kind.
  [[nodiscard]] std::uint64_t total_syscalls() const noexcept;
  /// Completions reaped from the user-space ring, with no syscall.
  [[nodiscard]] std::uint64_t events_via_ring() const noexcept { return via_ring_.load(std::memory_order_relaxed); }
  /// Completions reaped by io_getevents/io_pgetevents.
  [[nodiscard]] std::uint64_t events_via_syscall() const noexcept { return via_syscall_.load(std::memory_order_relaxed); }
  /// Requests the kernel accepted through submit().
  [[nodiscard]] std::uint64_t requests_submitted() const noexcept { return submitted_.load(std::memory_order_relaxed); }
  /// Failed calls with this errno (1..errno_slots-1; larger errnos are counted under 0).
  [[nodiscard]] std::uint64_t errors(int err) const noexcept;
  static constexpr std::size_t errno_slots = 134;
  /// Submit batch sizes: bucket b counts batches of [2^b, 2^(b+1)) iocbs (b = 0..batch_buckets-1,
  /// the last bucket open-ended).
  [[nodiscard]] std::uint64_t batch_histogram(std::size_t bucket) const noexcept {
    return bucket < batch_buckets ? batches_[bucket].load(std::memory_order_relaxed) : 0;
  }
  static constexpr std::size_t batch_buckets = 17;

  /// The most repeated (syscall, nr, min_nr, timeout, mask) tuples, most frequent first.
  /// Returns: how many entries of `out` were filled.
  [[nodiscard]] std::size_t top_calls(std::span<CallCount> out) const noexcept;

  /// Latency percentiles of the timed requests (all zero without latency tracking).
  [[nodiscard]] LatencySummary latency() const noexcept;

  /// A few lines for humans: syscalls by kind, events ring/syscall, batches, errors,
  /// latency percentiles, the top repeated calls.
  /// Errors: allocates (std::bad_alloc may propagate).
  [[nodiscard]] std::string summary() const;

  /// Zeroes every counter (not the in-flight latency table).
  void reset() noexcept;

 private:
  friend struct detail::ObserverAccess;

  void on_syscall(const SyscallInfo& info) noexcept;
  void on_submitted(std::span<iocb* const> accepted, std::int64_t now_ns) noexcept;
  void on_reaped(std::span<const io_event> events, bool via_ring, std::int64_t now_ns) noexcept;
  [[nodiscard]] static std::int64_t now_ns() noexcept;

  struct Slot {
    std::atomic<std::uint64_t> key{0};  // iocb address; 0 empty, 1 tombstone
    std::atomic<std::int64_t> t0{0};
  };
  struct TupleSlot {
    std::atomic<std::uint64_t> tag{0};  // hash of the tuple; 0 = empty
    std::atomic<bool> ready{false};
    CallCount key{};
    std::atomic<std::uint64_t> count{0};
  };
  static constexpr std::size_t tuple_slots = 64;
  static constexpr std::size_t latency_buckets = std::size_t{64} * 8;  // log2 major x 8 linear minors

  void record_latency(std::int64_t ns) noexcept;
  void count_tuple(const SyscallInfo& info) noexcept;

  std::array<std::atomic<std::uint64_t>, syscall_kinds> calls_{};
  std::atomic<std::uint64_t> via_ring_{0}, via_syscall_{0}, submitted_{0};
  std::array<std::atomic<std::uint64_t>, errno_slots> errors_{};
  std::array<std::atomic<std::uint64_t>, batch_buckets> batches_{};
  std::array<TupleSlot, tuple_slots> tuples_{};
  std::atomic<std::uint64_t> tuple_overflow_{0};
  std::array<std::atomic<std::uint64_t>, latency_buckets> latency_{};
  std::atomic<std::uint64_t> latency_count_{0}, untracked_{0};
  std::atomic<std::int64_t> latency_max_{0};
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays): runtime size, new (nothrow)
  std::unique_ptr<Slot[]> slots_;
  std::size_t slot_mask_ = 0;
  std::atomic<SyscallHook> hook_{nullptr};
  std::atomic<void*> hook_user_{nullptr};
};

/// A log-linear latency histogram (8 linear steps inside each power of two of nanoseconds,
/// the Observer's own bucketing) with a count, a total and a maximum. Fixed size, no
/// pointers, all-zero bytes are an empty histogram: it may live in memory shared between
/// processes (a zero-filled mapping needs no constructor).
/// Errors: none. Thread safety: record() and the readers may run concurrently on any threads.
class LatencyHistogram {
 public:
  static constexpr std::size_t buckets = std::size_t{64} * 8;

  /// Adds one sample (negative durations count as 0).
  void record(std::chrono::nanoseconds d) noexcept { record_ns(d.count()); }
  /// Adds one sample of `ns` nanoseconds.
  void record_ns(std::int64_t ns) noexcept;
  /// Samples recorded.
  [[nodiscard]] std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  /// The sum of every sample.
  [[nodiscard]] std::chrono::nanoseconds total() const noexcept {
    return std::chrono::nanoseconds(static_cast<std::int64_t>(total_ns_.load(std::memory_order_relaxed)));
  }
  /// p50/p99/p99.9 (each the upper edge of its bucket, at most max) and max; count as recorded,
  /// untracked 0.
  [[nodiscard]] LatencySummary summary() const noexcept;
  /// Zeroes it.
  void reset() noexcept;
  /// Adds every sample of `other` (for totals over several histograms).
  void merge(const LatencyHistogram& other) noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, buckets> counts_{};
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> total_ns_{0};
  std::atomic<std::int64_t> max_{0};
};

}  // namespace aio
