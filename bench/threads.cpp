// aiopp-bench-threads — how to spread one workload over threads: one Context per thread, or
// one Context shared by two submitters and a dedicated reaper thread (or by two threads that
// both submit and reap).
//
// Modes (every mode runs two submitting threads; see BENCHMARKS.md, "Threads"):
//   per-thread   two threads, each with its own Context: submit a batch, reap it, repeat;
//   shared-reap  two submitter threads on one Context, each with at most --qd requests in
//                flight (a semaphore), and a third thread reaping with a blocking getevents;
//   shared-both  two threads on one Context, each submitting a batch and reaping as many;
//   engine       two threads, each with its own aio::Engine keeping --batch requests in
//                flight: every completion callback starts its request again, and each
//                run_once() submits what the completions started in one io_submit.
// Workloads complete inside io_submit (page-cache 4 KiB reads of a cached file, or polls of
// an always-readable eventfd), so the cost measured is the library's and the kernel's, not
// the device's.
//
// The modes are interleaved: each round runs every mode for one slice (wall time), in an order
// rotated every round; a mode's ops/s is divided by per-thread's ops/s of the same round, and
// the median of those per-round ratios is reported. Run it in several processes (REPEAT=5
// bench/threads.sh) for the spread across processes.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <semaphore>
#include <string>
#include <thread>
#include <vector>

#include "aio/aio.hpp"
#include "aio/engine.hpp"

namespace {

constexpr std::size_t max_batch = 128;
constexpr unsigned ring_size = 1024;
constexpr std::uint64_t sentinel = ~std::uint64_t{0};

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "aiopp-bench-threads: %s\n", what.c_str());
  std::exit(2);
}

double clock_ns(clockid_t id) noexcept {
  timespec ts{};
  ::clock_gettime(id, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

// Voluntary context switches of the calling thread (it blocked: a sleep in the kernel).
long voluntary_switches() noexcept {
  rusage ru{};
  ::getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nvcsw;
}

double quantile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const double pos = q * static_cast<double>(v.size() - 1);
  const auto lo = static_cast<std::size_t>(pos);
  const std::size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - static_cast<double>(lo));
}

struct Options {
  std::string workload = "read4k";  // read4k | poll
  std::size_t batch = 8;
  std::size_t qd = 32;  // shared-reap: requests in flight per submitter
  int rounds = 15;
  double slice_ms = 200;
  std::string dir = "/tmp";
};

// What every thread needs to build its requests.
struct Setup {
  bool poll = false;
  int fd = -1;            // the cached file, or the readable eventfd
  std::byte* buf = nullptr;  // max_batch * 4 KiB per thread slot (reads land anywhere: contents unused)
};

iocb build(const Setup& s, std::size_t thread, std::size_t i) noexcept {
  iocb cb{};
  if (s.poll) {
    cb = aio::make_poll(s.fd, aio::PollEvents::in);
  } else {
    std::byte* p = s.buf + (thread * max_batch + i) * 4096;
    cb = aio::make_pread(s.fd, std::span<std::byte>(p, 4096), static_cast<std::int64_t>(i * 4096));
  }
  aio::set_user_data(cb, thread);
  return cb;
}

// Submits every request of `ptrs` (io_submit may take fewer than given).
bool submit_every(aio::Context& ctx, std::span<iocb* const> ptrs) noexcept {
  for (std::size_t done = 0; done < ptrs.size();) {
    auto r = ctx.submit(ptrs.subspan(done));
    if (!r || *r == 0) return false;
    done += *r;
  }
  return true;
}

bool check(std::span<const io_event> evs, bool poll) noexcept {
  for (const io_event& ev : evs) {
    if (ev.data == sentinel) continue;
    if (poll ? ev.res <= 0 : ev.res != 4096) return false;
  }
  return true;
}

