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

/// Performs the real syscall for `args` and returns the raw result (>= 0 or -errno).
long passthrough(const Args& args) noexcept;

}  // namespace aio::sys::testing
