// aio::Task, sync_wait, when_all and the Engine awaitables in a -fno-exceptions build (this
// program is compiled with -fno-exceptions): they compile and work.
#include <array>
#include <cstring>
#include <tuple>

#include "test_engine_util.hpp"

#if defined(__cpp_exceptions)
#error "test_task_noexcept must be built with -fno-exceptions"
#endif

namespace {

using namespace aiotest;

aio::Task<std::size_t> read_at(aio::Engine& e, int fd, std::span<std::byte> buf, std::int64_t off) {
  auto n = co_await e.read(fd, buf, off);
  co_return n.value_or(0);
}
aio::Task<void> nothing() { co_return; }

TEST(TaskNoExceptions, SyncWaitAndWhenAll) {
  DataFile f(2);
  auto e = aio::Engine::create({.queue_depth = 4});
  ASSERT_TRUE(e);
  std::array<std::byte, 100> a{}, b{};
  auto [x, v, y] = aio::sync_wait(*e, aio::when_all(read_at(*e, f.get(), a, 0), nothing(), read_at(*e, f.get(), b, 4096)));
  (void)v;
  EXPECT_EQ(x, 100U);
  EXPECT_EQ(y, 100U);
  EXPECT_EQ(std::memcmp(b.data(), f.content.data() + 4096, 100), 0);
}

}  // namespace
