// Zero heap allocations on the submit/reap path: the process's malloc family and global
// operator new/delete are replaced here by counting versions (forwarding to glibc's
// __libc_* allocator), and every aiopp call made between Counting::begin() and end() must
// allocate nothing — Context::create/destroy included. Under ASan, TSan, HWASan or MSan,
// whose runtimes own malloc and operator new, nothing is replaced and every test skips.
#include <aio/aio.hpp>
#include <gtest/gtest.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "no_alloc.hpp"

// ---- The counting allocator (declared in no_alloc.hpp) ------------------------------------
extern "C" {
void* __libc_malloc(std::size_t size) noexcept;
void* __libc_calloc(std::size_t n, std::size_t size) noexcept;
void* __libc_realloc(void* p, std::size_t size) noexcept;
void* __libc_memalign(std::size_t alignment, std::size_t size) noexcept;
void __libc_free(void* p) noexcept;
}

namespace noalloc {
thread_local bool t_counting = false;
thread_local std::size_t t_allocs = 0;
}  // namespace noalloc

namespace {
inline void note_alloc() noexcept {
  if (noalloc::t_counting) ++noalloc::t_allocs;
}
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

// operator new is counted on its own too (libstdc++'s would call the malloc above anyway).
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

// ---- Fixtures ---------------------------------------------------------------------------------
namespace {

constexpr std::size_t kBatch = 32;

// Every test: nothing can be counted under a sanitizer (see the top of the file).
class NoAlloc : public ::testing::Test {
 protected:
  void SetUp() override {
    if (AIOPP_NO_ALLOC_SANITIZER != 0)
      GTEST_SKIP() << "built with a sanitizer, whose runtime owns malloc and operator new: allocations cannot "
                      "be counted";
  }
};

// A cached 128 KiB file, made before counting starts.
class TempFile {
 public:
  TempFile() {
    char name[] = "/tmp/aiopp-noalloc-XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    std::vector<char> data(kBatch * 4096, 'x');
    if (fd_ >= 0) {
      (void)!::pwrite(fd_, data.data(), data.size(), 0);
      (void)!::pread(fd_, data.data(), data.size(), 0);
    }
  }
  ~TempFile() {
    if (fd_ >= 0) ::close(fd_);
    ::unlink(path_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  [[nodiscard]] int fd() const { return fd_; }

 private:
  int fd_ = -1;
  std::string path_;
};

struct Loop {
  std::array<iocb, kBatch> cbs{};
  std::array<iocb*, kBatch> ptrs{};
  std::array<io_event, kBatch> events{};
  std::array<std::array<std::byte, 4096>, kBatch> bufs{};
  Loop() {
    for (std::size_t i = 0; i < kBatch; ++i) ptrs[i] = &cbs[i];
  }
};

// create, `rounds` x (submit `batch` reads, reap them), destroy: returns false on any failure.
bool create_read_destroy(aio::ReapMode mode, int fd, Loop& l, std::size_t batch, int rounds, bool* ring_used) {
  auto ctx = aio::Context::create(64, mode);
  if (!ctx) return false;
  if (ring_used != nullptr) *ring_used = ctx->ring_reaping();
  for (int r = 0; r < rounds; ++r) {
    for (std::size_t i = 0; i < batch; ++i) {
      l.cbs[i] = aio::make_pread(fd, l.bufs[i], static_cast<std::int64_t>(i * 4096));
      aio::set_user_data(l.cbs[i], i);
    }
    auto n = ctx->submit(std::span<iocb* const>(l.ptrs.data(), batch));
    if (!n || *n != batch) return false;
    (void)ctx->ready();
    std::size_t got = 0;
    while (got < batch) {
      auto m = ctx->getevents(batch - got, std::span<io_event>(l.events.data(), batch - got));
      if (!m) return false;
      for (std::size_t e = 0; e < *m; ++e) {
        auto res = aio::result(l.events[e]);
        if (!res || *res != 4096) return false;
      }
      got += *m;
    }
  }
  return ctx->destroy().has_value();
}

}  // namespace

TEST_F(NoAlloc, CounterSeesAllocations) {
  void* (*volatile m)(std::size_t) = &std::malloc;
  Counting::begin();
  void* p = m(16);
  const std::size_t n = Counting::end();
  std::free(p);
  EXPECT_EQ(n, 1u) << "the counting malloc is not interposed: the other tests would prove nothing";
}

TEST_F(NoAlloc, FirstCreateInProcessAndDestroy) {
  // Run first in its own process by ctest (gtest_discover_tests): includes the lazy one-time
  // setup of the fork guard (mmap of its page, pthread_atfork registration).
  for (const auto mode : {aio::ReapMode::automatic, aio::ReapMode::syscall}) {
    Counting::begin();
    auto ctx = aio::Context::create(64, mode);
    const bool ok = ctx.has_value() && ctx->valid() && ctx->destroy().has_value();
    const std::size_t n = Counting::end();
    EXPECT_TRUE(ok);
    EXPECT_EQ(n, 0u) << "Context::create/destroy allocated";
  }
}

TEST_F(NoAlloc, SubmitGeteventsRingPath) {
  TempFile f;
  ASSERT_GE(f.fd(), 0);
  Loop l;
  bool ring = false;
  ASSERT_TRUE(create_read_destroy(aio::ReapMode::automatic, f.fd(), l, kBatch, 1, &ring));  // warm-up
  for (const std::size_t batch : {std::size_t{1}, std::size_t{8}, kBatch}) {
    Counting::begin();
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) ok = create_read_destroy(aio::ReapMode::automatic, f.fd(), l, batch, 50, &ring);
    const std::size_t n = Counting::end();
    EXPECT_TRUE(ok);
    EXPECT_EQ(n, 0u) << "batch " << batch;
  }
  if (!ring) GTEST_SKIP() << "ring reaping is off here (valgrind or AIOPP_REAP=syscall): the syscall path was tested";
}

TEST_F(NoAlloc, SubmitGeteventsSyscallPath) {
  TempFile f;
  ASSERT_GE(f.fd(), 0);
  Loop l;
  ASSERT_TRUE(create_read_destroy(aio::ReapMode::syscall, f.fd(), l, kBatch, 1, nullptr));
  for (const std::size_t batch : {std::size_t{1}, std::size_t{8}, kBatch}) {
    Counting::begin();
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) ok = create_read_destroy(aio::ReapMode::syscall, f.fd(), l, batch, 50, nullptr);
    const std::size_t n = Counting::end();
    EXPECT_TRUE(ok);
    EXPECT_EQ(n, 0u) << "batch " << batch;
  }
}

TEST_F(NoAlloc, PolledEventfdWithPgeteventsMask) {
  const int efd = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);  // always readable
  ASSERT_GE(efd, 0);
  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGUSR1);
  Loop l;
  for (const auto mode : {aio::ReapMode::automatic, aio::ReapMode::syscall}) {
    Counting::begin();
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) {
      auto ctx = aio::Context::create(64, mode);
      ok = ctx.has_value();
      for (int r = 0; r < 50 && ok; ++r) {
        for (std::size_t i = 0; i < 8; ++i) l.cbs[i] = aio::make_poll(efd, POLLIN);
        auto n = ctx->submit(std::span<iocb* const>(l.ptrs.data(), 8));
        ok = n && *n == 8;
        std::size_t got = 0;
        while (ok && got < 8) {
          // Alternately a blocking wait and a bounded one, both with a signal mask.
          const aio::Timeout t = (r % 2 == 0) ? aio::Timeout{} : aio::Timeout{std::chrono::milliseconds(100)};
          auto m = ctx->pgetevents(8 - got, std::span<io_event>(l.events.data(), 8 - got), t, &mask);
          ok = m.has_value() && *m != 0;
          if (ok) got += *m;
        }
        // A zero-timeout peek on an empty ring, too.
        if (ok) ok = ctx->getevents(0, std::span<io_event>(l.events), std::chrono::nanoseconds(0)).has_value();
      }
      if (ok) ok = ctx->destroy().has_value();
    }
    const std::size_t n = Counting::end();
    EXPECT_TRUE(ok);
    EXPECT_EQ(n, 0u) << (mode == aio::ReapMode::automatic ? "automatic" : "syscall");
  }
  ::close(efd);
}

