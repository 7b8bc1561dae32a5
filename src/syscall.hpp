// aiopp — private syscall shim. NOT installed, NOT public API.
//
// The only code in aiopp that makes the AIO syscalls and the only code that reads errno for
// them. One convention, decided here: the raw layer (namespace raw) returns what the kernel
// returns — a value >= 0 or -errno, like liburing's __sys_* helpers — and the typed layer
// turns -errno into aio::Result errors. On x86-64 the raw layer is the `syscall`
// instruction (as liburing's arch/x86 layer does); elsewhere glibc's ::syscall(). Every
// argument is a `long` either way, so a negative int can never arrive as a huge count
// through the variadic ::syscall().
//
// Everything is inline: the shipped library pays for the shim exactly nothing over a
// hand-written syscall() call (see BENCHMARKS.md).
//
// ABIs. aio_context_t is the kernel's `unsigned long` (the ring's address): 64 bits on LP64,
// 32 on ILP32. struct iocb and struct io_event have 64-bit fields on every ABI: pointers go
// in through uintptr_t and come back narrowed (the kernel zero-extends them). Every syscall
// argument here is a pointer or a value that fits a `long` on every ABI; no 64-bit value is
// ever passed as one argument.
//
// Time. On LP64 io_getevents/io_pgetevents take a 64-bit timespec. On ILP32 (i386, armhf)
// those two take a 32-bit time_t; a wait goes through io_pgetevents_time64 (Linux >= 5.1;
// a null sigset where io_getevents is meant) and falls back to the time32 calls only when
// the kernel answers ENOSYS. A timeout whose seconds do not fit 32 bits is then refused
// with -EOVERFLOW (std::errc::value_too_large), never truncated.
//
// Fault injection: when compiled with AIOPP_FAULT_INJECTION (only the test-only `aiopp_fi`
// library is), the typed layer goes through hooked_*() in syscall.cpp, which consult a hook
// that tests install (see syscall_testing.hpp). The shipped libaiopp.a has no hook.
#pragma once

#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <limits>

#include "aio/result.hpp"
#include "aio/syscall_kind.hpp"

namespace aio::sys {

/// True on ABIs whose `long` is 32 bits (i386, armhf): their io_getevents/io_pgetevents take
/// a 32-bit time_t and io_pgetevents_time64 is the 64-bit-time call.
inline constexpr bool ilp32 = sizeof(long) == 4;
static_assert(sizeof(long) == sizeof(void*), "an LP64 or ILP32 Linux ABI");
static_assert(sizeof(aio_context_t) == sizeof(long), "aio_context_t is the kernel's unsigned long");
#if __SIZEOF_LONG__ == 4 && !defined(SYS_io_pgetevents_time64)
#error "32-bit target without SYS_io_pgetevents_time64: kernel headers >= 5.1 are needed"
#endif

/// The kernel's struct __kernel_timespec: 64-bit time on every ABI.
struct KernelTimespec {
  long long tv_sec;
  long long tv_nsec;
};
static_assert(sizeof(KernelTimespec) == 16);

/// io_pgetevents' last argument ("struct __aio_sigset" in the kernel).
struct AioSigset {
  const sigset_t* sigmask;
  std::size_t sigsetsize;
};

/// The kernel's sigset size is _NSIG/8 (8 bytes on x86-64); glibc's sizeof(sigset_t) is 128
/// and the kernel rejects that with EINVAL.
inline constexpr std::size_t kernel_sigset_size = _NSIG / 8;

/// The shim's calls are the observer's (one enum of syscalls).
using Call = ::aio::Syscall;

namespace raw {
#if defined(__x86_64__)
// The syscall instruction itself, as the kernel's x86-64 ABI defines it (number in rax,
// arguments in rdi, rsi, rdx, r10, r8, r9; rcx and r11 clobbered; result in rax). The
// kernel already answers -errno, so there is no errno to read and nothing to fold: this is
// cheaper than glibc's variadic syscall(), which moves every argument and sets errno.
// NOLINTNEXTLINE(bugprone-easily-swappable-parameters): syscall ABI, every argument is a long
[[nodiscard]] inline long invoke(long nr, long a1, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                                 long a6 = 0) noexcept {
  long ret;  // NOLINT(cppcoreguidelines-init-variables): output of the asm below
  register long r10 __asm__("r10") = a4;
  register long r8 __asm__("r8") = a5;
  register long r9 __asm__("r9") = a6;
  __asm__ volatile("syscall"
                   : "=a"(ret)
                   : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                   : "rcx", "r11", "memory");
  return ret;
}
#else
// Elsewhere through glibc's syscall(): it reports failure as -1 with errno set, folded
// into -errno, once, here. Every argument is a long: syscall() is variadic.
// NOLINTNEXTLINE(bugprone-easily-swappable-parameters): syscall ABI, every argument is a long
[[nodiscard]] inline long invoke(long nr, long a1, long a2 = 0, long a3 = 0, long a4 = 0, long a5 = 0,
                                 long a6 = 0) noexcept {
  const long r = ::syscall(nr, a1, a2, a3, a4, a5, a6);
  return r == -1 ? -errno : r;
}
#endif

template <class T>
[[nodiscard]] inline long arg(T* p) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): syscall arguments are longs
  return static_cast<long>(reinterpret_cast<std::uintptr_t>(p));
}

