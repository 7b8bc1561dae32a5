// aiopp-bench-compare — aiopp against raw syscalls and its peers, side by side.
//
// Every workload is run by every implementation ("arm") in the same process, interleaved in
// rounds: each round gives every arm one slice of ~10 ms, in an order rotated every round,
// and each arm's ns/op is divided by the raw-syscall arm's ns/op *of the same round*. The
// reported ratio is the median of those per-round ratios; "raw-AA" is a second, identical
// raw arm whose ratio shows the noise floor (A/A control). See BENCHMARKS.md.
#include <fcntl.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <aio.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <tuple>
#include <vector>

#if __has_include(<valgrind/callgrind.h>)
#include <valgrind/callgrind.h>
#define AIOPP_BENCH_CALLGRIND_START() CALLGRIND_START_INSTRUMENTATION
#define AIOPP_BENCH_CALLGRIND_STOP() CALLGRIND_STOP_INSTRUMENTATION
#else
#define AIOPP_BENCH_CALLGRIND_START() ((void)0)
#define AIOPP_BENCH_CALLGRIND_STOP() ((void)0)
#endif

#include "aio/aio.hpp"
#include "arm.hpp"
#include "native_arm.hpp"
#include "wait_reference.hpp"

namespace bench {
namespace {

// ---- Backends of the native AIO arms ------------------------------------------------------

// Hand-written syscalls, every argument widened to long: what aiopp must not be slower than.
struct RawBackend {
  aio_context_t ctx = 0;

  std::string create(unsigned nr) {
    ctx = 0;
    if (::syscall(SYS_io_setup, static_cast<long>(nr), &ctx) != 0) return std::strerror(errno);
    return {};
  }
  void destroy() noexcept { (void)::syscall(SYS_io_destroy, static_cast<long>(ctx)); }
  static void make_pread(iocb& cb, int fd, std::byte* buf, std::size_t size, std::int64_t off) noexcept {
    std::memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_PREAD;
    cb.aio_fildes = static_cast<std::uint32_t>(fd);
    cb.aio_buf = reinterpret_cast<std::uintptr_t>(buf);
    cb.aio_nbytes = size;
    cb.aio_offset = off;
  }
  static void make_poll(iocb& cb, int fd) noexcept {
    std::memset(&cb, 0, sizeof cb);
    cb.aio_lio_opcode = IOCB_CMD_POLL;
    cb.aio_fildes = static_cast<std::uint32_t>(fd);
    cb.aio_buf = POLLIN;
  }
  long submit(iocb* const* cbs, std::size_t n) noexcept {
    return ::syscall(SYS_io_submit, static_cast<long>(ctx), static_cast<long>(n), cbs);
  }
  long reap(std::size_t min, io_event* ev, std::size_t nr) noexcept {
    const long r = ::syscall(SYS_io_getevents, static_cast<long>(ctx), static_cast<long>(min),
                             static_cast<long>(nr), ev, nullptr);
    return r < 0 ? -errno : r;
  }
};

// What an aiopp arm attaches to its Context: nothing (the observer costs one relaxed load and
// a not-taken branch per call), an Observer counting syscalls, batch sizes, errors and repeated
// calls, or that plus the per-request latency histogram (two clock reads per call and a slot
// per request in flight).
enum class Observe : std::uint8_t { none, counters, latency };

// How an aiopp arm reaps: Context::getevents (no timeout), aio::wait_for (10 s, never reached),
// or the previous wait_for kept in wait_reference.cpp (a clock read, then the out-of-line loop).
enum class Reaper : std::uint8_t { getevents, wait_for, wait_for_old };

// aiopp, the public API only: Context::submit / Context::getevents and the make_* builders.
template <aio::ReapMode Mode, Observe Obs = Observe::none, Reaper How = Reaper::getevents>
struct AioppBackend {
  std::unique_ptr<aio::Observer> observer;  // declared first: outlives the Context it observes
  aio::Context ctx;

