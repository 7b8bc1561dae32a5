// Contract violations that abort with a message: in a debug build (!NDEBUG: this program is
// built with -UNDEBUG) destroying a coroutine suspended in an Engine request and starting a
// started Op; in every build, moving an Engine with requests started.
#include <coroutine>
#include <cstdlib>

#include "test_engine_util.hpp"

#ifdef NDEBUG
#error "test_engine_debug checks the debug-build contract checks: build it without NDEBUG"
#endif

namespace {

using namespace aiotest;

// An eager, never-destroyed driver: starts what it awaits and leaves it suspended.
struct Eager {
  struct promise_type {
    Eager get_return_object() noexcept { return {}; }
    std::suspend_never initial_suspend() noexcept { return {}; }
    std::suspend_never final_suspend() noexcept { return {}; }
    void return_void() noexcept {}
    void unhandled_exception() noexcept { std::abort(); }
  };
};

Eager drive(aio::Task<void>& task) { co_await task; }

aio::Task<void> poll_forever(aio::Engine& e, int fd) { (void)co_await e.poll(fd, aio::PollEvents::in); }
aio::Task<void> read_block(aio::Engine& e, int fd) {
  std::array<std::byte, 64> b{};
  (void)co_await e.read(fd, b, 0);
}

// The Engine is created inside the death statement: a forked child cannot use its parent's.
void destroy_task_suspended_in_poll() {
  auto e = aio::Engine::create({.queue_depth = 4});
  Pipe p;
  if (!e || !p.ok()) std::exit(3);
  aio::Task<void> t = poll_forever(*e, p.rd.get());
  drive(t);
  (void)e->flush();
  { aio::Task<void> gone = std::move(t); }  // destroys the frame: the poll is in flight
  std::exit(0);
}

void destroy_task_with_queued_read() {
  auto e = aio::Engine::create({.queue_depth = 4});
  if (!e) std::exit(3);
  aio::Task<void> t = read_block(*e, 0);
  drive(t);  // started, queued: not yet submitted
  { aio::Task<void> gone = std::move(t); }
  std::exit(0);
}

void start_twice() {
  auto e = aio::Engine::create({.queue_depth = 4});
  if (!e) std::exit(3);
  aio::Op op{.cb = aio::make_fsync(0)};
  e->start(op);
  e->start(op);
  std::exit(0);
}

void move_busy_engine() {
  auto e = aio::Engine::create({.queue_depth = 4});
  if (!e) std::exit(3);
  aio::Op op{.cb = aio::make_fsync(0)};
  e->start(op);
  aio::Engine other(std::move(*e));
  std::exit(0);
}

TEST(EngineDebugDeathTest, DestroyingATaskSuspendedInAnInFlightPollAborts) {
  EXPECT_DEATH(destroy_task_suspended_in_poll(), "suspended in an aio::Engine poll was destroyed");
}

TEST(EngineDebugDeathTest, DestroyingATaskWithAQueuedRequestAborts) {
  EXPECT_DEATH(destroy_task_with_queued_read(), "suspended in an aio::Engine request was destroyed");
}

TEST(EngineDebugDeathTest, StartingAStartedOpAborts) {
  EXPECT_DEATH(start_twice(), "the Op is already started");
}

TEST(EngineDebugDeathTest, MovingAnEngineWithStartedOpsAborts) {
  EXPECT_DEATH(move_busy_engine(), "moved while requests were started");
}

// The check costs nothing when the contract is kept.
TEST(EngineDebug, CompletedTasksAreDestroyedQuietly) {
  DataFile f(1);
  auto e = aio::Engine::create({.queue_depth = 4});
  ASSERT_TRUE(e);
  aio::sync_wait(*e, read_block(*e, f.get()));
  SUCCEED();
}

}  // namespace
