// No heap allocation per request through aio::Engine: the callback path (start, flush,
// run_ready, run_once, cancel), a coroutine's `co_await e.read(...)` / `co_await e.poll(...)`
// (with a stop token) inside a running coroutine, and the notify-mode eventfd. The malloc
// family and operator new are replaced by counting versions, as in test_no_alloc.cpp; under
// ASan/TSan/HWASan/MSan, whose runtimes own malloc, nothing is replaced and every test skips.
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

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__) || defined(__SANITIZE_HWADDRESS__)
#define AIOPP_NO_ALLOC_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || __has_feature(memory_sanitizer) || \
    __has_feature(hwaddress_sanitizer)
#define AIOPP_NO_ALLOC_SANITIZER 1
#endif
#endif
#ifndef AIOPP_NO_ALLOC_SANITIZER
#define AIOPP_NO_ALLOC_SANITIZER 0
#endif

// ---- The counting allocator -----------------------------------------------------------------
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t n, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void* __libc_memalign(std::size_t alignment, std::size_t size) noexcept;
void __libc_free(void* p) noexcept;
}

namespace {
thread_local bool t_counting = false;
thread_local std::size_t t_allocs = 0;

inline void note_alloc() noexcept {
  if (t_counting) ++t_allocs;
}

struct Counting {
  static void begin() noexcept {
    t_allocs = 0;
    t_counting = true;
  }
  [[nodiscard]] static std::size_t end() noexcept {
    t_counting = false;
    return t_allocs;
  }
};
}  // namespace

#if !AIOPP_NO_ALLOC_SANITIZER
extern "C" {
void* malloc(std::size_t size) noexcept {
  note_alloc();
  return __libc_malloc(size);
}
void* calloc(std::size_t n, std::size_t size) noexcept {
  note_alloc();
  return __libc_calloc(n, size);
}
void* realloc(void* p, std::size_t size) noexcept {
  note_alloc();
  return __libc_realloc(p, size);
}
void* aligned_alloc(std::size_t alignment, std::size_t size) noexcept {
  note_alloc();
  return __libc_memalign(alignment, size);
}
void* memalign(std::size_t alignment, std::size_t size) noexcept {
  note_alloc();
  return __libc_memalign(alignment, size);
}
int posix_memalign(void** out, std::size_t alignment, std::size_t size) noexcept {
  note_alloc();
  if (alignment < sizeof(void*) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, size);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
void free(void* p) noexcept { __libc_free(p); }
}

void* operator new(std::size_t size) {
  note_alloc();
  if (void* p = __libc_malloc(size == 0 ? 1 : size)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t size) { return operator new(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept {
  note_alloc();
  return __libc_malloc(size == 0 ? 1 : size);
}
void* operator new[](std::size_t size, const std::nothrow_t& nt) noexcept { return operator new(size, nt); }
void operator delete(void* p) noexcept { __libc_free(p); }
void operator delete[](void* p) noexcept { __libc_free(p); }
void operator delete(void* p, std::size_t) noexcept { __libc_free(p); }
void operator delete[](void* p, std::size_t) noexcept { __libc_free(p); }
#endif  // !AIOPP_NO_ALLOC_SANITIZER

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