[[nodiscard]] inline long setup(long nr, aio_context_t* ctxp) noexcept {
  return invoke(SYS_io_setup, nr, arg(ctxp));
}
[[nodiscard]] inline long destroy(aio_context_t ctx) noexcept {
  return invoke(SYS_io_destroy, static_cast<long>(ctx));
}
[[nodiscard]] inline long submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  return invoke(SYS_io_submit, static_cast<long>(ctx), nr, arg(iocbs));
}
[[nodiscard]] inline long cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  return invoke(SYS_io_cancel, static_cast<long>(ctx), arg(cb), arg(result));
}
#if __SIZEOF_LONG__ == 8
[[nodiscard]] inline long getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                    const KernelTimespec* timeout) noexcept {
  return invoke(SYS_io_getevents, static_cast<long>(ctx), min_nr, nr, arg(events), arg(timeout));
}
[[nodiscard]] inline long pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                     const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  return invoke(SYS_io_pgetevents, static_cast<long>(ctx), min_nr, nr, arg(events), arg(timeout), arg(sig));
}
#else
/// The time32 calls' struct old_timespec32.
struct Timespec32 {
  std::int32_t tv_sec;
  std::int32_t tv_nsec;
};

/// Set once io_pgetevents_time64 answered ENOSYS: from then on the time32 calls are used.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): what the kernel offers, process-wide
inline std::atomic<bool> time64_missing{false};

/// `timeout` narrowed for a time32 call, in `storage`; false when a field does not fit 32
/// bits (nothing is validated beyond that: the kernel does what it does with the values).
[[nodiscard]] inline bool to_time32(const KernelTimespec* timeout, Timespec32& storage,
                                    const Timespec32*& out) noexcept {
  out = nullptr;
  if (timeout == nullptr) return true;
  constexpr long long lo = std::numeric_limits<std::int32_t>::min();
  constexpr long long hi = std::numeric_limits<std::int32_t>::max();
  if (timeout->tv_sec < lo || timeout->tv_sec > hi || timeout->tv_nsec < lo || timeout->tv_nsec > hi) [[unlikely]]
    return false;
  storage = {static_cast<std::int32_t>(timeout->tv_sec), static_cast<std::int32_t>(timeout->tv_nsec)};
  out = &storage;
  return true;
}

// The generic 32-bit ABIs without time32 syscalls (riscv32) have neither time32 call.
#ifdef SYS_io_getevents
inline constexpr long nr_getevents_time32 = SYS_io_getevents;
#else
inline constexpr long nr_getevents_time32 = -1;
#endif
#ifdef SYS_io_pgetevents
inline constexpr long nr_pgetevents_time32 = SYS_io_pgetevents;
#else
inline constexpr long nr_pgetevents_time32 = -1;
#endif

/// io_pgetevents_time64; after ENOSYS (kernel < 5.1), `nr_time32` (io_getevents or
/// io_pgetevents) with the timeout narrowed, or -EOVERFLOW when it does not fit.
[[nodiscard]] inline long pgetevents_any(long nr_time32, aio_context_t ctx, long min_nr, long nr, io_event* events,
                                         const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  if (!time64_missing.load(std::memory_order_relaxed)) [[likely]] {
    const long r =
        invoke(SYS_io_pgetevents_time64, static_cast<long>(ctx), min_nr, nr, arg(events), arg(timeout), arg(sig));
    if (r != -ENOSYS) [[likely]]
      return r;
    time64_missing.store(true, std::memory_order_relaxed);
  }
  if (nr_time32 < 0) return -ENOSYS;
  Timespec32 storage{};
  const Timespec32* ts32 = nullptr;
  if (!to_time32(timeout, storage, ts32)) [[unlikely]]
    return -EOVERFLOW;
  return invoke(nr_time32, static_cast<long>(ctx), min_nr, nr, arg(events), arg(ts32), arg(sig));
}