  std::string create(unsigned nr) {
    if constexpr (Obs != Observe::none)
      observer = std::make_unique<aio::Observer>(Obs == Observe::latency ? std::size_t{4096} : std::size_t{0});
    auto c = aio::Context::create(nr, Mode, observer.get());
    if (!c) return c.error().message();
    ctx = std::move(*c);
    return {};
  }
  void destroy() noexcept {
    (void)ctx.destroy();
    observer.reset();
  }
  static void make_pread(iocb& cb, int fd, std::byte* buf, std::size_t size, std::int64_t off) noexcept {
    cb = aio::make_pread(fd, std::span<std::byte>(buf, size), off);
  }
  static void make_poll(iocb& cb, int fd) noexcept { cb = aio::make_poll(fd, POLLIN); }
  long submit(iocb* const* cbs, std::size_t n) noexcept {
    auto r = ctx.submit(std::span<iocb* const>(cbs, n));
    return r ? static_cast<long>(*r) : -1;
  }
  long reap(std::size_t min, io_event* ev, std::size_t nr) noexcept {
    aio::Result<std::size_t> r;
    if constexpr (How == Reaper::wait_for) {
      r = aio::wait_for(ctx, min, std::span<io_event>(ev, nr), std::chrono::seconds(10));
    } else if constexpr (How == Reaper::wait_for_old) {
      r = reference_wait_for(ctx, min, std::span<io_event>(ev, nr), std::chrono::seconds(10));
    } else {
      r = ctx.getevents(min, std::span<io_event>(ev, nr));
    }
    return r ? static_cast<long>(*r) : -static_cast<long>(r.error().value());
  }
};

// ---- POSIX aio (glibc: a user-space thread pool doing pread) ---------------------------------
class PosixAioArm final : public Arm {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "posix-aio"; }
  [[nodiscard]] bool supports(const Workload& w) const noexcept override {
    return w.op == Op::read && !w.direct;
  }
  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    return {};
  }
  void teardown() noexcept override {}
  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) {
        aiocb& cb = cbs_[i];
        std::memset(&cb, 0, sizeof cb);
        cb.aio_fildes = w_.fd;
        cb.aio_buf = w_.buf + i * w_.size;
        cb.aio_nbytes = w_.size;
        cb.aio_offset = slot_offset(w_, i);
        if (::aio_read(&cb) != 0) return false;
      }
      for (std::size_t i = 0; i < n; ++i) {
        int e = 0;
        while ((e = ::aio_error(&cbs_[i])) == EINPROGRESS) {
          const aiocb* list[1] = {&cbs_[i]};
          (void)::aio_suspend(list, 1, nullptr);
        }
        if (e != 0) return false;
        const ssize_t r = ::aio_return(&cbs_[i]);
        if (r < 0) return false;
        sink += static_cast<std::uint64_t>(r);
      }
    }
    return true;
  }
  [[nodiscard]] bool run_qd(std::size_t) override { return false; }

 private:
  Workload w_{};
  std::array<aiocb, max_batch> cbs_{};
};

// ---- pread(): the synchronous floor -------------------------------------------------------
class PreadArm final : public Arm {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "pread"; }
  [[nodiscard]] bool supports(const Workload& w) const noexcept override {
    return w.op == Op::read && (!w.direct || w.batch == 1);
  }
  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    return {};
  }
  void teardown() noexcept override {}
  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) {
        const ssize_t r = ::pread(w_.fd, w_.buf + i * w_.size, w_.size, slot_offset(w_, i));
        if (r < 0) return false;
        sink += static_cast<std::uint64_t>(r);
      }
    }
    return true;
  }
  [[nodiscard]] bool run_qd(std::size_t ops) override {
    for (std::size_t i = 0; i < ops; ++i) {
      const ssize_t r = ::pread(w_.fd, w_.buf, 4096, rng_.block(w_.file_size));
      if (r != 4096) return false;
      sink += static_cast<std::uint64_t>(r);
    }
    return true;
  }

 private:
  Workload w_{};
  Rng rng_{};
};

