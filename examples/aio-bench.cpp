// aio-bench — a small fio-like benchmark on aiopp.
//
// Each job (--numjobs, one thread each) keeps --qd requests in flight against the file.
// Default (engine mode): an aio::Engine per job; every completion starts the job's next
// request from its callback, and the engine submits everything started since its last
// flush in one io_submit — batching by construction, no batch size to choose. With
// --batch N (batch mode): one Context per job, io_submit of N requests at a time, reaping
// with io_getevents(min 1). Completion latency is measured from the io_submit (engine mode:
// the run that submitted it) to the reap that returned it, with one CLOCK_MONOTONIC read per
// call or run, not per request, into a fixed-size log-linear histogram: the hot loop never
// allocates.
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <thread>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-bench --file PATH [OPTIONS]\n"
    "Measure Linux native AIO throughput and latency on one file (a small fio).\n"
    "\n"
    "  -f, --file PATH      the file to use; created and filled with --size bytes if missing\n"
    "  -s, --size SIZE      file size to create / region to use, K/M/G suffixes\n"
    "                       (default: 256M for a new file, else the file's size)\n"
    "      --rw MODE        read | randread | write | randwrite | randrw (default randread)\n"
    "      --rwmixread PCT  randrw: percentage of reads, 0..100 (default 50)\n"
    "  -b, --bs SIZE        bytes per request (default 4K)\n"
    "  -q, --qd N           requests in flight per job, 1..65536 (default 32)\n"
    "      --engine         engine mode (the default): an aio::Engine per job; each\n"
    "                       completion starts the next request and everything started\n"
    "                       meanwhile goes in one io_submit\n"
    "      --batch N        batch mode instead: io_submit of N requests at a time, 1..qd\n"
    "  -j, --numjobs N      N jobs, each a thread with its own engine/context (default 1)\n"
    "  -t, --time SECONDS   how long to run, fractions allowed (default 5)\n"
    "      --direct         open the file with O_DIRECT (bs must be a multiple of 512)\n"
    "      --nowait         submit with RWF_NOWAIT; a request that would block is resubmitted\n"
    "                       without it (counted as 'would block'); where the file system does\n"
    "                       not support RWF_NOWAIT, a note says so and the run goes on without\n"
    "      --prio CLASS[:N] per-request I/O priority: rt, be or idle, level N 0..7 (default 4);\n"
    "                       rt needs CAP_SYS_ADMIN\n"
    "      --json           print one JSON object instead of the table (totals, per direction\n"
    "                       and per job; latency percentiles, mean, stddev, min, max; version\n"
    "                       and options)\n"
    "      --stats          also print the library's observer summary on stderr (syscalls by\n"
    "                       kind, ring vs syscall reaping, batch sizes, the most repeated calls)\n"
    "      --probe          print what this kernel, process (and --file, if given) allow for AIO\n"
    "                       and exit: io_setup, io_pgetevents, IOCB_CMD_POLL, ring reaping,\n"
    "                       O_DIRECT alignment, RWF_NOWAIT, I/O priorities\n"
    "  -h, --help           show this help and exit\n"
    "      --version        show the version and exit\n"
    "\n"
    "Reports IOPS, MiB/s, completion latency p50/p99/p99.9 (submit to reap), CPU time per\n"
    "I/O (user+sys) and syscalls per I/O. Random offsets are multiples of bs in the region.\n"
    "Exit status: 0 ok, 1 runtime error (with --probe: AIO unavailable), 2 usage error.\n";

