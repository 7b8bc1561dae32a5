// Limits under stress, against the real kernel: a ring full of unreaped completions,
// destroy() with waiters and I/O in flight, and fork() with I/O in flight. RUN_SERIAL
// (tests/CMakeLists.txt): they count this process's [aio] mappings. The quota exhausted by
// many contexts is in test_limits_serial (label system: it takes all of fs.aio-max-nr).
//
// What the existing tests already pin is not repeated here: one huge context over the quota
// (test_context_lifecycle), a ring full of never-completing polls (test_submit), destroy()
// waking a lone waiter with nothing in flight (test_context_lifecycle), and a fork() after
// the completion was already in the ring (test_fork).
#include <gtest/gtest.h>
#include <dirent.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <future>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

// ---- helpers ---------------------------------------------------------------------------------

int wait_child(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  if (!WIFEXITED(status)) return 1000 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return WEXITSTATUS(status);
}

// Page-aligned anonymous memory (what O_DIRECT wants), unmapped on destruction.
class Pages {
 public:
  explicit Pages(std::size_t bytes) : size_(bytes) {
    void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) data_ = static_cast<std::byte*>(p);
  }
  Pages(const Pages&) = delete;
  Pages& operator=(const Pages&) = delete;
  ~Pages() {
    if (data_ != nullptr) ::munmap(data_, size_);
  }
  [[nodiscard]] bool ok() const noexcept { return data_ != nullptr; }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::span<std::byte> span(std::size_t off, std::size_t n) const noexcept { return {data_ + off, n}; }

 private:
  std::byte* data_ = nullptr;
  std::size_t size_;
};

// The byte at `pos` of chunk `chunk` in the test file patterns (never 0xEE / 0x5A, the canaries).
std::byte pattern_byte(std::uint64_t chunk, std::uint64_t pos, unsigned seed) noexcept {
  const std::uint64_t x = (pos * 2654435761ULL) ^ (chunk * 0x9E3779B9ULL) ^ seed;
  return static_cast<std::byte>(0x10 + (x >> 7) % 0x40);
}

void fill_pattern(std::span<std::byte> out, std::uint64_t chunk, unsigned seed) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) out[i] = pattern_byte(chunk, i, seed);
}

bool has_pattern(std::span<const std::byte> in, std::uint64_t chunk, unsigned seed) noexcept {
  for (std::size_t i = 0; i < in.size(); ++i)
    if (in[i] != pattern_byte(chunk, i, seed)) return false;
  return true;
}

bool all_bytes(std::span<const std::byte> in, std::byte v) noexcept {
  return std::all_of(in.begin(), in.end(), [v](std::byte b) { return b == v; });
}

// A file of `chunks` x `chunk` bytes in pattern `seed`, written and fsync'ed (so O_DIRECT
// reads go to the device), reopened with O_DIRECT. An empty Fd when the filesystem has no
// O_DIRECT (EINVAL from open).
Fd make_direct_file(const TempDir& dir, const char* name, std::size_t chunks, std::size_t chunk, unsigned seed) {
  const std::string path = dir.file(name);
  {
    Fd w(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
    if (!w.ok()) return Fd{};
    std::vector<std::byte> buf(chunk);
    for (std::size_t c = 0; c < chunks; ++c) {
      fill_pattern(buf, c, seed);
      if (::pwrite(w.get(), buf.data(), chunk, static_cast<off_t>(c * chunk)) != static_cast<ssize_t>(chunk))
        return Fd{};
    }
    if (::fsync(w.get()) != 0) return Fd{};
  }
  return Fd(::open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC));
}


// ---- 1. a ring full of completions nobody reaped ---------------------------------------------