std::vector<std::unique_ptr<Arm>> all_arms() {
  std::vector<std::unique_ptr<Arm>> arms;
  arms.push_back(std::make_unique<NativeArm<RawBackend>>("raw"));
  arms.push_back(std::make_unique<NativeArm<RawBackend>>("raw-AA"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall>>>("aiopp-syscall"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::automatic>>>("aiopp-ring"));
  // The cost of an attached observer, on the syscall path (the same syscalls as raw): compare
  // with aiopp-syscall, whose ratio is the cost of the detached observer branch.
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall, Observe::counters>>>("aiopp-obs"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall, Observe::latency>>>("aiopp-obs-lat"));
  // Opt-in arms (run only when named in --arms): deadline waits against Context::getevents,
  // with an A/A twin of each reference (compare with --reference aiopp-ring / aiopp-syscall).
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::automatic>>>("aiopp-ring-AA"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::automatic, Observe::none, Reaper::wait_for>>>("aiopp-wait"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::automatic, Observe::none, Reaper::wait_for_old>>>("aiopp-wait-old"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall>>>("aiopp-syscall-AA"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall, Observe::none, Reaper::wait_for>>>("aiopp-sys-wait"));
  arms.push_back(std::make_unique<NativeArm<AioppBackend<aio::ReapMode::syscall, Observe::none, Reaper::wait_for_old>>>("aiopp-sys-wait-old"));
  arms.push_back(make_engine_callback_arm());
  arms.push_back(make_engine_coroutine_arm());
  if (auto a = make_libaio_arm()) arms.push_back(std::move(a));
  if (auto a = make_liburing_arm()) arms.push_back(std::move(a));
  arms.push_back(std::make_unique<PosixAioArm>());
  arms.push_back(std::make_unique<PreadArm>());
  return arms;
}

// ---- Helpers ------------------------------------------------------------------------------

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "aiopp-bench-compare: %s\n", what.c_str());
  std::exit(2);
}

[[nodiscard]] double now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// The clock of the batched workloads: CPU time of the whole process (every thread, user +
// system) by default, so that time spent preempted by other work on a shared core is not
// charged to whichever arm happened to be running; --clock wall for wall time.
clockid_t g_slice_clock = CLOCK_PROCESS_CPUTIME_ID;

[[nodiscard]] double slice_ns() noexcept {
  timespec ts{};
  ::clock_gettime(g_slice_clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

[[nodiscard]] double cpu_ns() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_usec) * 1e3;
  };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

[[nodiscard]] double quantile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  const double frac = pos - static_cast<double>(lo);
  return v[lo] * (1.0 - frac) + v[hi] * frac;
}
[[nodiscard]] double median(std::vector<double> v) { return quantile(std::move(v), 0.5); }

[[nodiscard]] std::vector<std::string> split(std::string_view s) {
  std::vector<std::string> out;
  std::string cur;
  for (const char c : s) {
    if (c == ',') {
      out.push_back(cur);
      cur.clear();
    } else {
      cur += c;
    }
  }
  if (!cur.empty()) out.push_back(cur);
  return out;
}

struct WorkloadSpec {
  std::string name;
  Op op;
  std::size_t size;
};

[[nodiscard]] const WorkloadSpec& workload_spec(const std::string& name) {
  static const std::vector<WorkloadSpec> specs = {
      {"read64", Op::read, 64}, {"read4k", Op::read, 4096}, {"poll", Op::poll, 0}};
  for (const auto& s : specs)
    if (s.name == name) return s;
  die("unknown workload " + name + " (read64, read4k, poll)");
}

struct Options {
  int cpu = -2;  // -2: the last CPU this process may run on; -1: no pinning
  int rounds = 25;
  double slice_ms = 10.0;
  std::vector<std::string> workloads{"read64", "read4k", "poll"};
  std::vector<unsigned> batches{1, 8, 32, 128};
  std::vector<std::string> arms;  // empty: all but the opt-in ones
  std::string reference = "raw";  // batched mode: the arm every ratio is taken against
  std::string dir;
  bool direct = false;
  std::string direct_file;
  std::vector<unsigned> depths{1, 32, 128};
  int direct_rounds = 5;
  double direct_slice_ms = 200.0;
  std::string single_arm;  // --callgrind-arm / --single-arm
  std::size_t ops = 100000;
  bool scrub_vg_preload = false;
  std::vector<std::string> aggregate;
  bool wall_clock = false;
};

void usage() {
  std::puts(
      "usage: aiopp-bench-compare [options]\n"
      "  --cpu N            pin to CPU N (default: the last allowed CPU; -1: do not pin)\n"
      "  --rounds R         rounds per workload (default 25)\n"
      "  --slice-ms M       time per arm per round (default 10)\n"
      "  --clock cpu|wall   what a slice is timed with (default cpu: process CPU time, immune\n"
      "                     to preemption on a shared core; wall: CLOCK_MONOTONIC)\n"
      "  --workloads LIST   read64,read4k,poll (default all)\n"
      "  --batches LIST     default 1,8,32,128\n"
      "  --arms LIST        only these arms (raw is always run), e.g. engine-cb,engine-coro\n"
      "                     (aio::Engine with callbacks / coroutines); opt-in arms, run only when\n"
      "                     named: aiopp-wait, aiopp-wait-old, aiopp-ring-AA, aiopp-sys-wait,\n"
      "                     aiopp-sys-wait-old, aiopp-syscall-AA\n"
      "  --reference NAME   batched mode: ratios are to NAME's ns/op in the same round\n"
      "                     (default raw; NAME is always run)\n"
      "  --dir PATH         where the page-cache test file goes (default $TMPDIR or /tmp)\n"
      "  --direct           run the O_DIRECT random-read part instead (1 GiB file)\n"
      "  --direct-file P    its file (default <dir>/aiopp-bench-direct-1g.dat, created once)\n"
      "  --depths LIST      queue depths for --direct (default 1,32,128)\n"
      "  --direct-rounds R  (default 5)   --direct-slice-ms M (default 200)\n"
      "  --callgrind-arm NAME  run only NAME for --ops N ops of --workloads W --batches B,\n"
      "                     instrumented between CALLGRIND_START/STOP (also for strace -c)\n"
      "  --ops N            (default 100000)\n"
      "  --scrub-vg-preload drop vgpreload from LD_PRELOAD before creating contexts, so that\n"
      "                     aiopp-ring really reaps from the ring under callgrind\n"
      "  --aggregate FILES  read RESULT lines of several runs and print medians across them");
}

Options parse(int argc, char** argv) {
  Options o;
  const char* tmp = std::getenv("TMPDIR");
  o.dir = tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--cpu") o.cpu = std::stoi(value());
    else if (a == "--rounds") o.rounds = std::stoi(value());
    else if (a == "--slice-ms") o.slice_ms = std::stod(value());
    else if (a == "--workloads" || a == "--workload") o.workloads = split(value());
    else if (a == "--batches" || a == "--batch") {
      o.batches.clear();
      for (const auto& b : split(value())) o.batches.push_back(static_cast<unsigned>(std::stoul(b)));
    } else if (a == "--arms") o.arms = split(value());
    else if (a == "--reference") o.reference = value();
    else if (a == "--dir") o.dir = value();
    else if (a == "--direct") o.direct = true;
    else if (a == "--direct-file") o.direct_file = value();
    else if (a == "--depths") {
      o.depths.clear();
      for (const auto& b : split(value())) o.depths.push_back(static_cast<unsigned>(std::stoul(b)));
    } else if (a == "--direct-rounds") o.direct_rounds = std::stoi(value());
    else if (a == "--direct-slice-ms") o.direct_slice_ms = std::stod(value());
    else if (a == "--callgrind-arm" || a == "--single-arm") o.single_arm = value();
    else if (a == "--ops") o.ops = std::stoul(value());
    else if (a == "--scrub-vg-preload") o.scrub_vg_preload = true;
    else if (a == "--clock") {
      const std::string c = value();
      if (c != "cpu" && c != "wall") die("--clock cpu|wall");
      o.wall_clock = c == "wall";
    }
    else if (a == "--aggregate") {
      while (i + 1 < argc) o.aggregate.emplace_back(argv[++i]);
      if (o.aggregate.empty()) die("--aggregate needs files");
    } else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      die("unknown option " + a + " (--help)");
    }
  }
  for (const unsigned b : o.batches)
    if (b == 0 || b > max_batch) die("batch sizes must be 1..128");
  for (const unsigned d : o.depths)
    if (d == 0 || d > max_batch) die("queue depths must be 1..128");
  if (o.rounds < 3) die("--rounds must be >= 3");
  return o;
}