TEST_F(NoAlloc, CancelOfAPoll) {
  const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);  // never readable: the poll waits
  ASSERT_GE(efd, 0);
  for (const auto mode : {aio::ReapMode::automatic, aio::ReapMode::syscall}) {
    Counting::begin();
    bool ok = true;
    for (int k = 0; k < 5 && ok; ++k) {
      auto ctx = aio::Context::create(8, mode);
      ok = ctx.has_value();
      for (int r = 0; r < 20 && ok; ++r) {
        iocb cb = aio::make_poll(efd, POLLIN);
        aio::set_user_data(cb, 42);
        iocb* p = &cb;
        auto n = ctx->submit(std::span<iocb* const>(&p, 1));
        ok = n && *n == 1;
        if (ok) ok = ctx->cancel(cb).has_value();
        std::array<io_event, 1> ev{};
        auto m = ok ? ctx->getevents(1, ev) : aio::Result<std::size_t>(0);
        ok = ok && m && *m == 1 && aio::user_data(ev[0]) == 42 && aio::request_of(ev[0]) == &cb;
        // Cancelling again: the request is gone, an error (no allocation for it either).
        if (ok) ok = !ctx->cancel(cb).has_value();
      }
      if (ok) ok = ctx->destroy().has_value();
    }
    const std::size_t n = Counting::end();
    EXPECT_TRUE(ok);
    EXPECT_EQ(n, 0u);
  }
  ::close(efd);
}

