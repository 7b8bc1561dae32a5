// aiopp — private: how the library records into an Observer. Not installed, not public API.
#pragma once

#include <linux/aio_abi.h>

#include <cstdint>
#include <span>

#include "aio/observer.hpp"

namespace aio::detail {

/// The Observer's recording entry points, for Context and the rest of the library (and the
/// tests that drive the bookkeeping directly).
struct ObserverAccess {
  /// True when a hook is installed: the caller then times each syscall for
  /// SyscallInfo::duration. Latency tracking timestamps submit and reap on its own.
  [[nodiscard]] static bool wants_timing(const Observer& obs) noexcept {
    return obs.hook_.load(std::memory_order_relaxed) != nullptr;
  }
  [[nodiscard]] static bool latency_tracking(const Observer& obs) noexcept { return obs.latency_tracking(); }
  /// CLOCK_MONOTONIC in nanoseconds.
  [[nodiscard]] static std::int64_t now_ns() noexcept { return Observer::now_ns(); }
  /// One syscall made, with its arguments, raw result and duration.
  static void syscall(Observer& obs, const SyscallInfo& info) noexcept { obs.on_syscall(info); }
  /// `accepted` requests were taken by io_submit at `now_ns`.
  static void submitted(Observer& obs, std::span<iocb* const> accepted, std::int64_t now_ns) noexcept {
    obs.on_submitted(accepted, now_ns);
  }
  /// `events` were reaped at `now_ns`, from the user-space ring or by a syscall.
  static void reaped(Observer& obs, std::span<const io_event> events, bool via_ring, std::int64_t now_ns) noexcept {
    obs.on_reaped(events, via_ring, now_ns);
  }
  /// reaped() now (the clock is read only when latencies are tracked).
  static void reaped(Observer& obs, std::span<const io_event> events, bool via_ring) noexcept {
    obs.on_reaped(events, via_ring, obs.latency_tracking() ? Observer::now_ns() : 0);
  }
};

}  // namespace aio::detail
