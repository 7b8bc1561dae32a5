// aio-bench — a small fio-like benchmark on aiopp.
//
// Keeps --qd requests in flight against one file, submitting in batches of --batch and
// reaping with io_getevents(min 1). Each request's completion latency is measured from
// just before its io_submit to just after the io_getevents that returned it (one
// CLOCK_MONOTONIC read per call, not per request) into a fixed-size log-linear histogram,
// so the hot loop never allocates.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <optional>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-bench --file PATH [OPTIONS]\n"
    "Measure Linux native AIO throughput and latency on one file (a small fio).\n"
    "\n"
    "  -f, --file PATH      the file to use; created and filled with --size bytes if missing\n"
    "  -s, --size SIZE      file size to create / region to use, K/M/G suffixes\n"
    "                       (default: 256M for a new file, else the file's size)\n"
    "      --rw MODE        read | randread | write | randwrite (default randread)\n"
    "  -b, --bs SIZE        bytes per request (default 4K)\n"
    "  -q, --qd N           requests in flight, 1..65536 (default 32)\n"
    "      --batch N        requests per io_submit, 1..qd (default 1)\n"
    "  -t, --time SECONDS   how long to run, fractions allowed (default 5)\n"
    "      --direct         open the file with O_DIRECT (bs must be a multiple of 512)\n"
    "      --nowait         submit with RWF_NOWAIT; a request that would block is resubmitted\n"
    "                       without it (counted as 'would block' in the report)\n"
    "      --prio CLASS[:N] per-request I/O priority: rt, be or idle, level N 0..7 (default 4);\n"
    "                       rt needs CAP_SYS_ADMIN\n"
    "      --json           print one JSON object instead of the table\n"
    "      --stats          also print the library's observer summary on stderr (syscalls by\n"
    "                       kind, ring vs syscall reaping, batch sizes, the most repeated calls)\n"
    "      --probe          print what this kernel, process (and --file, if given) allow for AIO\n"
    "                       and exit: io_setup, io_pgetevents, IOCB_CMD_POLL, ring reaping,\n"
    "                       O_DIRECT alignment, RWF_NOWAIT, I/O priorities\n"
    "  -h, --help           show this help and exit\n"
    "\n"
    "Reports IOPS, MiB/s, completion latency p50/p99/p99.9 (submit to reap), CPU time per\n"
    "I/O (user+sys) and syscalls per I/O. Random offsets are multiples of bs in the region.\n"
    "Exit status: 0 ok, 1 runtime error (with --probe: AIO unavailable), 2 usage error.\n";

enum OptId { kFile, kSize, kRw, kBs, kQd, kBatch, kTime, kDirect, kJson, kStats, kHelp, kProbe, kNowait, kPrio };
constexpr cli::OptSpec specs[] = {
    {"file", 'f', true, kFile}, {"size", 's', true, kSize},   {"rw", 0, true, kRw},
    {"bs", 'b', true, kBs},     {"qd", 'q', true, kQd},       {"batch", 0, true, kBatch},
    {"time", 't', true, kTime}, {"direct", 0, false, kDirect}, {"json", 0, false, kJson}, {"stats", 0, false, kStats},
    {"help", 'h', false, kHelp}, {"probe", 0, false, kProbe}, {"nowait", 0, false, kNowait}, {"prio", 0, true, kPrio},
};

struct Priority {
  aio::IoprioClass cls = aio::IoprioClass::none;
  unsigned level = 4;
};

/// "rt", "be", "idle" (or "realtime", "best-effort"), optionally ":LEVEL" 0..7.
Priority parse_prio(const std::string& text) {
  const auto colon = text.find(':');
  const std::string name = text.substr(0, colon);
  Priority p;
  if (name == "rt" || name == "realtime") p.cls = aio::IoprioClass::realtime;
  else if (name == "be" || name == "best-effort") p.cls = aio::IoprioClass::best_effort;
  else if (name == "idle") p.cls = aio::IoprioClass::idle;
  else cli::usage_error("invalid --prio '" + text + "' (rt, be or idle, optionally :LEVEL)");
  if (colon != std::string::npos) p.level = static_cast<unsigned>(cli::parse_uint(text.substr(colon + 1), "--prio level", 0, 7));
  return p;
}