TEST_F(NoAlloc, BuildersModifiersAndErrors) {
  std::array<std::byte, 64> buf{};
  std::array<iovec, 2> iov{{{buf.data(), 32}, {buf.data() + 32, 32}}};
  io_event ev{};
  std::uint64_t sum = 0;
  Counting::begin();
  for (int k = 0; k < 100; ++k) {
    iocb a = aio::make_pread(3, buf, 0);
    iocb b = aio::make_pwrite(3, buf, 64);
    iocb c = aio::make_preadv(3, iov, 0);
    iocb d = aio::make_pwritev(3, iov, 0);
    iocb e = aio::make_fsync(3);
    iocb f = aio::make_fdsync(3);
    iocb g = aio::make_poll(3, POLLIN | POLLOUT);
    aio::set_eventfd(aio::set_user_data(a, 7), 9);
    aio::clear_eventfd(a);
    aio::set_user_ptr(b, &buf);
    aio::set_rw_flags(c, RWF_NOWAIT);
    aio::set_priority(d, aio::IoprioClass::best_effort, 4);
    sum += a.aio_data + b.aio_data + c.aio_nbytes + static_cast<std::uint16_t>(d.aio_reqprio) + e.aio_lio_opcode +
           f.aio_lio_opcode + g.aio_buf;
    ev.res = -EAGAIN;
    auto r = aio::result(ev);
    sum += r ? 0 : static_cast<std::uint64_t>(r.error().value());  // error_code, no message()
    ev.res = 64;
    sum += aio::result(ev).value_or(0);
    // Errors from an empty Context are built without allocating, too.
    aio::Context empty;
    std::array<io_event, 1> out{};
    iocb* p = &a;
    sum += empty.submit(std::span<iocb* const>(&p, 1)).has_value() ? 1U : 0U;
    sum += empty.getevents(1, out).has_value() ? 1U : 0U;
    sum += empty.getevents(2, out).has_value() ? 1U : 0U;  // min_nr > size
    sum += empty.ready();
  }
  const std::size_t n = Counting::end();
  EXPECT_NE(sum, 0u);
  EXPECT_EQ(n, 0u);
}
