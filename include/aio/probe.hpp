// aiopp — probe.hpp: what this kernel, process and file allow, found by trying.
//
// Each capability is tested with the real call, never inferred from the kernel version
// (seccomp filters, containers and backports make version checks lie). Each outcome is a
// std::error_code: empty when it works, else the error the call gave. supports() reads
// them the other way round: true when it works.
//
//     const aio::Capabilities caps = aio::probe();
//     if (!caps.supports(aio::Capability::setup)) die("no AIO: " + caps.setup.message());
//     if (auto fc = aio::probe_fd(fd); fc && fc->supports(aio::FdCapability::poll)) arm(fd);
//
// Errors: nothing throws; probe() and probe_fd() do not allocate, describe() does.
// Thread safety: every function may run concurrently from any thread.
// Notes: meant for start-up and diagnostics. probe() creates one Context (4 slots of
// fs.aio-max-nr while it runs) and an eventfd; probe_fd() one Context, three 0-byte reads
// and up to two polls of the fd.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include "aio/result.hpp"

namespace aio {

/// A kernel/process capability, for Capabilities::supports().
enum class Capability : std::uint8_t { setup, pgetevents, poll, ring_reaping };

/// What the kernel and process allow. Each error_code is empty when it works; else the error.
struct Capabilities {
  /// io_setup(4) and io_destroy. Empty when it works; else the error:
  /// function_not_supported (kernel without AIO), operation_not_permitted (seccomp),
  /// resource_unavailable_try_again (fs.aio-max-nr used up right now). When set,
  /// pgetevents and poll repeat it: nothing else could be tried.
  std::error_code setup;
  /// io_pgetevents with a signal mask (a zero-length wait). Empty when it works; else the
  /// error: function_not_supported (< 4.18), operation_not_permitted (seccomp). Without it
  /// Context::pgetevents() works only with sigmask == nullptr.
  std::error_code pgetevents;
  /// IOCB_CMD_POLL on a readable eventfd, completed with POLLIN. Empty when it works; else
  /// the error: invalid_argument (< 4.18: unknown opcode), timed_out (no completion within
  /// a second), protocol_error (completed without POLLIN).
  std::error_code poll;
  /// True when a ReapMode::automatic Context reaps from the completion ring, and the poll
  /// probe's completion was seen there. False under AIOPP_REAP=syscall or valgrind, or when
  /// the ring layout is unknown.
  bool ring_reaping = false;

  /// Returns: true when `c` works (its error_code is empty; ring_reaping: the flag).
  [[nodiscard]] bool supports(Capability c) const noexcept {
    switch (c) {
      case Capability::setup: return !setup;
      case Capability::pgetevents: return !pgetevents;
      case Capability::poll: return !poll;
      case Capability::ring_reaping: return ring_reaping;
    }
    return false;
  }
  /// Returns: supports(Capability::setup).
  [[nodiscard]] bool aio_available() const noexcept { return !setup; }
};

/// Runs the probes above.
/// Returns: every outcome in its field; never fails as a whole.
[[nodiscard]] Capabilities probe() noexcept;

/// A capability of one file descriptor, for FdCapabilities::supports().
enum class FdCapability : std::uint8_t {
  nowait_read,         ///< RWF_NOWAIT reads are accepted
  ioprio_best_effort,  ///< IOCB_FLAG_IOPRIO with the best-effort class is accepted
  ioprio_realtime,     ///< IOCB_FLAG_IOPRIO with the realtime class is accepted
  poll,                ///< IOCB_CMD_POLL waits for readiness (accepted, not always ready)
  o_direct,            ///< the O_DIRECT alignment is known and non-zero
};

/// What one file descriptor allows. Each error_code is empty when it works; else the error.
struct FdCapabilities {
  /// True when fd is open with O_DIRECT right now (fcntl(F_GETFL)).
  bool o_direct = false;
  /// O_DIRECT alignment of memory buffers and of file offsets/lengths, from
  /// statx(STATX_DIOALIGN) (Linux >= 6.1), or a block device's logical block size
  /// (BLKSSZGET). 0: the file system says this file cannot do O_DIRECT. std::nullopt:
  /// unknown (older kernel, statx refused, or a file system that does not say, e.g. tmpfs).
  std::optional<std::uint32_t> dio_mem_align;
  std::optional<std::uint32_t> dio_offset_align;
  /// A 0-byte RWF_NOWAIT read. Empty when it works; else the error:
  /// operation_not_supported (no non-blocking AIO: tmpfs, many character devices),
  /// bad_file_descriptor (not open for reading).
  std::error_code nowait_read;
  /// A 0-byte read with IOCB_FLAG_IOPRIO, best-effort level 4. Empty when it works; else
  /// the error.
  std::error_code ioprio_best_effort;
  /// The same with the realtime class. Empty when it works; else the error:
  /// operation_not_permitted without CAP_SYS_ADMIN / CAP_SYS_NICE.
  std::error_code ioprio_realtime;
  /// An IOCB_CMD_POLL of fd that has to wait. Empty when it works; else the error:
  /// invalid_argument when the kernel cannot wait on the file (a terminal, or a FIFO
  /// opened O_RDWR: their poll uses two wait queues), bad_file_descriptor (an O_PATH fd).
  /// Pipes, sockets, eventfd, timerfd, signalfd, epoll and inotify fds work.
  std::error_code poll;
  /// True when fd has no poll method (regular files, block devices, /dev/null): every
  /// poll of it completes at once with the requested events and none can wait. poll is
  /// then empty, and supports(FdCapability::poll) false.
  bool poll_always_ready = false;
  /// io_setup() of the probe Context. Empty when it works; else the error, which the
  /// request probes (nowait_read, ioprio_*, poll) repeat.
  std::error_code setup;

  /// Returns: true when `c` works. poll: poll is empty and poll_always_ready is false.
  /// o_direct: both alignments are known and non-zero (not whether fd has O_DIRECT set).
  [[nodiscard]] bool supports(FdCapability c) const noexcept {
    switch (c) {
      case FdCapability::nowait_read: return !nowait_read;
      case FdCapability::ioprio_best_effort: return !ioprio_best_effort;
      case FdCapability::ioprio_realtime: return !ioprio_realtime;
      case FdCapability::poll: return !poll && !poll_always_ready;
      case FdCapability::o_direct:
        return dio_mem_align.value_or(0) != 0 && dio_offset_align.value_or(0) != 0;
    }
    return false;
  }
};

/// Probes `fd`, which the caller keeps open. Nothing is read or written: the reads are 0
/// bytes at offset 0, polls consume nothing, and a poll still waiting is cancelled.
/// Returns: every outcome in its field.
/// Errors: bad_file_descriptor when fd is not open. A refused statx() only leaves the
/// alignment unknown.
/// Notes: the poll probe asks for no event but the POLLERR | POLLHUP the kernel always
/// adds, so it waits on any file that can be waited on, whatever is ready, and is then
/// cancelled. When it is refused and fd is a regular file, block device, directory or a
/// character device other than a terminal, a poll for the access mode's events
/// (POLLIN, POLLOUT) that completes inside io_submit means poll_always_ready.
[[nodiscard]] Result<FdCapabilities> probe_fd(int fd) noexcept;

/// One line per capability, e.g. "io_setup: ok", "io_pgetevents: Operation not permitted",
/// "IOCB_CMD_POLL: always ready (never waits)".
[[nodiscard]] std::string describe(const Capabilities& caps);
[[nodiscard]] std::string describe(const FdCapabilities& caps);

}  // namespace aio