// io_setup(1) gives a 127-slot ring (with 4 slots per possible CPU, doubled, as the floor:
// more on machines with over 8 CPUs). Buffered reads of page-cached data complete inside
// io_submit, so their events pile up in the ring; once the kernel has no free slot left for
// another completion, io_submit answers EAGAIN. Reaping frees slots: through io_getevents,
// or — with ReapMode::automatic — by advancing the ring head in userspace, which the kernel
// notices in io_submit (user_refill_reqs_available) when it runs out of slots.
void ring_full_recovers(aio::ReapMode mode) {
  TempDir dir;
  constexpr std::size_t kLen = 64;
  Fd fd = dir.make_file("f", pattern(kLen * 512));
  ASSERT_TRUE(fd.ok());
  aio::Observer obs;
  auto c = aio::Context::create(1, mode, &obs);
  ASSERT_TRUE(c) << c.error().message();
  aio::Context& ctx = *c;

  // The ring's size, from its header (struct aio_ring: id, nr, ...) at the handle's address.
  const std::size_t ring_nr = reinterpret_cast<const unsigned*>(ctx.native_handle())[1];
  ASSERT_GE(ring_nr, 2u);
  const std::size_t kMax = 2 * ring_nr + 16;  // two fills of at most ring_nr - 1, and spares
  std::vector<std::string> bufs(kMax, std::string(kLen, '\0'));
  std::vector<iocb> cbs(kMax);
  std::size_t next = 0;
  auto fill = [&]() -> std::size_t {  // submits one at a time until EAGAIN; returns how many
    const std::size_t first = next;
    for (; next < kMax; ++next) {
      cbs[next] = aio::make_pread(fd.get(), bytes(bufs[next]), static_cast<std::int64_t>((next % 512) * kLen));
      aio::set_user_data(cbs[next], next);
      auto n = submit_one(ctx, cbs[next]);
      if (!n) {
        EXPECT_EQ(n.error(), std::errc::resource_unavailable_try_again) << n.error().message();
        break;
      }
      EXPECT_EQ(*n, 1u);
    }
    return next - first;
  };
  std::vector<int> seen(kMax, 0);
  std::size_t bad = 0;
  auto take = [&](std::size_t n) {  // reaps exactly n; checks each
    std::vector<io_event> evs(n);
    std::size_t got = 0;
    while (got < n) {
      auto g = ctx.getevents(n - got, std::span(evs.data() + got, n - got), 5s);
      ASSERT_TRUE(g) << g.error().message();
      ASSERT_GT(*g, 0u) << "completions missing";
      got += *g;
    }
    for (const io_event& ev : evs) {
      const auto data = aio::user_data(ev);
      ASSERT_LT(data, kMax);
      const auto id = static_cast<std::size_t>(data);
      ++seen[id];
      if (ev.res != static_cast<long long>(kLen) ||
          bufs[id] != pattern(kLen * 512).substr((id % 512) * kLen, kLen))
        ++bad;
    }
  };

  const std::size_t first = fill();
  ASSERT_LT(next, kMax) << "the ring never filled";
  ASSERT_GE(first, 1u);
  ASSERT_LT(first, ring_nr) << "more completions pending than the ring has slots";
  if (ctx.ring_reaping()) {
    EXPECT_EQ(ctx.ready(), first) << "every read completed inside io_submit";
  }
  // Still full: nothing more goes in until something is reaped.
  iocb extra = aio::make_pread(fd.get(), bytes(bufs[kMax - 1]), 0);
  auto refused = submit_one(ctx, extra);
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error(), std::errc::resource_unavailable_try_again);

  const std::uint64_t calls_before = obs.total_syscalls();
  const std::size_t k = first / 2;
  take(k);
  if (ctx.ring_reaping()) {
    EXPECT_EQ(obs.total_syscalls(), calls_before) << "ready events reaped without a syscall";
    EXPECT_EQ(obs.events_via_ring(), k);
  }
  const std::size_t second = fill();
  ASSERT_LT(next, kMax) << "the ring never filled again";
  std::printf("limits: %s: %zu reads filled the %zu-slot ring, %zu reaped, then %zu more accepted\n",
              mode == aio::ReapMode::automatic ? "automatic" : "syscall", first, ring_nr, k, second);
  // Not necessarily exactly k: the kernel hands out slots in per-CPU batches, so a few may
  // sit in another CPU's cache during one fill and in this one's during the next.
  EXPECT_GE(second, 1u) << "reaping did not make room";
  EXPECT_LT(first - k + second, ring_nr) << "more completions pending than the ring has slots";

  take(first - k + second);
  io_event none[1];
  auto z = ctx.getevents(0, none, 0ns);
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, 0u) << "more completions than requests";
  EXPECT_EQ(bad, 0u) << "a read returned wrong data or length";
  for (std::size_t i = 0; i < next; ++i) EXPECT_EQ(seen[i], 1) << "request " << i;
  // And after all that, the ring is as good as new.
  EXPECT_EQ(run_one(ctx, extra).res, static_cast<long long>(kLen));
}

TEST(LimitsStress, RingFullOfUnreapedCompletionsRecoversAfterUserspaceReap) {
  auto probe = aio::Context::create(1);
  ASSERT_TRUE(probe);
  if (!probe->ring_reaping()) GTEST_SKIP() << "ring reaping disabled here (valgrind or AIOPP_REAP=syscall)";
  probe = aio::Context{};
  ring_full_recovers(aio::ReapMode::automatic);
}

