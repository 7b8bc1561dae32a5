// No heap allocation per request through aio::Engine: the callback path (start, flush,
// run_ready, run_once, cancel), a coroutine's `co_await e.read(...)` / `co_await e.poll(...)`
// (with and without a stop token) inside a running coroutine, and the notify-mode eventfd.
// Part of the test_no_alloc program, whose counting allocator (no_alloc.hpp) sees every
// allocation; under ASan/TSan/HWASan/MSan, whose runtimes own malloc, nothing is replaced and
// every test skips.
#include <aio/aio.hpp>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <cstddef>
#include <cstdlib>
#include <new>
#include <stop_token>
#include <string>
#include <vector>

#include "no_alloc.hpp"

namespace {

constexpr std::size_t kOps = 32;
constexpr std::size_t kBlock = 512;

class EngineNoAlloc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (AIOPP_NO_ALLOC_SANITIZER != 0)
      GTEST_SKIP() << "built with a sanitizer, whose runtime owns malloc and operator new: allocations cannot "
                      "be counted";
    char name[] = "/tmp/aiopp-engine-noalloc-XXXXXX";
    fd_ = ::mkstemp(name);
    ASSERT_GE(fd_, 0);
    path_ = name;
    std::vector<char> data(kOps * 4096, 'x');
    ASSERT_EQ(::pwrite(fd_, data.data(), data.size(), 0), static_cast<ssize_t>(data.size()));
    (void)!::pread(fd_, data.data(), data.size(), 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
    if (!path_.empty()) ::unlink(path_.c_str());
  }
  int fd_ = -1;
  std::string path_;
};

struct Counter {
  aio::Engine* e = nullptr;
  std::size_t done = 0;
  std::size_t restarts = 0;  // completions that start their Op again
  bool ok = true;
};

void on_done(aio::Op& op, aio::Result<std::size_t> r) noexcept {
  auto* c = static_cast<Counter*>(op.user);
  ++c->done;
  if (!r && op.cb.aio_lio_opcode != IOCB_CMD_POLL) c->ok = false;  // the poll is cancelled
  if (c->restarts > 0) {
    --c->restarts;
    c->e->start(op);
  }
}

TEST_F(EngineNoAlloc, CallbackPath) {
  for (const bool notify : {false, true}) {
    auto e = aio::Engine::create({.queue_depth = 8, .notify_fd = notify});  // 8 slots: backpressure
    ASSERT_TRUE(e);
    std::array<std::array<std::byte, kBlock>, kOps> bufs{};
    std::array<aio::Op, kOps> ops{};
    Counter c{&*e};
    const int pfd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // never readable
    ASSERT_GE(pfd, 0);
    aio::Op poll{.cb = aio::make_poll(pfd, aio::PollEvents::in), .on_complete = &on_done, .user = &c};
    for (int round = 0; round < 3; ++round) {  // round 0 warms up
      Counting::begin();
      c.done = 0;
      c.restarts = kOps;
      for (std::size_t i = 0; i < kOps; ++i) {
        ops[i] = aio::Op{.cb = aio::make_pread(fd_, bufs[i], static_cast<std::int64_t>(i * 4096)),
                         .on_complete = &on_done,
                         .user = &c};
        e->start(ops[i]);
      }
      bool ok = e->flush().has_value();
      while (ok && c.done < 2 * kOps) ok = (round % 2 == 0 ? e->run_ready() : e->run_once()).has_value();
      e->start(poll);
      ok = ok && e->flush().has_value() && e->cancel(poll).has_value() && e->run().has_value();
      const std::size_t n = Counting::end();
      EXPECT_TRUE(ok);
      EXPECT_TRUE(c.ok);
      EXPECT_EQ(c.done, 2 * kOps + 1);
      if (round > 0) {
        EXPECT_EQ(n, 0U) << "round " << round << (notify ? " notify" : "");
      }
    }
    ::close(pfd);
  }
}

aio::Task<std::size_t> read_loop(aio::Engine& e, int fd, std::span<std::byte> buf, int reads, int poll_fd,
                                 std::stop_token stop, std::size_t* allocs) {
  // Counted from here: the frame already exists and runs.
  Counting::begin();
  std::size_t total = 0;
  for (int i = 0; i < reads; ++i) {
    auto n = co_await e.read(fd, buf, static_cast<std::int64_t>((static_cast<std::size_t>(i) % kOps) * 4096));
    if (!n) break;
    total += *n;
    auto p = co_await e.poll(poll_fd, aio::PollEvents::in, stop);  // a ready poll, with a stop token
    if (!p) break;
    auto q = co_await e.poll(poll_fd, aio::PollEvents::in);  // and without one
    if (!q) break;
  }
  *allocs = Counting::end();
  co_return total;
}

TEST_F(EngineNoAlloc, CoroutineAwaits) {
  auto e = aio::Engine::create({.queue_depth = 8});
  ASSERT_TRUE(e);
  const int ready = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  ASSERT_GE(ready, 0);
  std::stop_source source;  // its shared state is allocated here, before counting
  std::array<std::byte, kBlock> buf{};
  std::size_t allocs = 99;
  const std::size_t total = aio::sync_wait(*e, read_loop(*e, fd_, buf, 1000, ready, source.get_token(), &allocs));
  EXPECT_EQ(total, 1000 * kBlock);
  EXPECT_EQ(allocs, 0U) << "co_await of an Engine request allocated";
  ::close(ready);
}

}  // namespace