// Completions counted per thread, each on its own cache line (no counter shared between threads).
struct Counters {
  struct alignas(64) One {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<One, 3> c;
  std::atomic<std::uint64_t>& operator[](std::size_t i) noexcept { return c[i].v; }
  [[nodiscard]] std::uint64_t total() const noexcept {
    std::uint64_t t = 0;
    for (const auto& one : c) t += one.v.load(std::memory_order_relaxed);
    return t;
  }
};

struct SliceResult {
  double ops = 0;
  double wall_ns = 0;
  double cpu_ns = 0;         // process CPU time (all threads)
  double switches = 0;       // voluntary context switches of the mode's threads
  double reaper_switches = 0;
};

// Submit a batch and reap a batch, until stopped; `done` counts completions.
void submit_and_reap(aio::Context& ctx, const Setup& s, std::size_t thread, std::size_t batch,
                     const std::atomic<bool>& stop, std::atomic<std::uint64_t>& done, std::atomic<long>& sw) {
  const long sw0 = voluntary_switches();
  std::array<iocb, max_batch> cbs{};
  std::array<iocb*, max_batch> ptrs{};
  std::array<io_event, max_batch> evs{};
  for (std::size_t i = 0; i < batch; ++i) ptrs[i] = &cbs[i];
  while (!stop.load(std::memory_order_relaxed)) {
    for (std::size_t i = 0; i < batch; ++i) cbs[i] = build(s, thread, i);
    if (!submit_every(ctx, std::span<iocb* const>(ptrs.data(), batch))) die("submit failed");
    for (std::size_t got = 0; got < batch;) {
      auto n = ctx.getevents(batch - got, std::span<io_event>(evs.data(), batch - got));
      if (!n) {
        if (n.error() == std::errc::interrupted) continue;
        die("getevents: " + n.error().message());
      }
      if (!check(std::span<const io_event>(evs.data(), *n), s.poll)) die("bad completion");
      got += *n;
    }
    done.fetch_add(batch, std::memory_order_relaxed);
  }
  sw.fetch_add(voluntary_switches() - sw0, std::memory_order_relaxed);
}

template <class Body>
SliceResult timed(const Options& o, std::atomic<bool>& stop, const Counters& done, Body&& start_and_join) {
  SliceResult r;
  const double c0 = clock_ns(CLOCK_PROCESS_CPUTIME_ID);
  const double t0 = clock_ns(CLOCK_MONOTONIC);
  double t1 = 0;
  std::uint64_t ops = 0;
  start_and_join([&] {
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(o.slice_ms));
    ops = done.total();
    t1 = clock_ns(CLOCK_MONOTONIC);
    r.cpu_ns = clock_ns(CLOCK_PROCESS_CPUTIME_ID) - c0;
    stop.store(true, std::memory_order_relaxed);
  });
  r.ops = static_cast<double>(ops);
  r.wall_ns = t1 - t0;
  return r;
}

SliceResult run_per_thread(const Options& o, const Setup& s) {
  std::array<aio::Context, 2> ctx;
  for (auto& c : ctx) {
    auto r = aio::Context::create(ring_size);
    if (!r) die("io_setup: " + r.error().message());
    c = std::move(*r);
  }
  std::atomic<bool> stop{false};
  Counters done;
  std::atomic<long> sw{0};
  SliceResult r = timed(o, stop, done, [&](auto&& wait_slice) {
    std::thread a([&] { submit_and_reap(ctx[0], s, 0, o.batch, stop, done[0], sw); });
    std::thread b([&] { submit_and_reap(ctx[1], s, 1, o.batch, stop, done[1], sw); });
    wait_slice();
    a.join();
    b.join();
  });
  r.switches = static_cast<double>(sw.load());
  return r;
}

SliceResult run_shared_both(const Options& o, const Setup& s) {
  auto c = aio::Context::create(ring_size);
  if (!c) die("io_setup: " + c.error().message());
  std::atomic<bool> stop{false};
  Counters done;
  std::atomic<long> sw{0};
  SliceResult r = timed(o, stop, done, [&](auto&& wait_slice) {
    std::thread a([&] { submit_and_reap(*c, s, 0, o.batch, stop, done[0], sw); });
    std::thread b([&] { submit_and_reap(*c, s, 1, o.batch, stop, done[1], sw); });
    wait_slice();
    a.join();
    b.join();
  });
  r.switches = static_cast<double>(sw.load());
  return r;
}

