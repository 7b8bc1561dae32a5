// aiopp — limits.hpp: the system-wide AIO quota (fs.aio-nr / fs.aio-max-nr).
//
// Every io_setup(n) is charged against one budget shared by the whole machine:
// /proc/sys/fs/aio-nr is what live contexts were charged, /proc/sys/fs/aio-max-nr the
// limit. io_setup fails with EAGAIN (resource_unavailable_try_again) when the charge does
// not fit, in every process.
//
// Errors: nothing throws; system_limits() and create_shrinking() do not allocate,
// aio_max_nr_advice() allocates its string.
// Thread safety: every function may run from any thread. The numbers are a snapshot that
// other processes change at any time.
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
  /// What an io_setup may still be charged (0 when the quota is used up).
  [[nodiscard]] std::uint64_t available() const noexcept { return nr >= max_nr ? 0 : max_nr - nr; }
};

/// Reads /proc/sys/fs/aio-nr and /proc/sys/fs/aio-max-nr.
/// Errors: what open()/read() report (no_such_file_or_directory without /proc or AIO,
/// permission_denied, too_many_files_open); invalid_argument when a file holds no number.
[[nodiscard]] Result<SystemLimits> system_limits() noexcept;

/// What io_setup(max_events) adds to aio-nr on the kernels aiopp supports (>= 4.18).
/// Returns: max_events (the ring the kernel allocates is larger, but is not charged).
[[nodiscard]] constexpr std::uint64_t aio_nr_charge(unsigned max_events) noexcept { return max_events; }

/// Context::create(wanted, mode, observer), retried with smaller sizes while the quota is
/// used up: next what system_limits() says is free, else half the last size, never below
/// `minimum`.
/// Returns: the Context; its max_events() is the size obtained.
/// Errors: invalid_argument when minimum == 0 or minimum > wanted;
/// resource_unavailable_try_again when even `minimum` does not fit (see
/// aio_max_nr_advice()); any other create() error at once, without shrinking.
/// Notes: `observer` (not owned; may be nullptr) sees every io_setup attempt, the failed
/// ones included, and stays attached to the returned Context.
[[nodiscard]] Result<Context> create_shrinking(unsigned wanted, unsigned minimum, ReapMode mode,
                                               Observer* observer) noexcept;

/// create_shrinking() with no observer.
[[nodiscard]] inline Result<Context> create_shrinking(unsigned wanted, unsigned minimum,
                                                      ReapMode mode = ReapMode::automatic) noexcept {
  return create_shrinking(wanted, minimum, mode, nullptr);
}

/// The actionable message for an io_setup(wanted) that failed with EAGAIN, given `limits`.
/// Returns: "io_setup(W) needs C free AIO slots but only A of fs.aio-max-nr=M are free
/// (aio-nr=N); raise fs.aio-max-nr to T (sysctl -w fs.aio-max-nr=T)", with C =
/// aio_nr_charge(W) and T = N + C (never below M). No prefix: the caller adds its own name.
[[nodiscard]] std::string aio_max_nr_advice(unsigned wanted, const SystemLimits& limits);

/// aio_max_nr_advice(wanted, *system_limits()).
/// Returns: that message; when /proc cannot be read, "io_setup(W) needs C free AIO slots;
/// raise fs.aio-max-nr by at least C (/proc/sys/fs/aio-max-nr is unreadable)".
[[nodiscard]] std::string aio_max_nr_advice(unsigned wanted);

}  // namespace aio
