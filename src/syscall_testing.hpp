// aiopp — fault-injection seam of the private syscall shim (tests only).
//
// Available only in the `aiopp_fi` library (the same sources compiled with
// AIOPP_FAULT_INJECTION). A test installs a hook; the shim calls it before every syscall
// with the call's arguments. The hook returns either the raw result to pretend the kernel
// gave (a value >= 0, or -errno) or, by calling passthrough(), the real kernel's answer —
// possibly for altered arguments (e.g. a smaller nr to force a partial submit).
#pragma once

#include "syscall.hpp"

namespace aio::sys::testing {

struct Args {
  Call call;
  aio_context_t ctx;            // setup: 0
  long nr;                      // setup: nr_events; submit/getevents: nr
  long min_nr;                  // getevents/pgetevents
  iocb* const* iocbs;           // submit
  iocb* cb;                     // cancel
  io_event* events;             // getevents/pgetevents; cancel: result
  const KernelTimespec* timeout;
  const AioSigset* sig;         // pgetevents
  aio_context_t* ctxp;          // setup: where the new handle goes
};

/// Returns the raw result (>= 0 or -errno) the shim should report for this call.
using Hook = long (*)(Args& args, void* user);

/// Installs `hook` (nullptr removes it). Not thread-safe against concurrent syscalls
/// through the shim: install before starting threads.
void set_hook(Hook hook, void* user) noexcept;

#if __SIZEOF_LONG__ == 4
/// With true, the shim behaves as on a kernel without io_pgetevents_time64 (< 5.1): waits
/// use the time32 calls. With false, io_pgetevents_time64 is tried again.
/// Thread safety: as set_hook.
inline void force_time32(bool on) noexcept { raw::time64_missing.store(on, std::memory_order_relaxed); }
#endif

/// Performs the real syscall for `args` and returns the raw result (>= 0 or -errno).
long passthrough(const Args& args) noexcept;

}  // namespace aio::sys::testing