enum OptId {
  kFile, kSize, kRw, kBs, kQd, kBatch, kTime, kDirect, kJson, kStats, kHelp, kProbe, kNowait, kPrio,
  kMix, kJobs, kEngine
};
constexpr cli::OptSpec specs[] = {
    {"file", 'f', true, kFile}, {"size", 's', true, kSize},   {"rw", 0, true, kRw},
    {"bs", 'b', true, kBs},     {"qd", 'q', true, kQd},       {"batch", 0, true, kBatch},
    {"time", 't', true, kTime}, {"direct", 0, false, kDirect}, {"json", 0, false, kJson}, {"stats", 0, false, kStats},
    {"help", 'h', false, kHelp}, {"probe", 0, false, kProbe}, {"nowait", 0, false, kNowait}, {"prio", 0, true, kPrio},
    {"rwmixread", 0, true, kMix}, {"numjobs", 'j', true, kJobs}, {"engine", 0, false, kEngine},
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
  void merge(const Histogram& o) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
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

/// Completions of one direction (reads or writes): count, bytes and latency distribution.
struct DirStats {
  Histogram hist;
  std::uint64_t ios = 0;
  std::uint64_t bytes = 0;
  double sum_ns = 0;
  double sumsq_ns = 0;
  std::uint64_t min_ns = UINT64_MAX;
  std::uint64_t max_ns = 0;

  void add(std::uint64_t lat_ns, std::uint64_t n) noexcept {
    hist.add(lat_ns);
    ++ios;
    bytes += n;
    const auto d = static_cast<double>(lat_ns);
    sum_ns += d;
    sumsq_ns += d * d;
    min_ns = std::min(min_ns, lat_ns);
    max_ns = std::max(max_ns, lat_ns);
  }
  void merge(const DirStats& o) noexcept {
    hist.merge(o.hist);
    ios += o.ios;
    bytes += o.bytes;
    sum_ns += o.sum_ns;
    sumsq_ns += o.sumsq_ns;
    min_ns = std::min(min_ns, o.min_ns);
    max_ns = std::max(max_ns, o.max_ns);
  }
  [[nodiscard]] double mean_ns() const noexcept { return ios ? sum_ns / static_cast<double>(ios) : 0; }
  [[nodiscard]] double stddev_ns() const noexcept {
    if (ios < 2) return 0;
    const double n = static_cast<double>(ios);
    const double var = (sumsq_ns - sum_ns * sum_ns / n) / (n - 1);
    return var > 0 ? std::sqrt(var) : 0;
  }
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

double seconds_of(const rusage& ru) {
  const auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return tv(ru.ru_utime) + tv(ru.ru_stime);
}

/// User + system CPU seconds of the process (RUSAGE_SELF) or the calling thread.
double cpu_seconds(int who = RUSAGE_SELF) {
  rusage ru{};
  ::getrusage(who, &ru);
  return seconds_of(ru);
}

// ---- configuration ---------------------------------------------------------------------------

enum class Pattern : std::uint8_t { read, randread, write, randwrite, randrw };

struct Config {
  std::string path;
  std::string rw = "randread";
  Pattern pattern = Pattern::randread;
  unsigned mix_read = 50;       // randrw: percent of reads
  std::uint64_t bs = 4096;
  std::uint64_t qd = 32;
  std::uint64_t batch = 0;      // 0: engine mode
  unsigned jobs = 1;
  double seconds = 5;
  bool direct = false;
  bool json = false;
  bool stats = false;
  bool nowait = false;
  std::optional<Priority> prio;
  std::string prio_text;
  std::uint64_t size = 0;       // the region used
  std::uint64_t nblocks = 0;
  std::size_t mem_align = 4096;

  [[nodiscard]] bool writing() const noexcept { return pattern != Pattern::read && pattern != Pattern::randread; }
  [[nodiscard]] bool random() const noexcept { return pattern != Pattern::read && pattern != Pattern::write; }
  [[nodiscard]] bool engine() const noexcept { return batch == 0; }
};

Config parse_config(int argc, char** argv, bool& probe, bool& help) {
  const auto args = cli::parse_args(argc, argv, specs);
  Config c;
  std::optional<std::uint64_t> size_opt;
  std::string batch_text;
  std::string mix_text;
  bool engine_given = false;
  for (const auto& o : args.opts) {
    switch (o.id) {
      case kHelp: help = true; return c;
      case kFile: c.path = o.value; break;
      case kSize: size_opt = cli::parse_size(o.value, "size"); break;
      case kRw: c.rw = o.value; break;
      case kMix: mix_text = o.value; break;
      case kBs: c.bs = cli::parse_size(o.value, "block size"); break;
      case kQd: c.qd = cli::parse_uint(o.value, "queue depth", 1, 65536); break;
      case kBatch: batch_text = o.value; break;
      case kEngine: engine_given = true; break;
      case kJobs: c.jobs = static_cast<unsigned>(cli::parse_uint(o.value, "numjobs", 1, 256)); break;
      case kTime: c.seconds = cli::parse_seconds(o.value, "time"); break;
      case kDirect: c.direct = true; break;
      case kJson: c.json = true; break;
      case kStats: c.stats = true; break;
      case kProbe: probe = true; break;
      case kNowait: c.nowait = true; break;
      case kPrio: c.prio = parse_prio(o.value); c.prio_text = o.value; break;
      default: break;
    }
  }
  if (!args.positionals.empty()) cli::usage_error("unexpected argument '" + args.positionals[0] + "' (try --help)");
  if (c.rw == "read") c.pattern = Pattern::read;
  else if (c.rw == "randread") c.pattern = Pattern::randread;
  else if (c.rw == "write") c.pattern = Pattern::write;
  else if (c.rw == "randwrite") c.pattern = Pattern::randwrite;
  else if (c.rw == "randrw") c.pattern = Pattern::randrw;
  else cli::usage_error("invalid --rw '" + c.rw + "' (read, randread, write, randwrite or randrw)");
  if (!mix_text.empty()) {
    if (c.pattern != Pattern::randrw) cli::usage_error("--rwmixread needs --rw randrw");
    c.mix_read = static_cast<unsigned>(cli::parse_uint(mix_text, "--rwmixread", 0, 100));
  }
  if (probe) return c;
  if (c.path.empty()) cli::usage_error("--file PATH is required (try --help)");
  if (!batch_text.empty()) {
    if (engine_given) cli::usage_error("--engine and --batch exclude each other (--batch selects batch mode)");
    c.batch = cli::parse_uint(batch_text, "batch", 1, c.qd);
  }
  if (c.bs == 0) cli::usage_error("block size must be greater than 0");
  if (c.bs > (1ULL << 30)) cli::usage_error("block size must be at most 1G");
  if (c.direct && c.bs % 512 != 0) cli::usage_error("--direct needs a block size that is a multiple of 512");
  if (c.seconds <= 0) cli::usage_error("--time must be greater than 0");
  if (size_opt && *size_opt == 0) cli::usage_error("size must be greater than 0");
  if (size_opt && *size_opt < c.bs)
    cli::usage_error("--size " + std::to_string(*size_opt) + " is smaller than the block size " + std::to_string(c.bs) +
                     " (no whole block fits)");
  if (size_opt) c.size = *size_opt;
  return c;
}

/// Creates/extends the file as asked, sets c.size (the region) and c.nblocks; checks that a
/// block fits and the O_DIRECT alignment. Returns the open file of the main thread.
cli::Fd prepare_file(Config& c, bool size_given) {
  struct stat st {};
  if (::stat(c.path.c_str(), &st) == 0) {
    if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) cli::fail(c.path + ": not a regular file");
    const auto file_size = static_cast<std::uint64_t>(st.st_size);
    if (S_ISREG(st.st_mode)) {
      if (size_given && file_size < c.size) create_file(c.path, file_size, c.size);
      if (!size_given) c.size = file_size;
      if (c.size < c.bs)
        cli::fail(c.path + ": file (" + std::to_string(c.size) + " bytes) is smaller than the block size " +
                  std::to_string(c.bs) + " (use a smaller --bs, or --size to extend it)");
    }
  } else if (errno == ENOENT) {
    if (!size_given) c.size = 256ULL << 20;
    create_file(c.path, 0, c.size);
  } else {
    cli::fail(c.path, errno);
  }
  cli::Fd fd = open_file(c.path, c.direct, c.writing());
  if (S_ISBLK(st.st_mode)) {
    const off_t end = ::lseek(fd.get(), 0, SEEK_END);
    if (end < 0) cli::fail(c.path, errno);
    const auto dev_size = static_cast<std::uint64_t>(end);
    if (!size_given || c.size > dev_size) c.size = dev_size;
    if (c.size < c.bs)
      cli::fail(c.path + ": device (" + std::to_string(c.size) + " bytes) is smaller than the block size " +
                std::to_string(c.bs));
  }
  c.nblocks = c.size / c.bs;
  // O_DIRECT: the buffers aligned as the file asks (at least a page), offsets and lengths
  // (multiples of bs) checked against the offset alignment when the kernel reports it.
  if (c.direct) {
    if (auto caps = aio::probe_fd(fd.get()); caps && caps->dio_mem_align && caps->dio_offset_align) {
      if (*caps->dio_mem_align == 0) cli::fail(c.path + ": O_DIRECT", EINVAL);
      c.mem_align = std::max<std::size_t>(c.mem_align, *caps->dio_mem_align);
      if (c.bs % *caps->dio_offset_align != 0)
        cli::fail("--direct: block size " + std::to_string(c.bs) + " is not a multiple of the O_DIRECT alignment " +
                  std::to_string(*caps->dio_offset_align));
    }
  }
  return fd;
}

// ---- one job ---------------------------------------------------------------------------------

/// A runtime error inside a job's thread: the first one is reported by the main thread.
struct JobError {
  std::string what;
};

/// The one-line note printed once per process when RWF_NOWAIT turns out to be unsupported.
std::atomic<bool> g_nowait_note{false};

struct JobResult {
  DirStats read;
  DirStats write;
  std::uint64_t would_block = 0;
  std::uint64_t syscalls = 0;
  double elapsed = 0;
  double cpu = 0;  // the job thread's user + system seconds
  std::optional<JobError> error;
};

class Job {
 public:
  Job(const Config& c, unsigned index)
      : c_(c), fd_(open_file(c.path, c.direct, c.writing())),
        seed_(0x2545F4914F6CDD1DULL ^ cli::now_ns() ^ (static_cast<std::uint64_t>(index) << 32)),
        next_seq_(c.nblocks * index / c.jobs), nowait_(c.nowait) {
    const auto nreq = static_cast<std::size_t>(c.qd);
    buffers_.reserve(nreq);
    for (std::size_t i = 0; i < nreq; ++i) {
      buffers_.push_back(cli::aligned_buffer(static_cast<std::size_t>(c.bs), c.mem_align));
      if (c.writing()) fill_pattern(buffers_.back().data(), static_cast<std::size_t>(c.bs), seed_);
    }
    if (c.engine()) {
      observer_ = std::make_unique<aio::Observer>();
      engine_ = cli::make_engine(static_cast<unsigned>(c.qd), observer_.get());
    } else {
      ctx_.emplace(cli::make_context(static_cast<unsigned>(c.qd)));
    }
  }
  Job(const Job&) = delete;
  Job& operator=(const Job&) = delete;
  ~Job() = default;

  /// Runs the job on the calling thread; never throws.
  void run() noexcept {
    try {
      const double cpu0 = cpu_seconds(RUSAGE_THREAD);
      const std::uint64_t t0 = cli::now_ns();
      stop_at_ = t0 + static_cast<std::uint64_t>(c_.seconds * 1e9);
      if (c_.engine()) {
        run_engine();
      } else {
        run_batch();
      }
      result_.elapsed = static_cast<double>(cli::now_ns() - t0) / 1e9;
      result_.cpu = cpu_seconds(RUSAGE_THREAD) - cpu0;
      result_.syscalls = c_.engine() ? observer_->total_syscalls() : ctx_->calls();
    } catch (const JobError& e) {
      result_.error = e;
    } catch (const std::exception& e) {
      result_.error = JobError{e.what()};
    }
  }
  [[nodiscard]] const JobResult& result() const noexcept { return result_; }
  [[nodiscard]] const aio::Observer& observer() const noexcept {
    return c_.engine() ? *observer_ : ctx_->observer();
  }

 private:
  // ---- requests ----
  [[nodiscard]] bool next_is_write() noexcept {
    switch (c_.pattern) {
      case Pattern::read:
      case Pattern::randread: return false;
      case Pattern::write:
      case Pattern::randwrite: return true;
      case Pattern::randrw: return xorshift(seed_) % 100 >= c_.mix_read;
    }
    return false;
  }
  /// The next request into cb, for buffer `buf`; returns whether it is a write.
  bool build(iocb& cb, std::byte* buf) noexcept {
    const std::uint64_t block = c_.random() ? xorshift(seed_) % c_.nblocks : next_seq_++ % c_.nblocks;
    const auto off = static_cast<std::int64_t>(block * c_.bs);
    const bool write = next_is_write();
    const std::span<std::byte> span(buf, static_cast<std::size_t>(c_.bs));
    cb = write ? aio::make_pwrite(fd_.get(), span, off) : aio::make_pread(fd_.get(), span, off);
    if (nowait_) aio::set_rw_flags(cb, aio::Rwf::nowait);
    if (c_.prio) aio::set_priority(cb, c_.prio->cls, c_.prio->level);
    return write;
  }
  [[nodiscard]] std::string what(bool write) const { return c_.path + (write ? ": write" : ": read"); }

  /// EOPNOTSUPP on a RWF_NOWAIT request: the file system has no RWF_NOWAIT for it. Says so
  /// once (one line), and the job goes on without the flag. Returns true when it applied.
  bool nowait_unsupported(const iocb& cb, std::error_code ec, bool write) {
    if (!aio::is_nowait(cb) || ec != std::errc::operation_not_supported) return false;
    nowait_ = false;
    if (!g_nowait_note.exchange(true))
      cli::note("note: " + c_.path + ": RWF_NOWAIT " + (write ? "writes" : "reads") +
                " are not supported here (EOPNOTSUPP); going on without --nowait");
    return true;
  }

  void account(bool write, std::uint64_t lat_ns, std::size_t n) noexcept {
    (write ? result_.write : result_.read).add(lat_ns, n);
  }

  // ---- engine mode ----
  struct Slot {
    aio::Op op;
    Job* job = nullptr;
    std::byte* buf = nullptr;
    std::uint64_t submitted_ns = 0;
    bool write = false;
  };

  /// The clock read once per engine run, by the first completion that needs it.
  std::uint64_t run_now() noexcept {
    if (now_ == 0) now_ = cli::now_ns();
    return now_;
  }

  void start(Slot& s, std::uint64_t stamp) noexcept {
    s.write = build(s.op.cb, s.buf);
    s.submitted_ns = stamp;
    engine_.start(s.op);
  }

  static void on_complete(aio::Op& op, aio::Result<std::size_t> r) noexcept {
    auto& s = *static_cast<Slot*>(op.user);
    s.job->completed(s, r);
  }

  void completed(Slot& s, aio::Result<std::size_t> r) noexcept {
    const std::uint64_t now = run_now();
    if (!r) {
      if (r.error() == std::errc::resource_unavailable_try_again && aio::is_nowait(s.op.cb)) {
        ++result_.would_block;  // RWF_NOWAIT said it would block: do it the blocking way
        s.op.cb = aio::without_nowait(s.op.cb);
        s.submitted_ns = now;
        engine_.start(s.op);
        return;
      }
      if (nowait_unsupported(s.op.cb, r.error(), s.write)) {
        s.op.cb = aio::without_nowait(s.op.cb);
        s.submitted_ns = now;
        engine_.start(s.op);
        return;
      }
      if (!error_) error_ = JobError{what(s.write) + ": " + r.error().message()};
      return;
    }
    account(s.write, now - s.submitted_ns, *r);
    if (!stopping_ && !error_) start(s, now);
  }

  void run_engine() {
    const std::size_t nreq = std::min<std::size_t>(buffers_.size(), engine_.queue_depth());
    std::vector<Slot> slots(nreq);
    const std::uint64_t t = cli::now_ns();
    for (std::size_t i = 0; i < nreq; ++i) {
      slots[i].op.on_complete = &on_complete;
      slots[i].op.user = &slots[i];
      slots[i].job = this;
      slots[i].buf = buffers_[i].data();
      start(slots[i], t);
    }
    while (!engine_.idle()) {
      now_ = 0;
      auto n = engine_.run_once();
      if (!n && n.error() != std::errc::interrupted) throw JobError{c_.path + ": engine: " + n.error().message()};
      if (error_) stopping_ = true;
      if (!stopping_ && (now_ != 0 ? now_ : cli::now_ns()) >= stop_at_) stopping_ = true;
    }
    if (error_) throw *error_;
  }

  // ---- batch mode ----
  struct Request {
    iocb cb{};
    std::byte* buf = nullptr;
    std::uint64_t submitted_ns = 0;
    bool write = false;
  };

  void run_batch() {
    cli::CountingContext& ctx = *ctx_;
    const auto nreq = static_cast<std::size_t>(c_.qd);
    std::vector<Request> reqs(nreq);
    for (std::size_t i = 0; i < nreq; ++i) reqs[i].buf = buffers_[i].data();
    std::vector<io_event> events(nreq);
    std::vector<iocb*> pending;
    pending.reserve(nreq);
    std::vector<Request*> pending_req;
    pending_req.reserve(nreq);
    const std::size_t batch = static_cast<std::size_t>(c_.batch);

    const auto prepare = [&](Request& r) {
      r.write = build(r.cb, r.buf);
      aio::set_user_ptr(r.cb, &r);
      pending.push_back(&r.cb);
      pending_req.push_back(&r);
    };
    std::size_t inflight = 0;
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
          Request& first = *pending_req[sent];
          if (nowait_unsupported(first.cb, r.error, first.write)) {
            for (std::size_t k = sent; k < pending.size(); ++k) pending_req[k]->cb = aio::without_nowait(pending_req[k]->cb);
            continue;
          }
          throw JobError{c_.path + ": io_submit: " + r.error.message()};
        }
      }
      pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(sent));
      pending_req.erase(pending_req.begin(), pending_req.begin() + static_cast<std::ptrdiff_t>(sent));
    };

    for (auto& r : reqs) prepare(r);
    flush();
    bool stopping = false;
    while (inflight > 0 || !pending.empty()) {
      auto got = ctx.getevents(1, events);
      if (!got) {
        if (got.error() == std::errc::interrupted) continue;
        throw JobError{c_.path + ": io_getevents: " + got.error().message()};
      }
      const std::uint64_t now = cli::now_ns();
      if (now >= stop_at_) stopping = true;
      for (std::size_t i = 0; i < *got; ++i) {
        Request& r = *aio::user_ptr<Request>(events[i]);
        --inflight;
        if (aio::would_block(events[i], r.cb)) {  // RWF_NOWAIT said it would block: do it the blocking way
          ++result_.would_block;
          r.cb = aio::without_nowait(r.cb);
          pending.push_back(&r.cb);
          pending_req.push_back(&r);
          continue;
        }
        auto res = aio::result(events[i]);
        if (!res && nowait_unsupported(r.cb, res.error(), r.write)) {
          r.cb = aio::without_nowait(r.cb);
          pending.push_back(&r.cb);
          pending_req.push_back(&r);
          continue;
        }
        if (!res) throw JobError{what(r.write) + ": " + res.error().message()};
        account(r.write, now - r.submitted_ns, *res);
        if (!stopping) prepare(r);
      }
      // Batches of `batch`; a partial batch only when nothing else is in flight (else we
      // would wait forever) or while stopping.
      if (pending.size() >= batch || (inflight == 0 && !pending.empty())) flush();
    }
  }

  const Config& c_;
  cli::Fd fd_;
  std::uint64_t seed_;
  std::uint64_t next_seq_;
  bool nowait_;
  bool stopping_ = false;
  std::uint64_t stop_at_ = 0;
  std::uint64_t now_ = 0;
  std::optional<JobError> error_;
  std::vector<aio::AlignedBuffer> buffers_;
  std::unique_ptr<aio::Observer> observer_;  // declared before the engine: outlives it
  aio::Engine engine_;
  std::optional<cli::CountingContext> ctx_;
  JobResult result_;
};

