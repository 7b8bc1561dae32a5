// The fork guard (src/fork_guard.*) in a fresh process image: the incarnation page is
// mapped once per image, so the paths of its first use are tested in a re-executed copy
// of this program (AIOPP_FRESH_CHILD set), where nothing has touched aiopp yet.
//  - mmap refused (RLIMIT_DATA 1 byte: a private writable mapping counts as data, Linux >= 4.7):
//    the guard falls back to a static id, reset in a child by the pthread_atfork handler;
//  - a forked child gets a new id: the inherited Context is refused without a syscall,
//    its destructor leaves the parent's context alone, a new Context works.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <cstdlib>
#include <string>

#include "fi_child.hpp"
#include "fork_guard.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;

bool fresh_child() { return std::getenv("AIOPP_FRESH_CHILD") != nullptr; }

// Re-executes this program for one test, in a fresh image; returns its exit status.
int run_fresh(const char* test) {
  const std::string filter = std::string("--gtest_filter=") + test;
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::setenv("AIOPP_FRESH_CHILD", "1", 1);
    const char* argv[] = {"/proc/self/exe", filter.c_str(), "--gtest_brief=1", nullptr};
    ::execv("/proc/self/exe", const_cast<char* const*>(argv));
    ::_exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// In the child: the inherited Context is not ours; a new one is.
int child_checks(aio::Context& inherited, int fd) {
  std::string buf(4, '\0');
  iocb cb = aio::make_pread(fd, bytes(buf), 0);
  if (const int rc = check_inherited_refused(inherited, cb); rc != 0) return rc;
  auto own = aio::Context::create(4);
  AIOTEST_CHILD_CHECK(own && own->valid(), 23);
  AIOTEST_CHILD_CHECK(submit_one(*own, cb), 24);
  AIOTEST_CHILD_CHECK(reap(*own, 1).size() == 1, 25);
  return 0;
}

// Both checks, in whatever image runs them: a Context, a forked child using it, then the
// parent still owns and uses it.
void fork_and_check() {
  TempDir dir;
  Fd fd = dir.make_file("f", pattern(16));
  ASSERT_TRUE(fd.ok());
  auto ctx = aio::Context::create(4);
  ASSERT_TRUE(ctx);
  EXPECT_EQ(run_in_child([&] { return child_checks(*ctx, fd.get()); }), 0);
  // A move-assigned Context destroys what it held first: in the child that was the parent's.
  EXPECT_EQ(run_in_child([&]() -> int {
              auto own = aio::Context::create(4);
              AIOTEST_CHILD_CHECK(own, 30);
              aio::Context moved = std::move(*ctx);  // the parent's, not ours
              moved = std::move(*own);               // close() of the parent's: refused
              AIOTEST_CHILD_CHECK(moved.valid(), 31);
              return 0;
            }),
            0);
  EXPECT_TRUE(ctx->valid()) << "the children never destroyed the parent's context";
  std::string buf(4, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  EXPECT_EQ(run_one(*ctx, cb).res, 4);
}

TEST(ForkGuardFresh, PageCannotBeMapped) {
  if (under_valgrind()) GTEST_SKIP() << "valgrind: /proc/self/exe is its tool, and it emulates RLIMIT_DATA";
  if (!fresh_child()) {
    EXPECT_EQ(run_fresh("ForkGuardFresh.PageCannotBeMapped"), 0);
    return;
  }
  ASSERT_EQ(aio::detail::g_incarnation.load(), nullptr) << "a fresh image has no incarnation yet";
  struct rlimit old {};
  ASSERT_EQ(::getrlimit(RLIMIT_DATA, &old), 0);
  struct rlimit none = old;
  none.rlim_cur = 1;  // not 0: the kernel lets a 0 soft limit through (a valgrind workaround)
  ASSERT_EQ(::setrlimit(RLIMIT_DATA, &none), 0);
  // Nothing between here and the restore may allocate: only the first use of the guard.
  const std::uint64_t id = aio::detail::process_incarnation();
  ::setrlimit(RLIMIT_DATA, &old);
  EXPECT_NE(id, 0U);
  aio::detail::Incarnation* inc = aio::detail::g_incarnation.load();
  ASSERT_NE(inc, nullptr);
  // The fallback is a static object of fork_guard.cpp, next to g_incarnation; a mapped page
  // would be far away, in the mmap area.
  const auto here = reinterpret_cast<std::uintptr_t>(&aio::detail::g_incarnation);
  const auto at = reinterpret_cast<std::uintptr_t>(inc);
  EXPECT_LT(at > here ? at - here : here - at, std::uintptr_t{1} << 20) << "the static fallback is in use";
  fork_and_check();
}

TEST(ForkGuardFresh, PageMapped) {
  if (under_valgrind()) GTEST_SKIP() << "valgrind: /proc/self/exe is its tool, and it emulates RLIMIT_DATA";
  if (!fresh_child()) {
    EXPECT_EQ(run_fresh("ForkGuardFresh.PageMapped"), 0);
    return;
  }
  ASSERT_EQ(aio::detail::g_incarnation.load(), nullptr) << "a fresh image has no incarnation yet";
  const std::uint64_t id = aio::detail::process_incarnation();
  EXPECT_NE(id, 0U);
  const auto here = reinterpret_cast<std::uintptr_t>(&aio::detail::g_incarnation);
  const auto at = reinterpret_cast<std::uintptr_t>(aio::detail::g_incarnation.load());
  EXPECT_EQ(at % 4096, 0U) << "the id lives at the start of its own anonymous page";
  EXPECT_GE(at > here ? at - here : here - at, std::uintptr_t{1} << 20);
  fork_and_check();
}

}  // namespace
