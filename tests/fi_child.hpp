// Tests that run a scenario in a forked child (fork() itself, resource limits, seccomp
// filters, mount namespaces must not leak into the test process) and, under --coverage, keep
// what the child executed: __gcov_dump() writes its counters before _exit().
#pragma once

#include <aio/aio.hpp>
#include <gtest/gtest.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <vector>

#ifdef AIOPP_COVERAGE
// libgcov (linked by --coverage; the coverage preset defines AIOPP_COVERAGE). A weak
// declaration would not do: a weak reference does not pull the member out of libgcov.a.
extern "C" void __gcov_dump(void);
#endif

namespace aiotest {

/// Runs `body` in a forked child; its return value (0 = pass) is the child's exit status.
/// The child reports why it failed on stderr. Returns the exit status, or -1 if the child
/// did not exit normally.
inline int run_in_child(const std::function<int()>& body) {
  std::fflush(nullptr);
#ifdef AIOPP_COVERAGE
  // GCC's --coverage turns a direct fork() call into __gcov_fork(), which zeroes the child's
  // counters after fork() returns, i.e. after the pthread_atfork child handlers (aiopp's
  // fork guard has one) ran: what they did would never be counted. An indirect call is
  // not rewritten; the child then keeps the counts it inherited (counted twice: harmless).
  pid_t (*volatile do_fork)() = &::fork;
  const pid_t pid = do_fork();
#else
  const pid_t pid = ::fork();
#endif
  if (pid < 0) return -1;
  if (pid == 0) {
    const int rc = body();
#ifdef AIOPP_COVERAGE
    __gcov_dump();
#endif
    ::_exit(rc);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/// Child-side check: prints the failed condition and makes the child exit with `code`.
#define AIOTEST_CHILD_CHECK(cond, code)                                             \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "child check failed (%d): %s\n", (code), #cond);         \
      return (code);                                                                \
    }                                                                               \
  } while (0)

/// Child side, after fork(): `inherited` (the parent's Context) refuses every call with
/// invalid_argument, without blocking, and shows nothing of the parent's ring; `cb` is any
/// iocb. Returns 0, or the code (40 to 47) of the first check that failed.
inline int check_inherited_refused(aio::Context& inherited, iocb& cb) {
  auto einval = [](const auto& r) { return !r && r.error() == std::errc::invalid_argument; };
  AIOTEST_CHILD_CHECK(!inherited.valid() && !static_cast<bool>(inherited), 40);
  AIOTEST_CHILD_CHECK(inherited.ready() == 0, 41);
  io_event ev[4];
  AIOTEST_CHILD_CHECK(einval(inherited.getevents(0, ev, std::chrono::nanoseconds(0))), 42);
  AIOTEST_CHILD_CHECK(einval(inherited.getevents(1, ev, std::chrono::milliseconds(100))), 43);
  AIOTEST_CHILD_CHECK(einval(inherited.pgetevents(1, ev, std::chrono::nanoseconds(0), nullptr)), 44);
  iocb* list[] = {&cb};
  AIOTEST_CHILD_CHECK(einval(inherited.submit(list)), 45);
  AIOTEST_CHILD_CHECK(einval(inherited.cancel(cb)), 46);
  AIOTEST_CHILD_CHECK(einval(inherited.destroy()), 47);
  return 0;
}

/// Under valgrind (it preloads vgpreload_*.so, which is also how the library notices it).
inline bool under_valgrind() {
  const char* preload = std::getenv("LD_PRELOAD");
  return preload != nullptr && std::strstr(preload, "vgpreload") != nullptr;
}

/// Exit status of a child whose environment lacks what the test needs (parent: GTEST_SKIP).
inline constexpr int child_cannot = 77;

/// The audit architecture of the ABI this is built for, which seccomp_fail_syscalls() filters;
/// 0 where the filter is not written for it (then it refuses to install).
#if defined(__x86_64__) && !defined(__ILP32__)
inline constexpr unsigned seccomp_arch = AUDIT_ARCH_X86_64;
#elif defined(__i386__)
inline constexpr unsigned seccomp_arch = AUDIT_ARCH_I386;
#else
inline constexpr unsigned seccomp_arch = 0;
#endif

/// Installs a seccomp filter (raw BPF, no libseccomp) in the calling thread that makes the
/// syscalls `nrs` fail with `err` and lets everything else through. Needs
/// PR_SET_NO_NEW_PRIVS (set here): irreversible, so call it only in a child. Returns false
/// if the kernel refused the filter (or seccomp_arch is 0).
inline bool seccomp_fail_syscalls(std::initializer_list<long> nrs, int err) {
  if (seccomp_arch == 0) return false;
  std::vector<sock_filter> filter = {
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(struct seccomp_data, arch))),
      BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, seccomp_arch, 1, 0),
      BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),  // another ABI: not ours to filter
      BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(struct seccomp_data, nr))),
  };
  std::size_t left = nrs.size();
  for (const long nr : nrs) {  // a match jumps over the rest and the ALLOW, to the ERRNO
    filter.push_back(
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, static_cast<unsigned>(nr), static_cast<unsigned char>(left), 0));
    --left;
  }
  filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  filter.push_back(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)));
  struct sock_fprog prog = {static_cast<unsigned short>(filter.size()), filter.data()};
  if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return false;
  return ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) == 0;  // ENOSYS under valgrind
}
/// seccomp_fail_syscalls() for one syscall.
inline bool seccomp_fail_syscall(long nr, int err) { return seccomp_fail_syscalls({nr}, err); }

}  // namespace aiotest