// ---- reporting ---------------------------------------------------------------------------------

struct Summary {
  DirStats read;
  DirStats write;
  DirStats all;
  std::uint64_t would_block = 0;
  std::uint64_t syscalls = 0;
  double elapsed = 0;
  double cpu = 0;
};

Summary summarize(const JobResult& r) {
  Summary s;
  s.read = r.read;
  s.write = r.write;
  s.all.merge(r.read);
  s.all.merge(r.write);
  s.would_block = r.would_block;
  s.syscalls = r.syscalls;
  s.elapsed = r.elapsed;
  s.cpu = r.cpu;
  return s;
}

/// v with `decimals` digits after the point.
std::string fmt(int decimals, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string json_lat(const DirStats& d) {
  return "{\"p50\": " + fmt(3, d.hist.quantile(0.50) / 1e3) + ", \"p90\": " + fmt(3, d.hist.quantile(0.90) / 1e3) +
         ", \"p99\": " + fmt(3, d.hist.quantile(0.99) / 1e3) + ", \"p99.9\": " + fmt(3, d.hist.quantile(0.999) / 1e3) +
         ", \"mean\": " + fmt(3, d.mean_ns() / 1e3) + ", \"stddev\": " + fmt(3, d.stddev_ns() / 1e3) +
         ", \"min\": " + fmt(3, d.ios ? static_cast<double>(d.min_ns) / 1e3 : 0.0) +
         ", \"max\": " + fmt(3, static_cast<double>(d.max_ns) / 1e3) + "}";
}

std::string json_dir(const DirStats& d, double elapsed) {
  const double iops = elapsed > 0 ? static_cast<double>(d.ios) / elapsed : 0;
  const double mibs = elapsed > 0 ? static_cast<double>(d.bytes) / cli::mib / elapsed : 0;
  return "{\"ios\": " + std::to_string(d.ios) + ", \"bytes\": " + std::to_string(d.bytes) + ", \"iops\": " +
         fmt(1, iops) + ", \"mib_s\": " + fmt(3, mibs) + ", \"lat_us\": " + json_lat(d) + "}";
}

/// The fields of one job or of the total: the combined figures first (flat), then per direction.
std::string json_fields(const Summary& s) {
  const double iops = s.elapsed > 0 ? static_cast<double>(s.all.ios) / s.elapsed : 0;
  const double mibs = s.elapsed > 0 ? static_cast<double>(s.all.bytes) / cli::mib / s.elapsed : 0;
  const double ios = static_cast<double>(s.all.ios);
  return "\"runtime_s\": " + fmt(6, s.elapsed) + ", \"ios\": " + std::to_string(s.all.ios) + ", \"bytes\": " +
         std::to_string(s.all.bytes) + ", \"iops\": " + fmt(1, iops) + ", \"mib_s\": " + fmt(3, mibs) +
         ", \"lat_us\": " + json_lat(s.all) + ", \"cpu_s\": " + fmt(6, s.cpu) + ", \"cpu_us_per_io\": " +
         fmt(4, ios > 0 ? s.cpu * 1e6 / ios : 0) + ", \"syscalls\": " + std::to_string(s.syscalls) +
         ", \"syscalls_per_io\": " + fmt(4, ios > 0 ? static_cast<double>(s.syscalls) / ios : 0) +
         ", \"would_block\": " + std::to_string(s.would_block) + ", \"read\": " + json_dir(s.read, s.elapsed) +
         ", \"write\": " + json_dir(s.write, s.elapsed);
}

void print_json(const Config& c, const Summary& total, const std::vector<Summary>& jobs) {
  std::string out = "{\"tool\": \"aio-bench\", \"version\": \"" AIOPP_VERSION_STRING "\", ";
  out += "\"options\": {\"file\": \"" + json_escape(c.path) + "\", \"rw\": \"" + c.rw + "\", \"rwmixread\": " +
         std::to_string(c.pattern == Pattern::randrw ? c.mix_read : (c.writing() ? 0U : 100U)) + ", \"bs\": " +
         std::to_string(c.bs) + ", \"qd\": " + std::to_string(c.qd) + ", \"mode\": \"" +
         (c.engine() ? "engine" : "batch") + "\", \"batch\": " + (c.engine() ? "null" : std::to_string(c.batch)) +
         ", \"numjobs\": " + std::to_string(c.jobs) + ", \"time_s\": " + fmt(3, c.seconds) + ", \"direct\": " +
         (c.direct ? "true" : "false") + ", \"nowait\": " + (c.nowait ? "true" : "false") + ", \"prio\": " +
         (c.prio ? "\"" + json_escape(c.prio_text) + "\"" : "null") + ", \"size\": " + std::to_string(c.size) + "}, ";
  // The options again at the top level, as before the "options" object existed.
  out += "\"file\": \"" + json_escape(c.path) + "\", \"rw\": \"" + c.rw + "\", \"bs\": " + std::to_string(c.bs) +
         ", \"qd\": " + std::to_string(c.qd) + ", \"batch\": " + (c.engine() ? "null" : std::to_string(c.batch)) +
         ", \"direct\": " + (c.direct ? "true" : "false") + ", \"size\": " + std::to_string(c.size) + ", ";
  out += json_fields(total) + ", \"jobs\": [";
  for (std::size_t i = 0; i < jobs.size(); ++i) {
    out += (i ? ", {\"job\": " : "{\"job\": ") + std::to_string(i) + ", " + json_fields(jobs[i]) + "}";
  }
  out += "]}\n";
  std::fputs(out.c_str(), stdout);
}

void print_table(const Config& c, const Summary& t, const std::vector<Summary>& jobs) {
  const auto ull = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };
  const std::string mode = c.engine() ? "engine" : "batch " + std::to_string(c.batch);
  std::string rw = c.rw;
  if (c.pattern == Pattern::randrw) rw += " (" + std::to_string(c.mix_read) + "% reads)";
  std::printf("aio-bench: %s, bs %s, qd %llu, %s, %u job%s, %s, %s region of %s\n", rw.c_str(),
              cli::human_bytes(c.bs).c_str(), ull(c.qd), mode.c_str(), c.jobs, c.jobs == 1 ? "" : "s",
              c.direct ? "O_DIRECT" : "buffered", cli::human_bytes(c.size).c_str(), c.path.c_str());
  const double ios = static_cast<double>(t.all.ios);
  std::printf("  %-18s %12.3f s\n", "runtime", t.elapsed);
  std::printf("  %-18s %12llu\n", "I/Os", ull(t.all.ios));
  std::printf("  %-18s %12.0f\n", "IOPS", t.elapsed > 0 ? ios / t.elapsed : 0);
  std::printf("  %-18s %12.1f MiB/s\n", "bandwidth", t.elapsed > 0 ? static_cast<double>(t.all.bytes) / cli::mib / t.elapsed : 0);
  if (c.pattern == Pattern::randrw) {
    std::printf("  %-18s %12.0f IOPS, p50 %.1f us\n", "reads", t.elapsed > 0 ? static_cast<double>(t.read.ios) / t.elapsed : 0,
                t.read.hist.quantile(0.5) / 1e3);
    std::printf("  %-18s %12.0f IOPS, p50 %.1f us\n", "writes", t.elapsed > 0 ? static_cast<double>(t.write.ios) / t.elapsed : 0,
                t.write.hist.quantile(0.5) / 1e3);
  }
  std::printf("  %-18s %12.1f us\n", "latency p50", t.all.hist.quantile(0.50) / 1e3);
  std::printf("  %-18s %12.1f us\n", "latency p99", t.all.hist.quantile(0.99) / 1e3);
  std::printf("  %-18s %12.1f us\n", "latency p99.9", t.all.hist.quantile(0.999) / 1e3);
  std::printf("  %-18s %12.1f us (stddev %.1f, max %.1f)\n", "latency mean", t.all.mean_ns() / 1e3,
              t.all.stddev_ns() / 1e3, static_cast<double>(t.all.max_ns) / 1e3);
  std::printf("  %-18s %12.2f us\n", "CPU per I/O", ios > 0 ? t.cpu * 1e6 / ios : 0);
  std::printf("  %-18s %12.3f (%llu syscalls)\n", "syscalls per I/O", ios > 0 ? static_cast<double>(t.syscalls) / ios : 0,
              ull(t.syscalls));
  if (c.nowait) std::printf("  %-18s %12llu (resubmitted without RWF_NOWAIT)\n", "would block", ull(t.would_block));
  if (jobs.size() > 1) {
    for (std::size_t i = 0; i < jobs.size(); ++i) {
      const auto& j = jobs[i];
      std::printf("  job %-14zu %12.0f IOPS, p50 %.1f us, p99 %.1f us, CPU per I/O %.2f us\n", i,
                  j.elapsed > 0 ? static_cast<double>(j.all.ios) / j.elapsed : 0, j.all.hist.quantile(0.5) / 1e3,
                  j.all.hist.quantile(0.99) / 1e3,
                  j.all.ios ? j.cpu * 1e6 / static_cast<double>(j.all.ios) : 0);
    }
  }
}

