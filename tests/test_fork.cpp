// fork(): a child must not use, reap from or destroy the parent's Context, but may create
// its own. Children run through run_in_child() and report through their exit status (no
// gtest asserts after fork).
#include <gtest/gtest.h>

#include "fi_child.hpp"
#include "test_util.hpp"

namespace {

using namespace aiotest;

// The completion already sits in the parent's ring when the child is forked: the child can
// neither see nor reap it, and every call on the inherited Context is refused.
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

  EXPECT_EQ(run_in_child([&] { return check_inherited_refused(ctx, cb); }), 0);
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

// ~Context of the inherited copy (moved, move-assigned, destroyed at scope end in the child)
// leaves the parent's kernel context alone.
TEST(Fork, ChildDestructorOfInheritedContextLeavesTheParentsContextAlive) {
  TempDir dir;
  Fd fd = dir.make_file("f", "abc");
  ASSERT_TRUE(fd.ok());
  auto c = aio::Context::create(8);
  ASSERT_TRUE(c);
  EXPECT_EQ(run_in_child([&]() -> int {
              {
                aio::Context inherited = std::move(*c);  // move, then destroy, in the child
                AIOTEST_CHILD_CHECK(!inherited.valid(), 1);
              }
              aio::Context other;
              other = std::move(*c);  // moved-from already: empty
              AIOTEST_CHILD_CHECK(other.native_handle() == 0, 2);
              return 0;
            }),
            0);
  // The kernel context still exists: the parent can submit and reap on it.
  ASSERT_TRUE(c->valid());
  std::string buf(3, '\0');
  iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
  EXPECT_EQ(run_one(*c, cb).res, 3);
}

TEST(Fork, ChildCanCreateAndUseItsOwnContext) {
  TempDir dir;
  Fd fd = dir.make_file("f", "child-data");
  ASSERT_TRUE(fd.ok());
  auto parent = aio::Context::create(8);
  ASSERT_TRUE(parent);
  EXPECT_EQ(run_in_child([&]() -> int {
              auto own = aio::Context::create(4);
              AIOTEST_CHILD_CHECK(own && own->valid(), 1);
              AIOTEST_CHILD_CHECK(own->native_handle() != parent->native_handle(), 2);
              std::string buf(10, '\0');
              iocb cb = aio::make_pread(fd.get(), bytes(buf), 0);
              AIOTEST_CHILD_CHECK(submit_one(*own, cb).value_or(0) == 1, 3);
              io_event ev[1];
              auto g = own->getevents(1, ev, 2s);
              AIOTEST_CHILD_CHECK(g && *g == 1, 4);
              AIOTEST_CHILD_CHECK(ev[0].res == 10 && buf == "child-data", 5);
              AIOTEST_CHILD_CHECK(own->destroy(), 6);
              AIOTEST_CHILD_CHECK(!parent->valid(), 7);
              return 0;
            }),
            0);
  EXPECT_TRUE(parent->valid());
}

}  // namespace
