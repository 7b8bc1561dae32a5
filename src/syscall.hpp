// aiopp — private syscall shim. NOT installed, NOT public API.
//
// The only code in aiopp that calls ::syscall() and the only code that reads errno. One
// convention, decided here: the raw layer returns what the kernel returns (a value >= 0 or
// -errno, like liburing's __sys_* helpers), and the typed layer turns -errno into
// aio::Result errors. Every integer argument is passed to the variadic ::syscall() as
// `long`, so a negative int can never arrive as a huge count.
//
// Fault injection: when compiled with AIOPP_FAULT_INJECTION (only the test-only
// `aiopp_fi` library is), every call first goes through a hook that tests install (see
// syscall_testing.hpp). The shipped libaiopp.a has no hook and no extra branch.
#pragma once

#include <linux/aio_abi.h>
#include <signal.h>

#include <cstddef>
#include <cstdint>

#include "aio/result.hpp"

namespace aio::sys {

/// The kernel's struct __kernel_timespec (64-bit time on every 64-bit target).
struct KernelTimespec {
  long long tv_sec;
  long long tv_nsec;
};

/// io_pgetevents' last argument ("struct __aio_sigset" in the kernel).
struct AioSigset {
  const sigset_t* sigmask;
  std::size_t sigsetsize;
};

/// The kernel's sigset size is _NSIG/8 (8 bytes on x86-64); glibc's sizeof(sigset_t) is 128
/// and the kernel rejects that with EINVAL.
inline constexpr std::size_t kernel_sigset_size = _NSIG / 8;

enum class Call : std::uint8_t { setup, destroy, submit, cancel, getevents, pgetevents };

[[nodiscard]] Result<aio_context_t> io_setup(unsigned nr_events) noexcept;
[[nodiscard]] Result<void> io_destroy(aio_context_t ctx) noexcept;
[[nodiscard]] Result<std::size_t> io_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept;
/// Returns the raw success value: 0 (old kernels, event copied to *result) or -EINPROGRESS
/// is *not* an error here — the caller decides what it means. Other -errno are errors.
[[nodiscard]] Result<long> io_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept;
[[nodiscard]] Result<std::size_t> io_getevents(aio_context_t ctx, long min_nr, long nr,
                                               io_event* events, const KernelTimespec* timeout) noexcept;
[[nodiscard]] Result<std::size_t> io_pgetevents(aio_context_t ctx, long min_nr, long nr,
                                                io_event* events, const KernelTimespec* timeout,
                                                const AioSigset* sig) noexcept;

}  // namespace aio::sys
