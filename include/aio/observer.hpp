// aiopp — observer.hpp: optional per-Context observability (profile AIO latency, find
// repeated calls).
//
// Attach with Context::set_observer(&obs); detach with set_observer(nullptr). The Observer is
// not owned by the Context and must outlive the attachment. With no observer attached the
// Context pays one predictable branch per call (see BENCHMARKS.md); with one attached it
// counts, per Context:
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
// Thread safety: every counter is atomic; one Observer may be shared by several Contexts and
// threads. Reading (snapshot accessors, summary()) may run concurrently with recording.
// The hook runs on the calling thread, after the syscall, and must not call back into the
// same Context.
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

namespace aio {

enum class Syscall : std::uint8_t { setup, destroy, submit, cancel, getevents, pgetevents };
inline constexpr std::size_t syscall_kinds = 6;

/// "io_submit" etc.
[[nodiscard]] const char* to_string(Syscall call) noexcept;

/// What the hook sees of one syscall.
struct SyscallInfo {
  Syscall call;
  aio_context_t ctx;
  long nr;         // submit/getevents: nr; setup: nr_events; else 0
  long min_nr;     // getevents/pgetevents; else 0
  long long timeout_ns;  // -1: none (wait forever, or not a waiting call)
  bool sigmask;    // pgetevents with a mask
  long result;     // >= 0, or -errno (cancel's accepted is -EINPROGRESS; setup: the new handle)
  std::chrono::nanoseconds duration;
};

using SyscallHook = void (*)(const SyscallInfo& info, void* user) noexcept;

/// One entry of Observer::top_calls().
struct CallCount {
  Syscall call{};
  long nr = 0;
  long min_nr = 0;
  long long timeout_ns = -1;
  bool sigmask = false;
  std::uint64_t count = 0;
};

struct LatencySummary {
  std::uint64_t count = 0;       // completions whose latency was measured
  std::uint64_t untracked = 0;   // completions not measured (table full at submit)
  std::chrono::nanoseconds p50{}, p99{}, p999{}, max{};
};

class Observer {
 public:
  /// latency_capacity: how many requests may be in flight with their submit time recorded
  /// (0 = no latency tracking). The table is allocated here (not on the I/O path); if that
  /// allocation fails, latency tracking is off (latency_tracking() == false).
  explicit Observer(std::size_t latency_capacity = 0) noexcept;
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  /// Installs (or with nullptr removes) the per-syscall hook. Set it before attaching.
  void set_hook(SyscallHook hook, void* user) noexcept {
    hook_user_.store(user, std::memory_order_relaxed);
    hook_.store(hook, std::memory_order_release);
  }

  [[nodiscard]] bool latency_tracking() const noexcept { return slots_ != nullptr; }

  [[nodiscard]] std::uint64_t syscalls(Syscall call) const noexcept {
    return calls_[static_cast<std::size_t>(call)].load(std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t total_syscalls() const noexcept;
  [[nodiscard]] std::uint64_t events_via_ring() const noexcept { return via_ring_.load(std::memory_order_relaxed); }
  [[nodiscard]] std::uint64_t events_via_syscall() const noexcept { return via_syscall_.load(std::memory_order_relaxed); }
  /// Requests the kernel accepted through submit().
  [[nodiscard]] std::uint64_t requests_submitted() const noexcept { return submitted_.load(std::memory_order_relaxed); }
  /// Failed calls with this errno (1..errno_slots-1; larger errnos are counted under 0).
  [[nodiscard]] std::uint64_t errors(int err) const noexcept;
  static constexpr std::size_t errno_slots = 134;
  /// submit batch sizes: bucket b counts batches of [2^b, 2^(b+1)) iocbs (b = 0..batch_buckets-1,
  /// the last bucket open-ended).
  [[nodiscard]] std::uint64_t batch_histogram(std::size_t bucket) const noexcept {
    return bucket < batch_buckets ? batches_[bucket].load(std::memory_order_relaxed) : 0;
  }
  static constexpr std::size_t batch_buckets = 17;

  /// Fills `out` with the most repeated call tuples, most frequent first; returns how many.
  [[nodiscard]] std::size_t top_calls(std::span<CallCount> out) const noexcept;

  [[nodiscard]] LatencySummary latency() const noexcept;

  /// A few lines for humans: syscalls by kind, events ring/syscall, batches, errors,
  /// latency percentiles, the top repeated calls.
  [[nodiscard]] std::string summary() const;

  /// Zeroes every counter (not the in-flight latency table).
  void reset() noexcept;

  // ---- recording (called by Context) ---------------------------------------------------
  /// True when a hook is installed: the Context then times each syscall for
  /// SyscallInfo::duration. (Latency tracking timestamps submit and reap on its own.)
  [[nodiscard]] bool wants_timing() const noexcept {
    return hook_.load(std::memory_order_relaxed) != nullptr;
  }
  void on_syscall(const SyscallInfo& info) noexcept;
  void on_submitted(std::span<iocb* const> accepted, std::int64_t now_ns) noexcept;
  void on_reaped(std::span<const io_event> events, bool via_ring, std::int64_t now_ns) noexcept;
  [[nodiscard]] static std::int64_t now_ns() noexcept;

 private:
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

}  // namespace aio
