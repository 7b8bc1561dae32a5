// aiopp tests — small shared RAII helpers (temp files, pipes, eventfds, signals, aio-nr).
#pragma once

#include <aio/aio.hpp>
#include <gtest/gtest.h>
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace aiotest {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

/// An owned file descriptor (-1 when empty).
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = std::exchange(o.fd_, -1);
    }
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  void reset() noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool ok() const noexcept { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

/// A fresh directory under `base` (default /tmp, which is ext4 here), removed with its
/// contents on destruction.
class TempDir {
 public:
  explicit TempDir(const char* base = "/tmp") {
    std::string tmpl = std::string(base) + "/aiopp-core-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    if (::mkdtemp(buf.data()) != nullptr) path_ = buf.data();
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir() {
    if (!path_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(path_, ec);
    }
  }
  [[nodiscard]] bool ok() const noexcept { return !path_.empty(); }
  [[nodiscard]] std::string file(std::string_view name) const { return path_ + "/" + std::string(name); }

  /// Creates (truncates) `name` holding `content`; returns an fd opened with `flags`.
  [[nodiscard]] Fd make_file(std::string_view name, std::string_view content, int flags = O_RDWR) const {
    const std::string p = file(name);
    {
      Fd w(::open(p.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
      if (!w.ok()) return Fd{};
      std::size_t done = 0;
      while (done < content.size()) {
        const ssize_t n = ::write(w.get(), content.data() + done, content.size() - done);
        if (n <= 0) return Fd{};
        done += static_cast<std::size_t>(n);
      }
    }
    return Fd(::open(p.c_str(), flags | O_CLOEXEC));
  }

 private:
  std::string path_;
};

/// pipe2(O_CLOEXEC) pair.
struct Pipe {
  Fd rd, wr;
  Pipe() {
    int p[2] = {-1, -1};
    if (::pipe2(p, O_CLOEXEC) == 0) {
      rd = Fd(p[0]);
      wr = Fd(p[1]);
    }
  }
  [[nodiscard]] bool ok() const noexcept { return rd.ok() && wr.ok(); }
};

/// A non-blocking eventfd starting at `initial` (above 0: readable, so a POLLIN poll on it
/// completes inside io_submit).
inline Fd make_eventfd(unsigned initial = 0) { return Fd(::eventfd(initial, EFD_CLOEXEC | EFD_NONBLOCK)); }

/// Reads an eventfd counter (resetting it); nullopt if it was 0 (EAGAIN) or on error.
inline std::optional<std::uint64_t> read_eventfd(int fd) {
  std::uint64_t v = 0;
  if (::read(fd, &v, sizeof v) != static_cast<ssize_t>(sizeof v)) return std::nullopt;
  return v;
}

inline std::string pattern(std::size_t n, char seed = 'a') {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>(seed + static_cast<char>(i % 26));
  return s;
}

inline std::span<std::byte> bytes(std::string& s) noexcept {
  return std::as_writable_bytes(std::span(s.data(), s.size()));
}
inline std::span<const std::byte> cbytes(const std::string& s) noexcept {
  return std::as_bytes(std::span(s.data(), s.size()));
}

/// Reads a single integer from a /proc file (-1 on failure).
inline long long read_proc_number(const char* path) {
  std::ifstream in(path);
  long long v = -1;
  if (!(in >> v)) return -1;
  return v;
}
inline long long aio_nr() { return read_proc_number("/proc/sys/fs/aio-nr"); }
inline long long aio_max_nr() { return read_proc_number("/proc/sys/fs/aio-max-nr"); }

/// Why a test that changes machine-wide state did not run (see system_tests_allowed()).
inline constexpr const char* kSystemTestSkip =
    "changes machine-wide state (fs.aio-max-nr / the system-wide AIO quota); set AIOPP_TEST_SYSTEM=1 or use the "
    "system preset";

/// True when AIOPP_TEST_SYSTEM=1: tests that lower fs.aio-max-nr or fill the system-wide AIO
/// quota (ctest label `system`) may run. Such a test starts with
/// `if (!system_tests_allowed()) GTEST_SKIP() << kSystemTestSkip;`.
inline bool system_tests_allowed() {
  const char* v = std::getenv("AIOPP_TEST_SYSTEM");
  return v != nullptr && std::string_view(v) == "1";
}

/// This process's AIO ring mappings ("/[aio] (deleted)" in /proc/self/maps; io_destroy
/// unmaps them), or -1 when /proc is unreadable.
inline long long aio_mappings() {
  std::ifstream in("/proc/self/maps");
  if (!in) return -1;
  long long n = 0;
  for (std::string line; std::getline(in, line);)
    if (line.find("[aio]") != std::string::npos) ++n;
  return n;
}

/// The pids of other processes holding AIO contexts right now (their [aio] mappings).
inline std::string other_aio_users() {
  std::string pids;
  const std::string self = std::to_string(::getpid());
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return pids;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || self == e->d_name) continue;
    std::ifstream in(std::string("/proc/") + e->d_name + "/maps");
    for (std::string line; std::getline(in, line);) {
      if (line.find("[aio]") != std::string::npos) {
        pids += std::string(pids.empty() ? "" : " ") + e->d_name;
        break;
      }
    }
  }
  ::closedir(d);
  return pids;
}

/// Waits (bounded by 2 s, not asserted) until thread `tid` of this process sleeps in the
/// kernel (state S in /proc/self/task/TID/stat), then 20 ms more.
inline void wait_until_sleeping(pid_t tid) {
  const std::string stat = "/proc/self/task/" + std::to_string(tid) + "/stat";
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (std::chrono::steady_clock::now() < limit) {
    std::ifstream in(stat);
    std::string s;
    std::getline(in, s);
    const auto paren = s.rfind(')');
    if (paren != std::string::npos && paren + 2 < s.size() && s[paren + 2] == 'S') break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
}

/// Submits one iocb; returns the submit result.
inline aio::Result<std::size_t> submit_one(aio::Context& ctx, iocb& cb) noexcept {
  iocb* p = &cb;
  return ctx.submit(std::span<iocb* const>(&p, 1));
}

/// Reaps exactly `n` events (or fewer if `limit` elapses). Returns what it got.
inline std::vector<io_event> reap(aio::Context& ctx, std::size_t n,
                                  std::chrono::milliseconds limit = 5000ms) {
  std::vector<io_event> out;
  std::vector<io_event> buf(n == 0 ? 1 : n);
  const auto deadline = Clock::now() + limit;
  while (out.size() < n) {
    const auto now = Clock::now();
    if (now >= deadline) break;
    const std::size_t want = n - out.size();
    auto got = ctx.getevents(1, std::span(buf.data(), want),
                             std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - now));
    if (!got) {
      if (got.error() == std::errc::interrupted) continue;
      break;
    }
    if (*got == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + static_cast<std::ptrdiff_t>(*got));
  }
  return out;
}

/// Submits `cb` alone and reaps its completion; a failed submit or reap is reported as a
/// test failure and gives a zeroed io_event.
inline io_event run_one(aio::Context& ctx, iocb& cb) {
  auto n = submit_one(ctx, cb);
  EXPECT_TRUE(n) << n.error().message();
  if (!n) return io_event{};
  auto evs = reap(ctx, 1);
  EXPECT_EQ(evs.size(), 1u);
  return evs.empty() ? io_event{} : evs[0];
}

/// Fixture base: `ctx`, a fresh Context of 8 events (ReapMode::automatic), made in SetUp().
class ContextTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto c = aio::Context::create(8);
    ASSERT_TRUE(c) << c.error().message();
    ctx = std::move(*c);
  }
  aio::Context ctx;
};