int pin(int cpu) {
  if (cpu == -1) return -1;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (cpu == -2) {
    if (::sched_getaffinity(0, sizeof set, &set) != 0) return -1;
    for (std::size_t c = CPU_SETSIZE; c-- > 0;) {
      if (CPU_ISSET(c, &set)) {
        cpu = static_cast<int>(c);
        break;
      }
    }
    CPU_ZERO(&set);
  }
  CPU_SET(static_cast<std::size_t>(cpu), &set);
  if (::sched_setaffinity(0, sizeof set, &set) != 0) die("sched_setaffinity: " + std::string(std::strerror(errno)));
  return cpu;
}

// An aligned buffer for max_batch * 4 KiB (O_DIRECT needs 4 KiB alignment).
struct Buffer {
  std::byte* p = nullptr;
  explicit Buffer(std::size_t bytes) {
    void* q = nullptr;
    if (::posix_memalign(&q, 4096, bytes) != 0) die("posix_memalign");
    std::memset(q, 0, bytes);
    p = static_cast<std::byte*>(q);
  }
  ~Buffer() { std::free(p); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
};

// A cached 1 MiB file (enough for 128 x 4 KiB), read once so every page is in the cache.
struct CachedFile {
  std::string path;
  int fd = -1;
  explicit CachedFile(const std::string& dir) {
    path = dir + "/aiopp-bench-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    fd = ::mkstemp(name.data());
    if (fd < 0) die("mkstemp in " + dir + ": " + std::strerror(errno));
    path = name.data();
    std::vector<char> data(1 << 20, 'a');
    if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) die("write");
    if (::pread(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) die("pre-read");
  }
  ~CachedFile() {
    ::close(fd);
    ::unlink(path.c_str());
  }
  CachedFile(const CachedFile&) = delete;
  CachedFile& operator=(const CachedFile&) = delete;
};

bool opt_in(std::string_view name) {
  return name == "aiopp-ring-AA" || name == "aiopp-syscall-AA" || name.find("-wait") != std::string_view::npos;
}

bool wanted(const Options& o, const Arm& a) {
  const std::string_view name = a.name();
  if (name == "raw" || name == o.reference) return true;
  if (o.arms.empty()) return !opt_in(name);
  return std::find(o.arms.begin(), o.arms.end(), name) != o.arms.end();
}

// Iterations (batches) that take about `target_ns` for this arm.
std::size_t calibrate(Arm& arm, double target_ns) {
  std::size_t iters = 1;
  for (;;) {
    const double t0 = slice_ns();
    if (!arm.run_batches(iters)) die(std::string(arm.name()) + ": I/O failed during calibration");
    const double dt = slice_ns() - t0;
    if (dt >= target_ns / 8 || iters >= (std::size_t{1} << 30)) {
      const double scaled = static_cast<double>(iters) * target_ns / std::max(dt, 1.0);
      return std::max<std::size_t>(1, static_cast<std::size_t>(scaled));
    }
    iters *= 2;
  }
}

struct ArmStats {
  std::vector<double> ns;     // per round: ns per op (batched) or CPU ns per I/O (direct)
  std::vector<double> ratio;  // per round: ns / raw's ns of the same round
  std::vector<double> iops;   // direct only
  std::vector<double> iops_ratio;
};

void print_result_table(const std::string& title, const std::vector<Arm*>& arms,
                        const std::vector<ArmStats>& st, bool direct) {
  std::printf("\n== %s ==\n", title.c_str());
  if (direct) {
    std::printf("%-14s %12s %10s %14s %10s %22s\n", "arm", "IOPS", "IOPS/raw", "CPU ns per IO",
                "CPU/raw", "CPU/raw p25..p75");
  } else {
    std::printf("%-14s %10s %10s %22s\n", "arm", "ns/op", "ratio", "ratio p25..p75");
  }
  for (std::size_t a = 0; a < arms.size(); ++a) {
    const auto& s = st[a];
    const double r = median(s.ratio);
    if (direct) {
      std::printf("%-14s %12.0f %10.3f %14.0f %10.3f %12.3f .. %.3f\n", arms[a]->name(), median(s.iops),
                  median(s.iops_ratio), median(s.ns), r, quantile(s.ratio, 0.25), quantile(s.ratio, 0.75));
    } else {
      std::printf("%-14s %10.1f %10.3f %12.3f .. %.3f\n", arms[a]->name(), median(s.ns), r,
                  quantile(s.ratio, 0.25), quantile(s.ratio, 0.75));
    }
  }
}

// ---- Batched page-cache reads and polls ------------------------------------------------------
void run_batched(const Options& o, int cpu) {
  CachedFile file(o.dir);
  Buffer buf(max_batch * 4096);
  const int efd = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);  // always readable
  if (efd < 0) die("eventfd");
  auto owned = all_arms();
  const double target_ns = o.slice_ms * 1e6;