/// Opens the benchmark's file: read-only or read-write, O_DIRECT if asked; exits on failure.
cli::Fd open_file(const std::string& path, bool direct, bool writing) {
  cli::Fd fd(::open(path.c_str(), (writing ? O_RDWR : O_RDONLY) | O_CLOEXEC | (direct ? O_DIRECT : 0)));
  if (!fd.valid()) cli::fail(direct ? path + ": O_DIRECT open" : path, errno);
  return fd;
}

/// --probe: the system's capabilities, then the file's (opened as the benchmark would).
int print_probe(const std::string& path, bool direct, bool writing) {
  const aio::Capabilities caps = aio::probe();
  std::printf("aio-bench: probe of this kernel and process\n");
  std::fputs(aio::describe(caps).c_str(), stdout);
  if (!path.empty()) {
    const cli::Fd fd = open_file(path, direct, writing);
    auto fc = aio::probe_fd(fd.get());
    if (!fc) cli::fail(path + ": probe", fc.error());
    std::printf("aio-bench: probe of %s%s\n", path.c_str(), direct ? " (O_DIRECT)" : "");
    std::fputs(aio::describe(*fc).c_str(), stdout);
  }
  std::fflush(stdout);
  return caps.aio_available() ? 0 : cli::exit_runtime;
}

/// Log-linear latency histogram: 64 linear sub-buckets per power of two of nanoseconds.
/// Relative error below 1/64 (1.6%); covers 0 .. 2^44 ns (~4.9 hours). Fixed size.
class Histogram {
 public:
  void add(std::uint64_t ns) noexcept {
    ++counts_[index(ns)];
    ++total_;
  }
  [[nodiscard]] std::uint64_t total() const noexcept { return total_; }
  /// The value below which fraction q of the samples fall (the bucket's midpoint).
  [[nodiscard]] double quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return (static_cast<double>(lower(i)) + static_cast<double>(lower(i + 1))) / 2.0;
    }
    return static_cast<double>(lower(counts_.size()));
  }

 private:
  static constexpr unsigned sub_bits = 6;
  static constexpr std::size_t sub = 1U << sub_bits;
  static constexpr unsigned max_bits = 44;
  static std::size_t index(std::uint64_t v) noexcept {
    if (v < sub) return static_cast<std::size_t>(v);
    const auto msb = static_cast<unsigned>(63 - __builtin_clzll(v));  // >= sub_bits
    if (msb >= max_bits) return (max_bits - sub_bits + 1) * sub - 1;
    const unsigned shift = msb - sub_bits;
    return static_cast<std::size_t>((shift + 1) * sub + ((v >> shift) - sub));
  }
  static std::uint64_t lower(std::size_t i) noexcept {  // smallest value of bucket i
    if (i < sub) return i;
    const std::size_t shift = i / sub - 1;
    return (static_cast<std::uint64_t>(sub) + i % sub) << shift;
  }
  std::array<std::uint64_t, (max_bits - sub_bits + 1) * sub> counts_{};
  std::uint64_t total_ = 0;
};

struct Request {
  iocb cb{};
  std::byte* buf = nullptr;
  std::uint64_t submitted_ns = 0;
};

std::uint64_t xorshift(std::uint64_t& s) noexcept {
  s ^= s >> 12;
  s ^= s << 25;
  s ^= s >> 27;
  return s * 0x2545F4914F6CDD1DULL;
}

void fill_pattern(std::byte* p, std::size_t n, std::uint64_t& seed) {
  std::size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const std::uint64_t r = xorshift(seed);
    std::memcpy(p + i, &r, 8);
  }
  for (; i < n; ++i) p[i] = static_cast<std::byte>(xorshift(seed));
}

/// Creates (or extends) `path` to `size` bytes of pseudo-random data with plain writes.
void create_file(const std::string& path, std::uint64_t from, std::uint64_t size) {
  cli::Fd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644));
  if (!fd.valid()) cli::fail(path, errno);
  std::vector<std::byte> chunk(1 << 20);
  std::uint64_t seed = 0x9E3779B97F4A7C15ULL;
  for (std::uint64_t off = from; off < size;) {
    const auto n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), size - off));
    fill_pattern(chunk.data(), n, seed);
    const ssize_t w = ::pwrite(fd.get(), chunk.data(), n, static_cast<off_t>(off));
    if (w < 0) {
      if (errno == EINTR) continue;
      cli::fail(path, errno);
    }
    if (w == 0) cli::fail(path, EIO);
    off += static_cast<std::uint64_t>(w);
  }
}

