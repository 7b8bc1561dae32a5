// aiopp — probe.hpp: what this kernel, process and file allow, found by trying.
//
// Nothing here looks at the kernel version: each capability is tested with the real call
// (seccomp filters, containers and backports make version checks lie), and the outcome is
// reported as the std::error_code the call gave — empty when it worked.
//
//     const aio::Capabilities caps = aio::probe();
//     if (caps.setup) { /* no AIO at all: caps.setup says why (ENOSYS, EPERM) */ }
//     if (auto fc = aio::probe_fd(fd)) std::puts(aio::describe(*fc).c_str());
//
// Cost: probe() creates one small Context (charged 4 slots of fs.aio-max-nr while it runs)
// and an eventfd; probe_fd() one Context and three 0-byte reads of the file (no data is
// transferred). Both are meant for start-up and diagnostics, not hot paths.
// Errors: never throws; probe()/probe_fd() do not allocate, describe() does.
// Thread safety: all functions may run concurrently from any threads.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <system_error>

#include "aio/result.hpp"

namespace aio {

/// What the kernel and process allow. Each error_code is empty when the feature works,
/// else the error of the call that tried it.
struct Capabilities {
  /// io_setup(4) (and io_destroy): function_not_supported (kernel without AIO),
  /// operation_not_permitted (seccomp, e.g. Docker's default profile on old versions),
  /// resource_unavailable_try_again (fs.aio-max-nr exhausted right now). When set, the
  /// other fields repeat it: nothing else could be tried.
  std::error_code setup;
  /// io_pgetevents with a signal mask (zero-length wait): function_not_supported (< 4.18),
  /// operation_not_permitted (seccomp). Without it Context::pgetevents() works only with
  /// sigmask == nullptr (it falls back to io_getevents).
  std::error_code pgetevents;
  /// IOCB_CMD_POLL on a readable eventfd, submitted and completed with POLLIN:
  /// invalid_argument (< 4.18: unknown opcode), timed_out (no completion within a second),
  /// protocol_error (completed without POLLIN).
  std::error_code poll;
  /// Context::ring_reaping() of a ReapMode::automatic Context, and the completion of the
  /// poll probe was seen in the ring (Context::ready()) before it was reaped. False under
  /// AIOPP_REAP=syscall / valgrind, or when the ring layout is unknown.
  bool ring_reaping = false;

  [[nodiscard]] bool aio_available() const noexcept { return !setup; }
};

/// Runs the probes above. Never fails as a whole: each outcome is in its field.
[[nodiscard]] Capabilities probe() noexcept;

/// What one file descriptor allows.
struct FdCapabilities {
  /// Opened with O_DIRECT right now (fcntl(F_GETFL)).
  bool o_direct = false;
  /// O_DIRECT alignment from statx(STATX_DIOALIGN) (Linux >= 6.1), or for a block device
  /// its logical block size (BLKSSZGET): memory buffer and file offset/length alignment.
  /// 0 means the file system says O_DIRECT is not supported for this file; std::nullopt
  /// means unknown (older kernel, or a file system that does not report it, e.g. tmpfs).
  std::optional<std::uint32_t> dio_mem_align;
  std::optional<std::uint32_t> dio_offset_align;
  /// A 0-byte RWF_NOWAIT read: empty when accepted; operation_not_supported when the file
  /// does not support non-blocking AIO (tmpfs, many character devices);
  /// bad_file_descriptor when fd is not open for reading.
  std::error_code nowait_read;
  /// A 0-byte read with IOCB_FLAG_IOPRIO best-effort level 4: empty when accepted.
  std::error_code ioprio_best_effort;
  /// The same with the realtime class: operation_not_permitted without CAP_SYS_ADMIN /
  /// CAP_SYS_NICE.
  std::error_code ioprio_realtime;
  /// io_setup() for the probe Context failed: the three request probes above repeat it.
  std::error_code setup;
};

/// Probes `fd`, which the caller keeps open. The read probes read 0 bytes at offset 0 (for
/// files without async read support io_submit performs them synchronously).
/// Errors: bad_file_descriptor when fd is not open. statx() being refused only leaves the
/// alignment unknown.
[[nodiscard]] Result<FdCapabilities> probe_fd(int fd) noexcept;

/// One line per capability, e.g. "io_setup: ok", "io_pgetevents: Operation not permitted".
[[nodiscard]] std::string describe(const Capabilities& caps);
[[nodiscard]] std::string describe(const FdCapabilities& caps);

}  // namespace aio