  std::printf("aiopp-bench-compare: %d rounds x %.1f ms per arm, arm order rotated every round, CPU %d, %s clock\n",
              o.rounds, o.slice_ms, cpu, g_slice_clock == CLOCK_MONOTONIC ? "wall" : "process CPU-time");
  std::printf("ratio = median over rounds of (arm ns/op) / (%s ns/op in the same round); one op = one I/O\n",
              o.reference.c_str());
  std::printf("raw-AA is a second raw arm: its ratio and p25..p75 show the noise (differences < 2%% are noise)\n");

  for (const auto& wname : o.workloads) {
    const WorkloadSpec& spec = workload_spec(wname);
    for (const unsigned batch : o.batches) {
      Workload w;
      w.op = spec.op;
      w.batch = batch;
      w.fd = spec.op == Op::poll ? efd : file.fd;
      w.size = spec.size;
      w.buf = buf.p;
      std::vector<Arm*> arms;
      for (auto& a : owned) {
        if (!wanted(o, *a) || !a->supports(w)) continue;
        if (auto err = a->setup(w); !err.empty()) die(std::string(a->name()) + ": setup: " + err);
        arms.push_back(a.get());
      }
      std::size_t ref = arms.size();
      for (std::size_t a = 0; a < arms.size(); ++a)
        if (o.reference == arms[a]->name()) ref = a;
      if (ref == arms.size()) die("no arm named " + o.reference + " runs this workload (--reference)");
      std::vector<std::size_t> iters(arms.size());
      for (std::size_t a = 0; a < arms.size(); ++a) iters[a] = calibrate(*arms[a], target_ns);
      std::vector<ArmStats> st(arms.size());
      std::vector<double> round_ns(arms.size());
      const double ops_per_iter = static_cast<double>(batch);
      for (int r = -1; r < o.rounds; ++r) {  // round -1 warms up and is discarded
        for (std::size_t k = 0; k < arms.size(); ++k) {
          const std::size_t a = (k + static_cast<std::size_t>(r + 1)) % arms.size();
          const double t0 = slice_ns();
          if (!arms[a]->run_batches(iters[a])) die(std::string(arms[a]->name()) + ": I/O failed");
          round_ns[a] = (slice_ns() - t0) / (static_cast<double>(iters[a]) * ops_per_iter);
        }
        if (r < 0) continue;
        for (std::size_t a = 0; a < arms.size(); ++a) {
          st[a].ns.push_back(round_ns[a]);
          st[a].ratio.push_back(round_ns[a] / round_ns[ref]);
        }
      }
      for (auto* a : arms) a->teardown();
      const std::string title = wname + ", batch " + std::to_string(batch);
      print_result_table(title, arms, st, false);
      for (std::size_t a = 0; a < arms.size(); ++a) {
        std::printf("RESULT %s %u %s %.2f %.4f %.4f %.4f\n", wname.c_str(), batch, arms[a]->name(),
                    median(st[a].ns), median(st[a].ratio), quantile(st[a].ratio, 0.25),
                    quantile(st[a].ratio, 0.75));
      }
      std::fflush(stdout);
    }
  }
  ::close(efd);
}