/// A batch of requests that owns what io_submit needs: the iocbs, the pointer array and, for
/// reads, the buffers (and, from file_reads(), the file). Request i carries user data
/// first + i. Move-only; a move keeps every address the kernel was given.
struct Requests {
  std::vector<iocb> cbs;
  std::vector<iocb*> ptrs;
  std::vector<std::string> bufs;  // reads: request i's destination
  std::string content;            // file_reads: what the file holds
  std::unique_ptr<TempDir> dir;   // file_reads: the file's directory
  Fd fd;                          // file_reads: the file; ready_polls: the eventfd
  std::uint64_t first = 0;

  /// `n` reads of `size` bytes of `fd`, request i at offset i * size.
  static Requests reads(int fd, std::size_t n, std::size_t size = 16, std::uint64_t first = 0) {
    Requests r(n, first);
    r.bufs.assign(n, std::string(size, '\0'));
    for (std::size_t i = 0; i < n; ++i)
      r.set(i, aio::make_pread(fd, bytes(r.bufs[i]), static_cast<std::int64_t>(i * size)));
    return r;
  }
  /// `n` reads of `size` bytes of a fresh (page-cached) temp file holding pattern(n * size):
  /// request i reads the i-th slice (see data_ok()).
  static Requests file_reads(std::size_t n, std::size_t size = 16, std::uint64_t first = 0) {
    auto dir = std::make_unique<TempDir>();
    const std::string content = pattern(n * size);
    Fd fd = dir->make_file("data", content, O_RDONLY);
    Requests r = reads(fd.get(), n, size, first);
    r.content = content;
    r.dir = std::move(dir);
    r.fd = std::move(fd);
    return r;
  }
  /// `n` POLLIN polls on `fd`.
  static Requests polls(int fd, std::size_t n, std::uint64_t first = 0) {
    Requests r(n, first);
    for (std::size_t i = 0; i < n; ++i) r.set(i, aio::make_poll(fd, POLLIN));
    return r;
  }
  /// `n` POLLIN polls on a readable eventfd of their own: each completes inside io_submit.
  static Requests ready_polls(std::size_t n, std::uint64_t first = 0) {
    Fd efd = make_eventfd(1);
    Requests r = polls(efd.get(), n, first);
    r.fd = std::move(efd);
    return r;
  }