SliceResult run_shared_reaper(const Options& o, const Setup& s) {
  auto c = aio::Context::create(ring_size);
  if (!c) die("io_setup: " + c.error().message());
  aio::Context& ctx = *c;
  std::atomic<bool> stop{false};
  Counters done;
  Counters submitted;
  std::atomic<long> sw{0};
  std::atomic<long> reaper_sw{0};
  const auto qd = static_cast<std::ptrdiff_t>(std::max(o.qd, o.batch));
  std::counting_semaphore<> credit0(qd), credit1(qd);
  std::array<std::counting_semaphore<>*, 2> credit{&credit0, &credit1};

  auto submitter = [&](std::size_t thread) {
    const long sw0 = voluntary_switches();
    std::array<iocb, max_batch> cbs{};
    std::array<iocb*, max_batch> ptrs{};
    for (std::size_t i = 0; i < o.batch; ++i) ptrs[i] = &cbs[i];
    while (!stop.load(std::memory_order_relaxed)) {
      for (std::size_t i = 0; i < o.batch; ++i) credit[thread]->acquire();  // a slot in flight each
      for (std::size_t i = 0; i < o.batch; ++i) cbs[i] = build(s, thread, i);
      submitted[thread].fetch_add(o.batch, std::memory_order_relaxed);
      if (!submit_every(ctx, std::span<iocb* const>(ptrs.data(), o.batch))) die("submit failed");
    }
    sw.fetch_add(voluntary_switches() - sw0, std::memory_order_relaxed);
  };
  auto reaper = [&] {
    const long sw0 = voluntary_switches();
    std::array<io_event, max_batch> evs{};
    std::uint64_t reaped = 0;
    bool last = false;
    while (!last || reaped < submitted.total()) {
      auto n = ctx.getevents(1, evs);  // blocks in the kernel when the ring is empty
      if (!n) {
        if (n.error() == std::errc::interrupted) continue;
        die("getevents: " + n.error().message());
      }
      if (!check(std::span<const io_event>(evs.data(), *n), s.poll)) die("bad completion");
      std::array<std::ptrdiff_t, 2> per{};
      for (std::size_t i = 0; i < *n; ++i) {
        if (evs[i].data == sentinel) {
          last = true;
        } else {
          ++per[evs[i].data];
          ++reaped;
        }
      }
      for (std::size_t t = 0; t < 2; ++t)
        if (per[t] != 0) credit[t]->release(per[t]);
      done[2].fetch_add(static_cast<std::uint64_t>(per[0] + per[1]), std::memory_order_relaxed);
    }
    reaper_sw.fetch_add(voluntary_switches() - sw0, std::memory_order_relaxed);
  };

  const int wake = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
  if (wake < 0) die("eventfd");
  SliceResult r = timed(o, stop, done, [&](auto&& wait_slice) {
    std::thread rp(reaper);
    std::thread a(submitter, 0);
    std::thread b(submitter, 1);
    wait_slice();
    a.join();
    b.join();
    // Every request is submitted: a ready poll tells the reaper to drain and leave.
    iocb last = aio::make_poll(wake, aio::PollEvents::in);
    aio::set_user_data(last, sentinel);
    if (!ctx.submit(last)) die("submit sentinel");
    rp.join();
  });
  ::close(wake);
  r.switches = static_cast<double>(sw.load());
  r.reaper_switches = static_cast<double>(reaper_sw.load());
  return r;
}

// One thread's aio::Engine: `batch` Ops, each started again by its own completion.
struct EngineLoop {
  aio::Engine engine;
  const Setup* s = nullptr;
  std::size_t thread = 0;
  const std::atomic<bool>* stop = nullptr;
  std::uint64_t completed = 0;
  bool bad = false;
  std::array<aio::Op, max_batch> ops{};