/// io_getevents with a 64-bit timeout: io_pgetevents_time64 with no sigset.
[[nodiscard]] inline long getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                    const KernelTimespec* timeout) noexcept {
  // The sigset is null: io_pgetevents_time64 then is io_getevents, and io_getevents
  // ignores a sixth argument.
  return pgetevents_any(nr_getevents_time32, ctx, min_nr, nr, events, timeout, nullptr);
}
[[nodiscard]] inline long pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                     const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  return pgetevents_any(nr_pgetevents_time32, ctx, min_nr, nr, events, timeout, sig);
}
#endif
}  // namespace raw

// NOLINTBEGIN(cppcoreguidelines-macro-usage): picks the call's name at compile time (token pasting)
#ifdef AIOPP_FAULT_INJECTION
// syscall.cpp: the installed test hook's answer, or the raw call when none is installed.
[[nodiscard]] long hooked_setup(long nr, aio_context_t* ctxp) noexcept;
[[nodiscard]] long hooked_destroy(aio_context_t ctx) noexcept;
[[nodiscard]] long hooked_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept;
[[nodiscard]] long hooked_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept;
[[nodiscard]] long hooked_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                    const KernelTimespec* timeout) noexcept;
[[nodiscard]] long hooked_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                     const KernelTimespec* timeout, const AioSigset* sig) noexcept;
#define AIOPP_SHIM(call) hooked_##call
#else
#define AIOPP_SHIM(call) raw::call
#endif
// NOLINTEND(cppcoreguidelines-macro-usage)

// ---- The typed layer: the one conversion from the raw convention to Result. ------------

// Errors are built out of line (std::system_category() is a call): the success path of a
// wrapper then makes no call but the syscall itself and needs no saved registers.
[[nodiscard, gnu::cold, gnu::noinline]] inline Result<std::size_t> count_error(long r) noexcept {
  return fail(static_cast<int>(-r));
}

[[nodiscard]] inline Result<std::size_t> count_result(long r) noexcept {
  if (r < 0) [[unlikely]]
    return count_error(r);
  return static_cast<std::size_t>(r);
}

[[nodiscard]] inline Result<aio_context_t> io_setup(unsigned nr_events) noexcept {
  aio_context_t ctx = 0;  // the kernel requires *ctxp == 0 on entry
  const long r = AIOPP_SHIM(setup)(static_cast<long>(nr_events), &ctx);
  if (r < 0) return fail(static_cast<int>(-r));
  return ctx;
}

[[nodiscard]] inline Result<void> io_destroy(aio_context_t ctx) noexcept {
  const long r = AIOPP_SHIM(destroy)(ctx);
  if (r < 0) return fail(static_cast<int>(-r));
  return {};
}

[[nodiscard]] inline Result<std::size_t> io_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  return count_result(AIOPP_SHIM(submit)(ctx, nr, iocbs));
}

/// Success is 0 (old kernels) or -EINPROGRESS (the kernel accepted the cancellation and will
/// deliver the event through the ring): both are returned as values. Other -errno are errors.
[[nodiscard]] inline Result<long> io_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  const long r = AIOPP_SHIM(cancel)(ctx, cb, result);
  if (r < 0 && r != -EINPROGRESS) return fail(static_cast<int>(-r));
  return r;
}

[[nodiscard]] inline Result<std::size_t> io_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                                      const KernelTimespec* timeout) noexcept {
  return count_result(AIOPP_SHIM(getevents)(ctx, min_nr, nr, events, timeout));
}

[[nodiscard]] inline Result<std::size_t> io_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                                       const KernelTimespec* timeout, const AioSigset* sig) noexcept {
  return count_result(AIOPP_SHIM(pgetevents)(ctx, min_nr, nr, events, timeout, sig));
}

#undef AIOPP_SHIM

}  // namespace aio::sys
