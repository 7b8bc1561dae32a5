// aiopp trace — one process's AIO record, as the interposer (libaiopp-trace.so) writes it
// into a shared file mapping and aio-trace reads it back after the process is gone.
//
// Layout contract: the interposer and the tool are built from this one header; a file whose
// magic, version or size differ is not read. Every field is zero in a fresh file except
// what Record::init() sets, so a zero-filled mapping is a valid empty record.
// Thread safety: every counter is atomic; the tool may read while the process writes.
#pragma once

#include <linux/aio_abi.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "aio/observer.hpp"
#include "aio/syscall_kind.hpp"

namespace aio::trace {

inline constexpr std::uint64_t record_magic = 0x3172747070696f61ULL;  // "aiopptr1"
inline constexpr std::uint32_t record_version = 4;

/// Environment: the directory records are written to (set by aio-trace), and the switch.
inline constexpr const char* env_dir = "AIOPP_TRACE_DIR";
inline constexpr const char* env_switch = "AIOPP_TRACE";  // "off": no recording

/// Files named in the per-file breakdown; later files are counted together as "other".
inline constexpr std::size_t max_files = 32;
/// IOCB_CMD_* values 0..8 (PREAD, PWRITE, FSYNC, FDSYNC, 4 unused, POLL, NOOP, PREADV, PWRITEV).
inline constexpr std::size_t opcodes = 9;
/// Requests timed at once (twice the deepest queue a program usually keeps is plenty).
inline constexpr std::size_t inflight_slots = 8192;
/// How far a request's slot may be from its hash: a bounded probe, then "untracked".
inline constexpr std::size_t max_probe = 64;
inline constexpr std::size_t errno_slots = Observer::errno_slots;

/// One file requests were made on.
struct FileStats {
  std::array<char, 240> path{};          ///< /proc/self/fd/N's target when first seen
  std::atomic<std::uint64_t> requests{0};  ///< accepted by io_submit
  std::atomic<std::uint64_t> errors{0};    ///< completions with res < 0
  LatencyHistogram latency;                ///< submit -> reaped completion
};

/// One request in flight: the iocb address (0 empty, 1 free again, 2 being filled), the
/// submit time, its context and (opcode << 8 | file index).
struct InflightSlot {
  std::atomic<std::uint64_t> key{0};
  std::atomic<std::int64_t> t0{0};
  std::atomic<std::uint64_t> ctx{0};
  std::atomic<std::uint32_t> meta{0};
};
inline constexpr std::uint64_t slot_empty = 0;
inline constexpr std::uint64_t slot_free = 1;
inline constexpr std::uint64_t slot_busy = 2;

/// A completion reaped before its request was entered into the table (another thread reaped
/// it between io_submit's return and the entry): its iocb address (0 none, 2 being filled),
/// reap time and whether it failed.
struct EarlyCompletion {
  std::atomic<std::uint64_t> key{0};
  std::atomic<std::int64_t> reaped_ns{0};
  std::atomic<std::uint32_t> failed{0};
};
inline constexpr std::size_t early_slots = 64;

/// One request tuple (file, opcode, offset, length) and how many accepted requests had it:
/// the same read or write issued again and again. tag: a hash of the tuple, never 0 (empty).
struct RequestTuple {
  std::atomic<std::uint64_t> tag{0};
  std::atomic<std::uint64_t> count{0};
  std::atomic<std::uint32_t> meta{0};  ///< opcode << 8 | file index
  std::atomic<std::int64_t> offset{0};
  std::atomic<std::uint64_t> nbytes{0};
};
/// Distinct tuples counted: the first ones seen (a bounded probe each); later new tuples are
/// only counted as dropped.
inline constexpr std::size_t request_tuple_slots = 4096;
inline constexpr std::size_t request_tuple_probe = 8;

/// The whole record of one process image.
struct Record {
  // ---- header (set once by init()) ----
  std::uint64_t magic = 0;
  std::uint32_t version = 0;
  std::uint32_t size = 0;
  std::int32_t pid = 0;
  std::int32_t ppid = 0;
  std::int64_t start_ns = 0;  ///< CLOCK_MONOTONIC at start-up (or at fork)
  std::array<char, 256> exe{};
  std::array<char, 256> cmdline{};  ///< argv joined by spaces, truncated
  std::atomic<std::uint32_t> exited{0};  ///< 1 when exit() ran the library's destructor
  std::atomic<std::int64_t> first_call_ns{0}, last_call_ns{0};  ///< first and latest AIO syscall

  // ---- syscalls ----
  Observer observer{0};  ///< by kind, errors by errno, batch sizes, repeated call tuples
  std::array<LatencyHistogram, syscall_kinds> duration{};
  std::array<std::array<std::atomic<std::uint64_t>, errno_slots>, syscall_kinds> call_errors{};
  std::atomic<std::uint64_t> empty_polls{0};  ///< io_getevents with a zero timeout answered from an empty ring
  std::atomic<std::uint64_t> contexts{0};     ///< successful io_setup

  // ---- requests ----
  std::atomic<std::uint64_t> submitted{0};     ///< accepted by the kernel
  std::atomic<std::uint64_t> completed{0};     ///< matched completions (latency measured)
  std::atomic<std::uint64_t> unmatched{0};     ///< completions of requests not in the table (and early[] full)
  std::atomic<std::uint64_t> untracked{0};     ///< accepted but not timed (table crowded)
  std::atomic<std::uint64_t> destroyed_unseen{0};  ///< still in the table when their context was destroyed
  std::atomic<std::int64_t> inflight{0};
  std::atomic<std::int64_t> inflight_hwm{0};
  std::array<std::atomic<std::uint64_t>, errno_slots> request_errors{};  ///< completions' -res
  std::array<LatencyHistogram, opcodes> latency_by_op{};  ///< every matched completion, by opcode
  std::array<std::atomic<std::uint64_t>, opcodes> requests_by_op{};
  std::array<std::atomic<std::uint64_t>, opcodes> errors_by_op{};

  std::atomic<std::uint32_t> file_lock{0};
  std::atomic<std::uint32_t> file_count{0};
  std::array<FileStats, max_files + 1> files{};  ///< [max_files] is "other files"

  std::array<RequestTuple, request_tuple_slots> request_tuples{};
  std::atomic<std::uint64_t> request_tuples_dropped{0};  ///< requests whose new tuple found no slot

  std::array<InflightSlot, inflight_slots> table{};
  std::atomic<std::uint32_t> early_count{0};
  std::array<EarlyCompletion, early_slots> early{};  ///< still parked at exit: unmatched completions
};

}  // namespace aio::trace