TEST(LimitsStress, RingFullOfUnreapedCompletionsRecoversAfterIoGetevents) {
  ring_full_recovers(aio::ReapMode::syscall);
}

// ---- 2. destroy() while other threads wait, with requests in flight --------------------------

// Three threads wait with no timeout (getevents, pgetevents, wait_for) while polls on empty
// pipes are in flight; destroy() from this thread. Kernel behaviour pinned (fs/aio.c):
// io_destroy marks the context dead and wakes its waiters, which return -EINVAL (or events
// they had already taken); it cancels the in-flight polls itself (kill_ioctx ->
// free_ioctx_users), so it returns although they would never have completed; and no waiter
// sees an event twice.
void destroy_with_waiters(aio::ReapMode mode) {
  auto c = aio::Context::create(64, mode);
  ASSERT_TRUE(c);
  aio::Context& ctx = *c;
  constexpr std::size_t kPolls = 16;
  std::vector<Pipe> pipes(kPolls);
  std::vector<iocb> polls(kPolls);
  for (std::size_t i = 0; i < kPolls; ++i) {
    ASSERT_TRUE(pipes[i].ok());
    polls[i] = aio::make_poll(pipes[i].rd.get(), POLLIN);
    aio::set_user_data(polls[i], i);
    ASSERT_EQ(submit_one(ctx, polls[i]).value_or(0), 1u);
  }

  struct Outcome {
    std::error_code error;
    std::vector<io_event> events;
  };
  std::vector<std::promise<pid_t>> tids(3);
  std::vector<std::future<Outcome>> waiters;
  for (int w = 0; w < 3; ++w) {
    waiters.push_back(std::async(std::launch::async, [&, w]() -> Outcome {
      tids[static_cast<std::size_t>(w)].set_value(::gettid());
      std::vector<io_event> evs(kPolls);
      aio::Result<std::size_t> r{0};
      if (w == 0) r = ctx.getevents(1, evs, std::nullopt);
      if (w == 1) r = ctx.pgetevents(1, evs, std::nullopt, nullptr);
      if (w == 2) r = aio::wait_until(ctx, 1, std::span(evs), Clock::time_point::max());
      Outcome o;
      if (r) {
        evs.resize(*r);
        o.events = std::move(evs);
      } else {
        o.error = r.error();
      }
      return o;
    }));
  }
  for (auto& t : tids) wait_until_sleeping(t.get_future().get());

  auto d = ctx.destroy();
  ASSERT_TRUE(d) << d.error().message();
  std::set<std::uint64_t> ids;
  std::size_t events = 0;
  for (auto& f : waiters) {
    const Outcome o = f.get();  // each returns: the ctest timeout catches a hang
    if (o.events.empty()) {
      EXPECT_EQ(o.error, std::errc::invalid_argument) << o.error.message();
    }
    for (const io_event& ev : o.events) {
      ++events;
      ids.insert(aio::user_data(ev));
      EXPECT_EQ(ev.res, 0) << "a poll cancelled by io_destroy reports the empty mask";
    }
  }
  EXPECT_EQ(ids.size(), events) << "an event was delivered twice";
  EXPECT_FALSE(ctx.valid());
  // The pipes are still fine to use; nothing refers to the polls any more.
  const char x = 'x';
  EXPECT_EQ(::write(pipes[0].wr.get(), &x, 1), 1);
}

TEST(LimitsStress, DestroyWakesEveryWaiterAndCancelsInFlightPollsAutomatic) {
  destroy_with_waiters(aio::ReapMode::automatic);
}

TEST(LimitsStress, DestroyWakesEveryWaiterAndCancelsInFlightPollsSyscall) {
  destroy_with_waiters(aio::ReapMode::syscall);
}

// ---- 3. destroy() with file I/O in flight ----------------------------------------------------