// ---- O_DIRECT random 4 KiB reads at a queue depth --------------------------------------------
void ensure_direct_file(const std::string& path, std::uint64_t size) {
  struct stat sb{};
  if (::stat(path.c_str(), &sb) == 0 && static_cast<std::uint64_t>(sb.st_size) == size) return;
  std::printf("creating %s (%llu MiB, once)...\n", path.c_str(), static_cast<unsigned long long>(size >> 20));
  std::fflush(stdout);
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) die("open " + path + ": " + std::strerror(errno));
  if (::fallocate(fd, 0, 0, static_cast<off_t>(size)) != 0) die("fallocate: " + std::string(std::strerror(errno)));
  // Written for real: unwritten (fallocated-only) extents read back as zeros without device I/O.
  std::vector<unsigned char> chunk(1 << 20);
  for (std::size_t i = 0; i < chunk.size(); ++i) chunk[i] = static_cast<unsigned char>(i * 131U + 7U);
  for (std::uint64_t off = 0; off < size; off += chunk.size()) {
    if (::pwrite(fd, chunk.data(), chunk.size(), static_cast<off_t>(off)) != static_cast<ssize_t>(chunk.size()))
      die("write " + path);
  }
  if (::fsync(fd) != 0) die("fsync");
  (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

void run_direct(const Options& o, int cpu) {
  constexpr std::uint64_t file_size = 1ULL << 30;
  const std::string path = o.direct_file.empty() ? o.dir + "/aiopp-bench-direct-1g.dat" : o.direct_file;
  ensure_direct_file(path, file_size);
  const int fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
  if (fd < 0) die("open O_DIRECT " + path + ": " + std::strerror(errno));
  Buffer buf(max_batch * 4096);
  auto owned = all_arms();
  const double slice_ns = o.direct_slice_ms * 1e6;
  std::printf("aiopp-bench-compare --direct: random 4 KiB O_DIRECT reads of %s, %d rounds x %.0f ms per arm, CPU %d\n",
              path.c_str(), o.direct_rounds, o.direct_slice_ms, cpu);
  std::printf("CPU ns per IO = (user + system time of the process, getrusage) / I/Os; ratios per round vs raw\n");

  for (const unsigned qd : o.depths) {
    Workload w;
    w.op = Op::read;
    w.batch = qd;
    w.fd = fd;
    w.size = 4096;
    w.buf = buf.p;
    w.file_size = file_size;
    w.direct = true;
    std::vector<Arm*> arms;
    for (auto& a : owned) {
      if (std::string_view(a->name()) == "raw-AA") continue;  // device noise dwarfs A/A here
      if (!wanted(o, *a) || !a->supports(w)) continue;
      if (auto err = a->setup(w); !err.empty()) die(std::string(a->name()) + ": setup: " + err);
      arms.push_back(a.get());
    }
    // Calibrate on raw: the same op count for every arm keeps the device's work identical.
    std::size_t ops = 64;
    for (;;) {
      const double t0 = now_ns();
      if (!arms[0]->run_qd(ops)) die("raw: O_DIRECT read failed");
      const double dt = now_ns() - t0;
      if (dt >= slice_ns / 8) {
        ops = std::max<std::size_t>(qd * 4, static_cast<std::size_t>(static_cast<double>(ops) * slice_ns / dt));
        break;
      }
      ops *= 2;
    }
    std::vector<ArmStats> st(arms.size());
    std::vector<double> wall(arms.size()), cpu_per(arms.size());
    for (int r = 0; r < o.direct_rounds; ++r) {
      for (std::size_t k = 0; k < arms.size(); ++k) {
        const std::size_t a = (k + static_cast<std::size_t>(r)) % arms.size();
        const double c0 = cpu_ns();
        const double t0 = now_ns();
        if (!arms[a]->run_qd(ops)) die(std::string(arms[a]->name()) + ": O_DIRECT read failed");
        wall[a] = now_ns() - t0;
        cpu_per[a] = (cpu_ns() - c0) / static_cast<double>(ops);
      }
      for (std::size_t a = 0; a < arms.size(); ++a) {
        const double iops = static_cast<double>(ops) * 1e9 / wall[a];
        const double raw_iops = static_cast<double>(ops) * 1e9 / wall[0];
        st[a].ns.push_back(cpu_per[a]);
        st[a].ratio.push_back(cpu_per[0] > 0 ? cpu_per[a] / cpu_per[0] : std::nan(""));
        st[a].iops.push_back(iops);
        st[a].iops_ratio.push_back(iops / raw_iops);
      }
    }
    for (auto* a : arms) a->teardown();
    print_result_table("O_DIRECT 4 KiB random reads, queue depth " + std::to_string(qd) + ", " +
                           std::to_string(ops) + " I/Os per slice",
                       arms, st, true);
    for (std::size_t a = 0; a < arms.size(); ++a) {
      std::printf("DIRECT qd%u %s iops %.0f iops_ratio %.4f cpu_ns %.0f cpu_ratio %.4f\n", qd, arms[a]->name(),
                  median(st[a].iops), median(st[a].iops_ratio), median(st[a].ns), median(st[a].ratio));
    }
    std::fflush(stdout);
  }
  ::close(fd);
}

// ---- One arm alone, for callgrind / strace ---------------------------------------------------
void scrub_vg_preload() {
  const char* pre = std::getenv("LD_PRELOAD");
  if (pre == nullptr) return;
  std::string kept;
  std::string_view rest(pre);
  while (!rest.empty()) {
    const std::size_t end = rest.find_first_of(": ");
    const std::string_view item = rest.substr(0, end);
    if (!item.empty() && item.find("vgpreload") == std::string_view::npos) {
      if (!kept.empty()) kept += ':';
      kept += item;
    }
    if (end == std::string_view::npos) break;
    rest.remove_prefix(end + 1);
  }
  ::setenv("LD_PRELOAD", kept.c_str(), 1);
}

int run_single(const Options& o) {
  if (o.scrub_vg_preload) scrub_vg_preload();
  if (o.workloads.size() != 1 || o.batches.size() != 1) die("--callgrind-arm needs one --workload and one --batch");
  const WorkloadSpec& spec = workload_spec(o.workloads[0]);
  CachedFile file(o.dir);
  Buffer buf(max_batch * 4096);
  const int efd = ::eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
  Workload w;
  w.op = spec.op;
  w.batch = o.batches[0];
  w.fd = spec.op == Op::poll ? efd : file.fd;
  w.size = spec.size;
  w.buf = buf.p;
  auto owned = all_arms();
  for (auto& a : owned) {
    if (o.single_arm != a->name()) continue;
    if (!a->supports(w)) die(o.single_arm + " does not run this workload");
    if (auto err = a->setup(w); !err.empty()) die(o.single_arm + ": setup: " + err);
    if (!a->run_batches(64)) die("warm-up failed");  // page faults, lazy binding, ring warm
    const std::size_t iters = std::max<std::size_t>(1, o.ops / w.batch);
    AIOPP_BENCH_CALLGRIND_START();
    const bool ok = a->run_batches(iters);
    AIOPP_BENCH_CALLGRIND_STOP();
    if (!ok) die("I/O failed");
    a->teardown();
    // "warmup" ops ran before the instrumented loop (strace sees them, callgrind does not).
    std::printf("SINGLE %s %s %u warmup %zu ops %zu\n", a->name(), spec.name.c_str(), w.batch,
                std::size_t{64} * w.batch, iters * w.batch);
    ::close(efd);
    return 0;
  }
  die("no arm named " + o.single_arm);
}

// ---- --aggregate: medians across processes -------------------------------------------------
int aggregate(const std::vector<std::string>& files) {
  std::map<std::pair<std::string, unsigned>, std::vector<std::string>> arm_order;
  std::map<std::tuple<std::string, unsigned, std::string>, std::vector<std::pair<double, double>>> data;
  std::vector<std::pair<std::string, unsigned>> cells;
  for (const auto& f : files) {
    std::ifstream in(f);
    if (!in) die("cannot read " + f);
    std::string line;
    while (std::getline(in, line)) {
      std::istringstream ls(line);
      std::string tag, wl, arm;
      unsigned batch = 0;
      double ns = 0, ratio = 0;
      if (!(ls >> tag >> wl >> batch >> arm >> ns >> ratio) || tag != "RESULT") continue;
      const auto cell = std::make_pair(wl, batch);
      if (arm_order.find(cell) == arm_order.end()) cells.push_back(cell);
      auto& order = arm_order[cell];
      if (std::find(order.begin(), order.end(), arm) == order.end()) order.push_back(arm);
      data[{wl, batch, arm}].emplace_back(ns, ratio);
    }
  }
  std::printf("aggregate of %zu runs: median across runs of each run's median; [min .. max] of the runs\n",
              files.size());
  for (const auto& cell : cells) {
    std::printf("\n== %s, batch %u ==\n%-14s %10s %8s %18s\n", cell.first.c_str(), cell.second, "arm", "ns/op",
                "ratio", "ratio min..max");
    for (const auto& arm : arm_order[cell]) {
      const auto& v = data[{cell.first, cell.second, arm}];
      std::vector<double> ns, ratio;
      for (const auto& [n, r] : v) {
        ns.push_back(n);
        ratio.push_back(r);
      }
      const double lo = quantile(ratio, 0.0);
      const double hi = quantile(ratio, 1.0);
      std::printf("%-14s %10.1f %8.3f %8.3f .. %.3f\n", arm.c_str(), median(ns), median(ratio), lo, hi);
      std::printf("AGG %s %u %s %.1f %.4f %.4f %.4f\n", cell.first.c_str(), cell.second, arm.c_str(), median(ns),
                  median(ratio), lo, hi);
    }
  }
  return 0;
}

}  // namespace
}  // namespace bench

int main(int argc, char** argv) {
  using namespace bench;
  const Options o = parse(argc, argv);
  if (!o.aggregate.empty()) return aggregate(o.aggregate);
  if (o.wall_clock) g_slice_clock = CLOCK_MONOTONIC;
  const int cpu = pin(o.cpu);
  if (!o.single_arm.empty()) return run_single(o);
  if (o.direct) {
    run_direct(o, cpu);
  } else {
    run_batched(o, cpu);
  }
  return 0;
}