/// Runs every job: on this thread when there is one, else one thread each.
void run_jobs(std::vector<std::unique_ptr<Job>>& jobs) {
  if (jobs.size() == 1) {
    jobs[0]->run();
    return;
  }
  std::vector<std::thread> threads;
  threads.reserve(jobs.size());
  for (auto& j : jobs) threads.emplace_back([&j] { j->run(); });
  for (auto& t : threads) t.join();
}

/// The jobs summed; elapsed and CPU time are the whole run's (getrusage(RUSAGE_SELF)).
Summary total_of(const std::vector<std::unique_ptr<Job>>& jobs, double elapsed, double cpu) {
  Summary total;
  for (const auto& j : jobs) {
    const JobResult& r = j->result();
    total.read.merge(r.read);
    total.write.merge(r.write);
    total.all.merge(r.read);
    total.all.merge(r.write);
    total.would_block += r.would_block;
    total.syscalls += r.syscalls;
  }
  total.elapsed = elapsed;
  total.cpu = cpu;
  return total;
}

int run(int argc, char** argv) {
  bool probe = false;
  bool help = false;
  Config c = parse_config(argc, argv, probe, help);
  if (help) {
    std::fputs(usage_text, stdout);
    return 0;
  }
  if (probe) return print_probe(c.path, c.direct, c.writing());
  const bool size_given = c.size != 0;
  const cli::Fd main_fd = prepare_file(c, size_given);

  // Every job set up here, on the main thread (setup errors exit with one line), then run.
  std::vector<std::unique_ptr<Job>> jobs;
  jobs.reserve(c.jobs);
  for (unsigned i = 0; i < c.jobs; ++i) jobs.push_back(std::make_unique<Job>(c, i));
  const double cpu0 = cpu_seconds();
  const std::uint64_t t0 = cli::now_ns();
  run_jobs(jobs);
  const double elapsed = static_cast<double>(cli::now_ns() - t0) / 1e9;
  const double cpu = cpu_seconds() - cpu0;
  for (const auto& j : jobs)
    if (j->result().error) cli::fail(j->result().error->what);

  std::vector<Summary> per_job;
  for (const auto& j : jobs) per_job.push_back(summarize(j->result()));
  const Summary total = total_of(jobs, elapsed, cpu);
  if (c.json) {
    print_json(c, total, per_job);
  } else {
    print_table(c, total, per_job);
  }
  if (c.stats)
    for (const auto& j : jobs) std::fputs(j->observer().summary().c_str(), stderr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-bench", argc, argv, run); }