  static void on_complete(aio::Op& op, aio::Result<std::size_t> r) noexcept {
    auto& l = *static_cast<EngineLoop*>(op.user);
    if (!r || (l.s->poll ? *r == 0 : *r != 4096)) l.bad = true;
    ++l.completed;
    if (l.stop->load(std::memory_order_relaxed)) return;
    op.cb = build(*l.s, l.thread, static_cast<std::size_t>(&op - l.ops.data()));
    l.engine.start(op);
  }
};

void engine_loop(const Options& o, const Setup& s, std::size_t thread, const std::atomic<bool>& stop,
                 std::atomic<std::uint64_t>& done, std::atomic<long>& sw) {
  const long sw0 = voluntary_switches();
  auto l = std::make_unique<EngineLoop>();
  auto e = aio::Engine::create({.queue_depth = ring_size});
  if (!e) die("engine: " + e.error().message());
  l->engine = std::move(*e);
  l->s = &s;
  l->thread = thread;
  l->stop = &stop;
  for (std::size_t i = 0; i < o.batch; ++i) {
    l->ops[i].on_complete = &EngineLoop::on_complete;
    l->ops[i].user = l.get();
    l->ops[i].cb = build(s, thread, i);
    l->engine.start(l->ops[i]);
  }
  while (!l->engine.idle()) {
    auto n = l->engine.run_once();
    if (!n && n.error() != std::errc::interrupted) die("run_once: " + n.error().message());
    done.store(l->completed, std::memory_order_relaxed);
  }
  if (l->bad) die("bad completion");
  sw.fetch_add(voluntary_switches() - sw0, std::memory_order_relaxed);
}

SliceResult run_engine(const Options& o, const Setup& s) {
  std::atomic<bool> stop{false};
  Counters done;
  std::atomic<long> sw{0};
  SliceResult r = timed(o, stop, done, [&](auto&& wait_slice) {
    std::thread a([&] { engine_loop(o, s, 0, stop, done[0], sw); });
    std::thread b([&] { engine_loop(o, s, 1, stop, done[1], sw); });
    wait_slice();
    a.join();
    b.join();
  });
  r.switches = static_cast<double>(sw.load());
  return r;
}

