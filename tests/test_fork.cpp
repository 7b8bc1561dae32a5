// fork(): a child must not use, reap from or destroy the parent's Context, but may create
// its own. Children report through their exit status (no gtest asserts after fork).
#include <gtest/gtest.h>
#include <sys/wait.h>

#include "test_util.hpp"

namespace {

using namespace aiotest;

int wait_child(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (!WIFEXITED(status)) return 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return WEXITSTATUS(status);
}

bool is_einval(const std::error_code& ec) { return ec == std::errc::invalid_argument; }

TEST(Fork, ChildCannotUseInheritedContextAndDoesNotStealTheParentsCompletion) {
  TempDir dir;
  Fd fd = dir.make_file("f", "parent-data");
  ASSERT_TRUE(fd.ok());
  Fd efd = make_eventfd();
  ASSERT_TRUE(efd.ok());
  auto c = aio::Context::create(8);
  ASSERT_TRUE(c);
  aio::Context& ctx = *c;
  std::string buf(11, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  aio::set_user_data(cb, 77);
  aio::set_eventfd(cb, efd.get());
  ASSERT_TRUE(submit_one(ctx, cb));
  // Wait until the completion sits in the ring (the eventfd is bumped at completion).
  pollfd pfd{efd.get(), POLLIN, 0};
  ASSERT_EQ(::poll(&pfd, 1, 5000), 1);
  ASSERT_EQ(ctx.ready() > 0 || !ctx.ring_reaping(), true);

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    if (ctx.valid()) code |= 1;
    if (static_cast<bool>(ctx)) code |= 1;
    io_event ev[4];
    auto g = ctx.getevents(0, ev, 0ns);
    if (g || !is_einval(g.error())) code |= 2;
    auto g1 = ctx.getevents(1, ev, 100ms);
    if (g1 || !is_einval(g1.error())) code |= 2;
    auto p = ctx.pgetevents(1, ev, 0ns, nullptr);
    if (p || !is_einval(p.error())) code |= 4;
    if (ctx.ready() != 0) code |= 4;
    std::string b(4, '\0');
    iocb mine = aio::make_pread(fd.get(), bytes(b), 0);
    iocb* list[] = {&mine};
    auto s = ctx.submit(list);
    if (s || !is_einval(s.error())) code |= 8;
    auto x = ctx.cancel(cb);
    if (x || !is_einval(x.error())) code |= 16;
    auto d = ctx.destroy();
    if (d || !is_einval(d.error())) code |= 32;
    ::_exit(code);  // the inherited Context's destructor is not run by _exit; see the next test
  }
  EXPECT_EQ(wait_child(pid), 0) << "bit 1: valid, 2: getevents, 4: pgetevents/ready, 8: submit, "
                                   "16: cancel, 32: destroy";
  // The completion is still the parent's to reap.
  ASSERT_TRUE(ctx.valid());
  io_event ev[2];
  auto g = ctx.getevents(1, ev, 2s);
  ASSERT_TRUE(g) << g.error().message();
  ASSERT_EQ(*g, 1u);
  EXPECT_EQ(aio::user_data(ev[0]), 77u);
  EXPECT_EQ(ev[0].res, 11);
  EXPECT_EQ(buf, "parent-data");
}

TEST(Fork, ChildDestructorOfInheritedContextLeavesTheParentsContextAlive) {
  TempDir dir;
  Fd fd = dir.make_file("f", "abc");
  ASSERT_TRUE(fd.ok());
  auto c = aio::Context::create(8);
  ASSERT_TRUE(c);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    {
      aio::Context inherited = std::move(*c);  // move, then destroy, in the child
      if (inherited.valid()) code |= 1;
    }
    {
      aio::Context other;
      other = std::move(*c);  // moved-from already: empty
    }
    ::_exit(code);
  }
  EXPECT_EQ(wait_child(pid), 0);
  // The kernel context still exists: the parent can submit and reap on it.
  ASSERT_TRUE(c->valid());
  std::string buf(3, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  auto n = submit_one(*c, cb);
  ASSERT_TRUE(n) << n.error().message();
  auto evs = reap(*c, 1);
  ASSERT_EQ(evs.size(), 1u);
  EXPECT_EQ(evs[0].res, 3);
}

TEST(Fork, ChildRunsInheritedContextDestructorAtExitWithoutCrashing) {
  auto c = aio::Context::create(8);
  ASSERT_TRUE(c);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    // Runs ~Context on the inherited copy, then exits normally.
    { aio::Context inherited = std::move(*c); }
    aio::Context empty_now = std::move(*c);
    ::_exit(empty_now.native_handle() == 0 ? 0 : 1);
  }
  EXPECT_EQ(wait_child(pid), 0);
  io_event ev[1];
  EXPECT_TRUE(c->getevents(0, ev, 0ns));
}

TEST(Fork, ChildCanCreateAndUseItsOwnContext) {
  TempDir dir;
  Fd fd = dir.make_file("f", "child-data");
  ASSERT_TRUE(fd.ok());
  auto parent = aio::Context::create(8);
  ASSERT_TRUE(parent);
  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    auto own = aio::Context::create(4);
    if (!own) ::_exit(1);
    if (!own->valid()) ::_exit(2);
    if (own->native_handle() == parent->native_handle()) ::_exit(3);
    std::string buf(10, '\0');
    iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
    if (submit_one(*own, cb).value_or(0) != 1) ::_exit(4);
    io_event ev[1];
    auto g = own->getevents(1, ev, 2s);
    if (!g || *g != 1) ::_exit(5);
    if (ev[0].res != 10 || buf != "child-data") ::_exit(6);
    if (!own->destroy()) ::_exit(7);
    if (parent->valid()) ::_exit(8);
    ::_exit(0);
  }
  EXPECT_EQ(wait_child(pid), 0);
  EXPECT_TRUE(parent->valid());
}

}  // namespace