std::string json_escape(const std::string& s) {
  std::string out;
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += static_cast<char>(c);
    } else if (c < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

double cpu_seconds() {
  rusage ru{};
  ::getrusage(RUSAGE_SELF, &ru);
  const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

int run(int argc, char** argv) {
  const auto args = cli::parse_args(argc, argv, specs);
  std::string path;
  std::optional<std::uint64_t> size_opt;
  std::string rw = "randread";
  std::uint64_t bs = 4096;
  std::uint64_t qd = 32;
  std::uint64_t batch = 1;
  bool batch_given = false;
  std::string batch_text;
  double seconds = 5;
  bool direct = false;
  bool json = false;
  bool stats = false;
  bool probe = false;
  bool nowait = false;
  std::optional<Priority> prio;
  for (const auto& o : args.opts) {
    switch (o.id) {
      case kHelp: std::fputs(usage_text, stdout); return 0;
      case kFile: path = o.value; break;
      case kSize: size_opt = cli::parse_size(o.value, "size"); break;
      case kRw: rw = o.value; break;
      case kBs: bs = cli::parse_size(o.value, "block size"); break;
      case kQd: qd = cli::parse_uint(o.value, "queue depth", 1, 65536); break;
      case kBatch: batch_text = o.value; batch_given = true; break;
      case kTime: seconds = cli::parse_seconds(o.value, "time"); break;
      case kDirect: direct = true; break;
      case kJson: json = true; break;
      case kStats: stats = true; break;
      case kProbe: probe = true; break;
      case kNowait: nowait = true; break;
      case kPrio: prio = parse_prio(o.value); break;
      default: break;
    }
  }
  if (!args.positionals.empty()) cli::usage_error("unexpected argument '" + args.positionals[0] + "' (try --help)");
  if (rw != "read" && rw != "randread" && rw != "write" && rw != "randwrite")
    cli::usage_error("invalid --rw '" + rw + "' (read, randread, write or randwrite)");
  if (probe) return print_probe(path, direct, rw == "write" || rw == "randwrite");
  if (path.empty()) cli::usage_error("--file PATH is required (try --help)");
  if (batch_given) batch = cli::parse_uint(batch_text, "batch", 1, qd);
  if (bs == 0) cli::usage_error("block size must be greater than 0");
  if (bs > (1ULL << 30)) cli::usage_error("block size must be at most 1G");
  if (direct && bs % 512 != 0) cli::usage_error("--direct needs a block size that is a multiple of 512");
  if (seconds <= 0) cli::usage_error("--time must be greater than 0");
  if (size_opt && *size_opt == 0) cli::usage_error("size must be greater than 0");
  const bool writing = rw == "write" || rw == "randwrite";
  const bool random = rw == "randread" || rw == "randwrite";

  // ---- the file -----------------------------------------------------------------------------
  struct stat st {};
  std::uint64_t size = 0;
  if (::stat(path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) cli::fail(path + ": not a regular file");
    size = static_cast<std::uint64_t>(st.st_size);
    if (size_opt && S_ISREG(st.st_mode) && size < *size_opt) create_file(path, size, *size_opt);
    if (size_opt) size = *size_opt;
  } else if (errno == ENOENT) {
    size = size_opt.value_or(256ULL << 20);
    create_file(path, 0, size);
  } else {
    cli::fail(path, errno);
  }
  const cli::Fd fd = open_file(path, direct, writing);
  if (S_ISBLK(st.st_mode) && !size_opt) {
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) cli::fail(path, errno);
    size = static_cast<std::uint64_t>(end);
  }
  const std::uint64_t nblocks = size / bs;
  if (nblocks == 0)
    cli::fail(path + ": file (" + std::to_string(size) + " bytes) is smaller than the block size " + std::to_string(bs));
  // O_DIRECT: the buffers aligned as the file asks (at least a page), offsets and lengths
  // (multiples of bs) checked against the offset alignment when the kernel reports it.
  std::size_t mem_align = 4096;
  if (direct) {
    if (auto caps = aio::probe_fd(fd.get()); caps && caps->dio_mem_align && caps->dio_offset_align) {
      if (*caps->dio_mem_align == 0) cli::fail(path + ": O_DIRECT", EINVAL);
      mem_align = std::max<std::size_t>(mem_align, *caps->dio_mem_align);
      if (bs % *caps->dio_offset_align != 0)
        cli::fail("--direct: block size " + std::to_string(bs) + " is not a multiple of the O_DIRECT alignment " +
                  std::to_string(*caps->dio_offset_align));
    }
  }

  // ---- buffers, requests, context (the Context last: destroyed first) -------------------------
  const auto nreq = static_cast<std::size_t>(qd);
  std::vector<aio::AlignedBuffer> buffers;
  buffers.reserve(nreq);
  std::vector<Request> reqs(nreq);
  std::uint64_t seed = 0x2545F4914F6CDD1DULL ^ cli::now_ns();
  for (auto& r : reqs) {
    buffers.push_back(cli::aligned_buffer(static_cast<std::size_t>(bs), mem_align));
    r.buf = buffers.back().data();
    if (writing) fill_pattern(r.buf, static_cast<std::size_t>(bs), seed);
  }
  cli::CountingContext ctx = cli::make_context(static_cast<unsigned>(qd));
  std::vector<io_event> events(nreq);
  std::vector<iocb*> pending;
  pending.reserve(nreq);
  std::vector<Request*> pending_req;
  pending_req.reserve(nreq);
  Histogram hist;

  std::uint64_t next_seq = 0;
  const auto prepare = [&](Request& r) {
    const std::uint64_t block = random ? xorshift(seed) % nblocks : next_seq++ % nblocks;
    const auto off = static_cast<std::int64_t>(block * bs);
    r.cb = writing ? aio::make_pwrite(fd.get(), {r.buf, bs}, off) : aio::make_pread(fd.get(), {r.buf, bs}, off);
    aio::set_user_ptr(r.cb, &r);
    if (nowait) aio::set_rw_flags(r.cb, aio::Rwf::nowait);
    if (prio) aio::set_priority(r.cb, prio->cls, prio->level);
    pending.push_back(&r.cb);
    pending_req.push_back(&r);
  };
  std::size_t inflight = 0;
  std::uint64_t ios = 0;
  std::uint64_t bytes = 0;
  std::uint64_t would_block = 0;
  // Submits everything pending, `batch` requests per io_submit (submit_all: a partial submit
  // is continued, and an accepted request is never lost track of).
  const auto flush = [&]() {
    std::size_t sent = 0;
    while (sent < pending.size()) {
      const std::size_t want = std::min<std::size_t>(pending.size() - sent, batch);
      const std::uint64_t t = cli::now_ns();
      for (std::size_t k = sent; k < sent + want; ++k) pending_req[k]->submitted_ns = t;
      const aio::SubmitAll r = aio::submit_all(ctx.raw(), std::span<iocb* const>(pending).subspan(sent, want));
      sent += r.submitted;
      inflight += r.submitted;
      if (!r.ok()) {
        if (r.error == std::errc::resource_unavailable_try_again && inflight > 0) break;
        if (r.error == std::errc::interrupted) continue;
        cli::fail(path + ": io_submit", r.error);
      }
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(sent));
    pending_req.erase(pending_req.begin(), pending_req.begin() + static_cast<std::ptrdiff_t>(sent));
  };

  const double cpu0 = cpu_seconds();
  const std::uint64_t calls0 = ctx.calls();
  const std::uint64_t t0 = cli::now_ns();
  const std::uint64_t stop_at = t0 + static_cast<std::uint64_t>(seconds * 1e9);
  for (auto& r : reqs) prepare(r);
  flush();
  bool stopping = false;
  while (inflight > 0 || !pending.empty()) {
    auto got = ctx.getevents(1, events);
    if (!got) {
      if (got.error() == std::errc::interrupted) continue;
      cli::fail(path + ": io_getevents", got.error());
    }
    const std::uint64_t now = cli::now_ns();
    if (now >= stop_at) stopping = true;
    for (std::size_t i = 0; i < *got; ++i) {
      Request& r = *aio::user_ptr<Request>(events[i]);
      --inflight;
      if (aio::would_block(events[i], r.cb)) {  // RWF_NOWAIT said it would block: do it the blocking way
        ++would_block;
        r.cb = aio::without_nowait(r.cb);
        pending.push_back(&r.cb);
        pending_req.push_back(&r);
        continue;
      }
      auto res = aio::result(events[i]);
      if (!res && nowait && res.error() == std::errc::operation_not_supported)
        cli::fail(path + (writing ? ": RWF_NOWAIT write" : ": RWF_NOWAIT read") +
                  " is not supported here (see --probe; run without --nowait)");
      if (!res) cli::fail(path + (writing ? ": write" : ": read"), res.error());
      ++ios;
      bytes += *res;
      hist.add(now - r.submitted_ns);
      if (!stopping) prepare(r);
    }
    // Batches of `batch`; a partial batch only when nothing else is in flight (else we
    // would wait forever) or while stopping.
    if (pending.size() >= batch || (inflight == 0 && !pending.empty())) flush();
  }
  const double elapsed = static_cast<double>(cli::now_ns() - t0) / 1e9;
  const double cpu = cpu_seconds() - cpu0;
  const std::uint64_t calls = ctx.calls() - calls0;

  const double iops = elapsed > 0 ? static_cast<double>(ios) / elapsed : 0;
  const double mibs = elapsed > 0 ? static_cast<double>(bytes) / cli::mib / elapsed : 0;
  const double p50 = hist.quantile(0.50) / 1e3;
  const double p99 = hist.quantile(0.99) / 1e3;
  const double p999 = hist.quantile(0.999) / 1e3;
  const double cpu_per_io = ios ? cpu * 1e6 / static_cast<double>(ios) : 0;
  const double sys_per_io = ios ? static_cast<double>(calls) / static_cast<double>(ios) : 0;
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };

  if (json) {
    std::printf(
        "{\"file\": \"%s\", \"rw\": \"%s\", \"bs\": %llu, \"qd\": %llu, \"batch\": %llu, \"direct\": %s, "
        "\"size\": %llu, \"runtime_s\": %.6f, \"ios\": %llu, \"bytes\": %llu, \"iops\": %.1f, \"mib_s\": %.3f, "
        "\"lat_us\": {\"p50\": %.3f, \"p99\": %.3f, \"p99.9\": %.3f}, \"cpu_us_per_io\": %.4f, "
        "\"syscalls\": %llu, \"syscalls_per_io\": %.4f, \"would_block\": %llu}\n",
        json_escape(path).c_str(), rw.c_str(), ull(bs), ull(qd), ull(batch), direct ? "true" : "false", ull(size),
        elapsed, ull(ios), ull(bytes), iops, mibs, p50, p99, p999, cpu_per_io, ull(calls), sys_per_io,
        ull(would_block));
  } else {
    std::printf("aio-bench: %s, bs %s, qd %llu, batch %llu, %s, %s region of %s\n", rw.c_str(),
                cli::human_bytes(bs).c_str(), ull(qd), ull(batch), direct ? "O_DIRECT" : "buffered",
                cli::human_bytes(size).c_str(), path.c_str());
    std::printf("  %-18s %12.3f s\n", "runtime", elapsed);
    std::printf("  %-18s %12llu\n", "I/Os", ull(ios));
    std::printf("  %-18s %12.0f\n", "IOPS", iops);
    std::printf("  %-18s %12.1f MiB/s\n", "bandwidth", mibs);
    std::printf("  %-18s %12.1f us\n", "latency p50", p50);
    std::printf("  %-18s %12.1f us\n", "latency p99", p99);
    std::printf("  %-18s %12.1f us\n", "latency p99.9", p999);
    std::printf("  %-18s %12.2f us\n", "CPU per I/O", cpu_per_io);
    std::printf("  %-18s %12.3f (%llu syscalls)\n", "syscalls per I/O", sys_per_io, ull(calls));
    if (nowait) std::printf("  %-18s %12llu (resubmitted without RWF_NOWAIT)\n", "would block", ull(would_block));
  }
  if (stats) std::fputs(ctx.observer().summary().c_str(), stderr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-bench", argc, argv, run); }