void usage() {
  std::puts(
      "usage: aiopp-bench-threads [options]\n"
      "  --workload read4k|poll  page-cache 4 KiB reads (default) or always-ready polls\n"
      "  --batch N         requests per io_submit (default 8, 1..128)\n"
      "  --qd N            shared-reap: requests in flight per submitter (default 32, >= batch)\n"
      "  --rounds R        (default 15)   --slice-ms M  wall time per mode per round (default 200)\n"
      "  --dir PATH        where the cached test file goes (default /tmp)\n"
      "Prints, per mode: median ops/s, the median per-round ratio to per-thread (p25..p75),\n"
      "CPU ns per op, and voluntary context switches per 1000 ops (submitters; reaper).");
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) die("missing value after " + a);
      return argv[++i];
    };
    if (a == "--workload") o.workload = value();
    else if (a == "--batch") o.batch = std::stoul(value());
    else if (a == "--qd") o.qd = std::stoul(value());
    else if (a == "--rounds") o.rounds = std::stoi(value());
    else if (a == "--slice-ms") o.slice_ms = std::stod(value());
    else if (a == "--dir") o.dir = value();
    else if (a == "-h" || a == "--help") {
      usage();
      std::exit(0);
    } else {
      die("unknown option " + a + " (--help)");
    }
  }
  if (o.workload != "read4k" && o.workload != "poll") die("--workload read4k|poll");
  if (o.batch == 0 || o.batch > max_batch) die("--batch 1..128");
  if (o.qd < o.batch || o.qd > ring_size / 4) die("--qd: batch..256");
  if (o.rounds < 3) die("--rounds >= 3");
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  Setup s;
  s.poll = o.workload == "poll";
  std::string path;
  if (s.poll) {
    s.fd = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s.fd < 0) die("eventfd");
  } else {
    path = o.dir + "/aiopp-bench-threads-XXXXXX";
    std::vector<char> name(path.begin(), path.end());
    name.push_back('\0');
    s.fd = ::mkstemp(name.data());
    if (s.fd < 0) die("mkstemp: " + std::string(std::strerror(errno)));
    path = name.data();
    std::vector<char> data(max_batch * 4096, 'a');
    if (::pwrite(s.fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) die("write");
    if (::pread(s.fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) die("pre-read");
  }
  void* mem = nullptr;
  if (::posix_memalign(&mem, 4096, 2 * max_batch * 4096) != 0) die("posix_memalign");
  s.buf = static_cast<std::byte*>(mem);

  struct Mode {
    const char* name;
    SliceResult (*run)(const Options&, const Setup&);
  };
  const std::array<Mode, 4> modes{{{"per-thread", run_per_thread},
                                   {"shared-reap", run_shared_reaper},
                                   {"shared-both", run_shared_both},
                                   {"engine", run_engine}}};
  std::printf("aiopp-bench-threads: %s, batch %zu, qd %zu (shared-reap), %d rounds x %.0f ms wall per mode, "
              "order rotated; %u CPUs\n",
              o.workload.c_str(), o.batch, o.qd, o.rounds, o.slice_ms, std::thread::hardware_concurrency());
  std::array<std::vector<double>, modes.size()> rate, ratio, cpu, sw, rsw;
  for (auto& m : modes) (void)m.run(o, s);  // warm-up, discarded
  for (int r = 0; r < o.rounds; ++r) {
    std::array<SliceResult, modes.size()> res{};
    for (std::size_t k = 0; k < modes.size(); ++k) {
      const std::size_t m = (k + static_cast<std::size_t>(r)) % modes.size();
      res[m] = modes[m].run(o, s);
    }
    for (std::size_t m = 0; m < modes.size(); ++m) {
      const double ops_s = res[m].ops * 1e9 / res[m].wall_ns;
      rate[m].push_back(ops_s);
      ratio[m].push_back(ops_s / (res[0].ops * 1e9 / res[0].wall_ns));
      cpu[m].push_back(res[m].cpu_ns / std::max(res[m].ops, 1.0));
      sw[m].push_back(res[m].switches * 1000 / std::max(res[m].ops, 1.0));
      rsw[m].push_back(res[m].reaper_switches * 1000 / std::max(res[m].ops, 1.0));
    }
  }
  std::printf("%-12s %12s %8s %18s %12s %16s\n", "mode", "ops/s", "ratio", "ratio p25..p75", "CPU ns/op",
              "vcsw/1k ops");
  for (std::size_t m = 0; m < modes.size(); ++m) {
    std::printf("%-12s %12.0f %8.3f %8.3f .. %.3f %12.0f %9.1f", modes[m].name, quantile(rate[m], 0.5),
                quantile(ratio[m], 0.5), quantile(ratio[m], 0.25), quantile(ratio[m], 0.75), quantile(cpu[m], 0.5),
                quantile(sw[m], 0.5));
    if (m == 1) std::printf("; reaper %.1f", quantile(rsw[m], 0.5));
    std::printf("\n");
  }
  for (std::size_t m = 0; m < modes.size(); ++m) {
    std::printf("THREADS %s %zu %zu %s %.0f %.4f %.4f %.4f %.0f %.2f %.2f\n", o.workload.c_str(), o.batch, o.qd,
                modes[m].name, quantile(rate[m], 0.5), quantile(ratio[m], 0.5), quantile(ratio[m], 0.25),
                quantile(ratio[m], 0.75), quantile(cpu[m], 0.5), quantile(sw[m], 0.5), quantile(rsw[m], 0.5));
  }
  std::free(mem);
  if (!path.empty()) ::unlink(path.c_str());
  ::close(s.fd);
  return 0;
}