// O_DIRECT reads and writes of 1 MiB chunks go to the device and take a while; destroy() is
// called straight after submitting them. Kernel behaviour pinned: io_destroy waits until
// every request has completed (it drops the context's last request reference only after
// each one's completion, then waits for that), so when destroy() returns the read buffers
// hold the file's data, the file holds the written data, and nothing touches either buffer
// afterwards (canaries written after destroy() stay put).
TEST(LimitsStress, DestroyWithDirectIoInFlightReturnsOnlyAfterItCompleted) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kReads = 12, kWrites = 12;
  TempDir dir;
  Fd src = make_direct_file(dir, "src", kReads, kChunk, 1);
  if (!src.ok() && errno == EINVAL) GTEST_SKIP() << "the filesystem under /tmp has no O_DIRECT";
  ASSERT_TRUE(src.ok()) << std::strerror(errno);
  Fd dst = make_direct_file(dir, "dst", kWrites, kChunk, 2);
  ASSERT_TRUE(dst.ok());
  Pages rbuf(kReads * kChunk), wbuf(kWrites * kChunk);
  ASSERT_TRUE(rbuf.ok() && wbuf.ok());
  std::memset(rbuf.data(), 0xEE, kReads * kChunk);
  for (std::size_t i = 0; i < kWrites; ++i) fill_pattern(wbuf.span(i * kChunk, kChunk), i, 3);
  Pipe pipe;  // plus a poll that never completes by itself
  ASSERT_TRUE(pipe.ok());

  auto c = aio::Context::create(64);
  ASSERT_TRUE(c);
  std::vector<iocb> cbs;
  cbs.reserve(kReads + kWrites + 1);
  for (std::size_t i = 0; i < kReads; ++i)
    cbs.push_back(aio::make_pread(src.get(), rbuf.span(i * kChunk, kChunk), static_cast<std::int64_t>(i * kChunk)));
  for (std::size_t i = 0; i < kWrites; ++i)
    cbs.push_back(aio::make_pwrite(dst.get(), wbuf.span(i * kChunk, kChunk), static_cast<std::int64_t>(i * kChunk)));
  cbs.push_back(aio::make_poll(pipe.rd.get(), POLLIN));
  std::vector<iocb*> list;
  for (auto& cb : cbs) list.push_back(&cb);
  auto n = c->submit(list);
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, list.size());
  const std::size_t ready_at_destroy = c->ready();
  auto d = c->destroy();
  ASSERT_TRUE(d) << d.error().message();
  std::printf("limits: %zu of %zu file requests had not completed when destroy() was called\n",
              kReads + kWrites - std::min(ready_at_destroy, kReads + kWrites), kReads + kWrites);

  // Everything the reads were to deliver is there.
  for (std::size_t i = 0; i < kReads; ++i)
    EXPECT_TRUE(has_pattern(rbuf.span(i * kChunk, kChunk), i, 1)) << "read " << i << " incomplete after destroy()";
  // Canaries in every buffer; then the writes' data must be in the file without them.
  std::memset(rbuf.data(), 0x5A, kReads * kChunk);
  std::memset(wbuf.data(), 0x5A, kWrites * kChunk);
  Fd check(::open(dir.file("dst").c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(check.ok());
  std::vector<std::byte> got(kChunk);
  for (std::size_t i = 0; i < kWrites; ++i) {
    ASSERT_EQ(::pread(check.get(), got.data(), kChunk, static_cast<off_t>(i * kChunk)), static_cast<ssize_t>(kChunk));
    EXPECT_TRUE(has_pattern(got, i, 3)) << "write " << i << " incomplete after destroy()";
  }
  std::this_thread::sleep_for(50ms);  // a window for any straggler to show itself
  EXPECT_TRUE(all_bytes(std::span<const std::byte>(rbuf.data(), kReads * kChunk), std::byte{0x5A}))
      << "a read buffer was written after destroy() returned";
  EXPECT_TRUE(all_bytes(std::span<const std::byte>(wbuf.data(), kWrites * kChunk), std::byte{0x5A}));
}

// ---- 4. fork() with I/O in flight in the parent ----------------------------------------------

// The parent forks while O_DIRECT reads and a poll are in flight. The child finds the
// inherited Context unusable (invalid_argument, no syscall, ready() == 0), scribbles over
// its copies of the buffers and exits. The parent then writes next to an in-flight read in
// the same page, makes the poll ready and reaps every completion exactly once, intact.
// Kernel behaviour pinned: the child's scribbles never reach the parent's buffers (private
// copy-on-write), and a read buffer pinned for DMA at fork() stays the parent's page — the
// parent's own write next to it does not move it away from the DMA (Linux copies pinned
// anonymous pages for the child at fork, since 5.8; the old fork-vs-O_DIRECT data loss).
TEST(LimitsStress, ForkWithIoInFlightParentReapsEveryCompletionIntact) {
  constexpr std::size_t kChunk = 1 << 20;
  constexpr std::size_t kReads = 8;
  constexpr std::size_t kHalf = 2048;  // the same-page read: half a page
  TempDir dir;
  Fd src = make_direct_file(dir, "src", kReads, kChunk, 7);
  if (!src.ok() && errno == EINVAL) GTEST_SKIP() << "the filesystem under /tmp has no O_DIRECT";
  ASSERT_TRUE(src.ok()) << std::strerror(errno);
  struct statx stx {};
  const bool half_page_ok = ::statx(src.get(), "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
                            (stx.stx_mask & STATX_DIOALIGN) != 0 && stx.stx_dio_offset_align != 0 &&
                            kHalf % stx.stx_dio_offset_align == 0 && kHalf % stx.stx_dio_mem_align == 0;
  Pages rbuf(kReads * kChunk), page(4096);
  ASSERT_TRUE(rbuf.ok() && page.ok());
  std::memset(rbuf.data(), 0xEE, kReads * kChunk);
  std::memset(page.data(), 0xEE, 4096);
  Pipe pipe;
  ASSERT_TRUE(pipe.ok());

  auto c = aio::Context::create(32);
  ASSERT_TRUE(c);
  aio::Context& ctx = *c;
  std::vector<iocb> cbs;
  for (std::size_t i = 0; i < kReads; ++i)
    cbs.push_back(aio::make_pread(src.get(), rbuf.span(i * kChunk, kChunk), static_cast<std::int64_t>(i * kChunk)));
  if (half_page_ok) cbs.push_back(aio::make_pread(src.get(), page.span(0, kHalf), 0));
  cbs.push_back(aio::make_poll(pipe.rd.get(), POLLIN));
  std::vector<iocb*> list;
  for (std::size_t i = 0; i < cbs.size(); ++i) {
    aio::set_user_data(cbs[i], i);
    list.push_back(&cbs[i]);
  }
  iocb& poll = cbs.back();
  auto n = ctx.submit(list);
  ASSERT_TRUE(n) << n.error().message();
  ASSERT_EQ(*n, list.size());
  const std::size_t ready_at_fork = ctx.ready();

  const pid_t pid = ::fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    if (ctx.valid()) code |= 1;
    io_event ev[4];
    auto g = ctx.getevents(0, ev, 0ns);
    if (g || g.error() != std::errc::invalid_argument) code |= 2;
    if (ctx.ready() != 0) code |= 4;
    auto x = ctx.cancel(poll);  // the parent's poll: must stay the parent's
    if (x || x.error() != std::errc::invalid_argument) code |= 8;
    std::memset(rbuf.data(), 0x11, kReads * kChunk);
    std::memset(page.data(), 0x11, 4096);
    ::_exit(code);
  }
  // Right away, while the reads are (likely) still in flight: touch the rest of the page.
  std::memset(page.data() + kHalf, 0x5A, 4096 - kHalf);
  EXPECT_EQ(wait_child(pid), 0) << "bit 1: valid, 2: getevents, 4: ready, 8: cancel";
  const char one = 'x';
  ASSERT_EQ(::write(pipe.wr.get(), &one, 1), 1);

  std::vector<io_event> evs = reap(ctx, cbs.size(), 20s);
  ASSERT_EQ(evs.size(), cbs.size()) << "completions lost across fork()";
  std::vector<int> seen(cbs.size(), 0);
  for (const io_event& ev : evs) {
    const auto data = aio::user_data(ev);
    ASSERT_LT(data, cbs.size());
    const auto id = static_cast<std::size_t>(data);
    ++seen[id];
    if (&cbs[id] == &poll) {
      EXPECT_NE(ev.res & POLLIN, 0);
    } else if (id < kReads) {
      EXPECT_EQ(ev.res, static_cast<long long>(kChunk)) << "read " << id;
    } else {
      EXPECT_EQ(ev.res, static_cast<long long>(kHalf)) << "same-page read";
    }
  }
  for (int s : seen) EXPECT_EQ(s, 1);
  for (std::size_t i = 0; i < kReads; ++i)
    EXPECT_TRUE(has_pattern(rbuf.span(i * kChunk, kChunk), i, 7)) << "read " << i << " lost across fork()";
  if (half_page_ok) {
    EXPECT_TRUE(has_pattern(page.span(0, kHalf), 0, 7)) << "the DMA went to a page the parent no longer has";
    EXPECT_TRUE(all_bytes(page.span(kHalf, 4096 - kHalf), std::byte{0x5A}));
  }
  std::printf("limits: %zu of %zu requests had completed at fork()%s\n", ready_at_fork, cbs.size(),
              half_page_ok ? "" : " (no half-page O_DIRECT read: alignment unknown or larger)");
  io_event extra[1];
  auto z = ctx.getevents(0, extra, 0ns);
  ASSERT_TRUE(z);
  EXPECT_EQ(*z, 0u);
}

}  // namespace