  [[nodiscard]] std::size_t size() const noexcept { return cbs.size(); }
  /// Requests [from, from + count), as io_submit takes them (the whole batch by default).
  [[nodiscard]] std::span<iocb* const> batch(std::size_t from = 0,
                                             std::size_t count = std::dynamic_extent) const noexcept {
    return std::span<iocb* const>(ptrs).subspan(from, count);
  }

  /// Submits the whole batch, going on after partial submits; fails on an error or a call
  /// that accepted nothing.
  [[nodiscard]] ::testing::AssertionResult submit_to(aio::Context& ctx) const {
    for (std::size_t done = 0; done < size();) {
      auto n = ctx.submit(batch(done));
      if (!n) return ::testing::AssertionFailure() << "submit at request " << done << ": " << n.error().message();
      if (*n == 0) return ::testing::AssertionFailure() << "submit accepted nothing at request " << done;
      done += *n;
    }
    return ::testing::AssertionSuccess();
  }

  /// `evs` holds each request's completion exactly once (by user data) and nothing else.
  [[nodiscard]] ::testing::AssertionResult each_once(std::span<const io_event> evs) const {
    std::vector<int> seen(size(), 0);
    for (const io_event& ev : evs) {
      const std::uint64_t i = aio::user_data(ev) - first;
      if (i >= size()) return ::testing::AssertionFailure() << "unknown user data " << aio::user_data(ev);
      ++seen[static_cast<std::size_t>(i)];
    }
    for (std::size_t i = 0; i < size(); ++i)
      if (seen[i] != 1) return ::testing::AssertionFailure() << "request " << i << " completed " << seen[i] << " times";
    return ::testing::AssertionSuccess();
  }

  /// file_reads(): every buffer holds its slice of the file.
  [[nodiscard]] ::testing::AssertionResult data_ok() const {
    if (content.empty()) return ::testing::AssertionFailure() << "not from file_reads()";
    for (std::size_t i = 0; i < size(); ++i) {
      const std::size_t n = bufs[i].size();
      if (bufs[i] != content.substr(i * n, n)) return ::testing::AssertionFailure() << "request " << i << " read other bytes";
    }
    return ::testing::AssertionSuccess();
  }

 private:
  Requests(std::size_t n, std::uint64_t first_data) : cbs(n), ptrs(n), first(first_data) {}
  void set(std::size_t i, const iocb& cb) {
    cbs[i] = cb;
    aio::set_user_data(cbs[i], first + i);
    ptrs[i] = &cbs[i];
  }
};

/// Sets (or, with nullptr, unsets) an environment variable for the scope, restoring it after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name), had_(std::getenv(name) != nullptr) {
    if (had_) old_ = std::getenv(name);
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::string old_;
  bool had_;
};

/// Installs a signal handler for the scope, restoring the previous disposition after.
class ScopedSignalHandler {
 public:
  ScopedSignalHandler(int sig, void (*handler)(int), int flags = 0) : sig_(sig) {
    struct sigaction sa {};
    sa.sa_handler = handler;
    sa.sa_flags = flags;
    sigemptyset(&sa.sa_mask);
    ok_ = ::sigaction(sig, &sa, &old_) == 0;
  }
  ScopedSignalHandler(const ScopedSignalHandler&) = delete;
  ScopedSignalHandler& operator=(const ScopedSignalHandler&) = delete;
  ~ScopedSignalHandler() {
    if (ok_) ::sigaction(sig_, &old_, nullptr);
  }
  [[nodiscard]] bool ok() const noexcept { return ok_; }

 private:
  int sig_;
  bool ok_ = false;
  struct sigaction old_ {};
};

/// Restores the calling thread's signal mask on destruction.
class ScopedThreadMask {
 public:
  ScopedThreadMask() { ::pthread_sigmask(SIG_SETMASK, nullptr, &saved_); }
  ScopedThreadMask(const ScopedThreadMask&) = delete;
  ScopedThreadMask& operator=(const ScopedThreadMask&) = delete;
  ~ScopedThreadMask() { ::pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }

 private:
  sigset_t saved_{};
};

inline sigset_t current_thread_mask() {
  sigset_t s;
  sigemptyset(&s);
  ::pthread_sigmask(SIG_SETMASK, nullptr, &s);
  return s;
}

inline bool is_blocked(int sig) {
  const sigset_t s = current_thread_mask();
  return sigismember(&s, sig) == 1;
}

}  // namespace aiotest
