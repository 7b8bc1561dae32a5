// aiopp — limits.hpp: the system-wide AIO quota (fs.aio-nr / fs.aio-max-nr).
//
// Every io_setup(n) is charged against one system-wide budget: /proc/sys/fs/aio-nr is the
// sum of what live contexts were charged, /proc/sys/fs/aio-max-nr the limit (65536 by
// default). When aio-nr + charge would exceed aio-max-nr, io_setup fails with EAGAIN
// (resource_unavailable_try_again) — for every process on the machine.
//
// What io_setup(n) is charged: exactly n. Measured on Linux 6.18 for n = 1, 2, 31, 32, 63,
// 64, 65, 100, 127, 128, 200, 256, 1000, 1024, 4096, 30000, 32767, 32768 and 60000: aio-nr
// grew by n each time, although the ring the kernel allocates is larger (it doubles n,
// with a floor of 4 slots per possible CPU, and rounds up to whole pages: io_setup(1)
// gives a 127-slot ring). Old kernels charged the internal doubled size; aiopp requires
// Linux >= 4.18, where the charge is n. aio_nr_charge() encodes this.
//
// Errors: never throws; system_limits() and create_shrinking() do not allocate;
// aio_max_nr_advice() allocates its string. Thread safety: all functions may be called
// from any thread; the numbers are a snapshot that other processes change at any time.
#pragma once

#include <cstdint>
#include <string>

#include "aio/context.hpp"
#include "aio/result.hpp"

namespace aio {

/// A snapshot of the system-wide AIO quota.
struct SystemLimits {
  std::uint64_t nr = 0;      ///< /proc/sys/fs/aio-nr: charged to live contexts
  std::uint64_t max_nr = 0;  ///< /proc/sys/fs/aio-max-nr: the limit
  /// What an io_setup may still be charged (0 when the quota is exhausted).
  [[nodiscard]] std::uint64_t available() const noexcept { return nr >= max_nr ? 0 : max_nr - nr; }
};

/// Reads /proc/sys/fs/aio-nr and aio-max-nr. Errors: whatever open()/read() report
/// (no_such_file_or_directory without /proc or without AIO, permission_denied),
/// invalid_argument when a file does not hold a number.
[[nodiscard]] Result<SystemLimits> system_limits() noexcept;

/// What io_setup(max_events) adds to aio-nr on the kernels aiopp supports: max_events.
[[nodiscard]] constexpr std::uint64_t aio_nr_charge(unsigned max_events) noexcept { return max_events; }

/// Context::create(wanted, mode), and when the quota is exhausted (EAGAIN) retries with
/// smaller sizes — what system_limits() says is still available, else half the last try
/// — down to `minimum`. Check max_events() of the result for the size obtained.
/// Errors: invalid_argument when minimum == 0 or minimum > wanted; the last io_setup
/// error: resource_unavailable_try_again when even `minimum` does not fit (see
/// aio_max_nr_advice()), or any other create() error at once (no shrinking for those).
[[nodiscard]] Result<Context> create_shrinking(unsigned wanted, unsigned minimum,
                                               ReapMode mode = ReapMode::automatic) noexcept;

/// The actionable message for an io_setup(wanted) that failed with EAGAIN, from `limits`:
/// "aio: io_setup(W) needs W free AIO slots but only A of fs.aio-max-nr=M are free
/// (aio-nr=N); raise fs.aio-max-nr to T (sysctl -w fs.aio-max-nr=T)", where
/// T = aio-nr + aio_nr_charge(wanted) (never below the current limit). Allocates.
[[nodiscard]] std::string aio_max_nr_advice(unsigned wanted, const SystemLimits& limits);

/// aio_max_nr_advice(wanted, *system_limits()); without /proc it advises raising
/// fs.aio-max-nr by at least aio_nr_charge(wanted).
[[nodiscard]] std::string aio_max_nr_advice(unsigned wanted);

}  // namespace aio
