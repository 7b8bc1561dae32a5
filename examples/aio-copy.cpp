// aio-copy — copy files through aiopp's completion engine (aio::Engine, coroutines).
//
// One coroutine per queue slot claims the next block of the source's data, reads it and
// writes it, then claims the next: up to queue-depth reads and writes are in flight. Only
// the data extents (SEEK_DATA/SEEK_HOLE) are copied, so holes stay holes. The copy goes to
// a temp file next to DST, renamed over it on success; --in-place writes into DST itself.
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <optional>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-copy [OPTIONS] SRC DST\n"
    "  or:  aio-copy [OPTIONS] SRC... DIR\n"
    "Copy regular files with Linux native AIO, keeping up to queue-depth reads and writes in\n"
    "flight. DST may be an existing directory (DST/basename(SRC)); with several SRCs the last\n"
    "operand must be one. A SRC that fails is reported and the others are still copied.\n"
    "\n"
    "  -q, --queue-depth N   requests in flight, 1..65536 (default 32); reduced, with a note,\n"
    "                        when the system's fs.aio-max-nr has no room for N\n"
    "  -b, --block-size SIZE bytes per request, K/M/G suffixes (default 1M, max 1G)\n"
    "      --direct          use O_DIRECT (fail if unsupported; SIZE must be a multiple of 512)\n"
    "      --no-direct       buffered I/O\n"
    "                        (default: O_DIRECT when both files support it, else buffered)\n"
    "      --sparse=WHEN     auto (default): holes of SRC (SEEK_HOLE) stay holes; always: also\n"
    "                        turn blocks of zeros into holes; never: write every byte\n"
    "      --in-place        write into the existing DST (keeps its inode, hard links and\n"
    "                        mode, as cp does); not atomic: an error leaves DST partly written\n"
    "      --sync            fdatasync the copy (IOCB_CMD_FDSYNC) before it replaces DST\n"
    "      --rate-limit RATE at most RATE bytes per second (K/M/G suffixes), e.g. for demos\n"
    "      --stats           print the library's observer summary on stderr at the end: syscalls\n"
    "                        by kind, events from the ring vs by syscall, batch sizes, errors,\n"
    "                        per-request latency (submit -> reap), the most repeated calls\n"
    "      --progress        show a progress bar on stderr (fits the terminal's width)\n"
    "      --no-progress     no progress bar (default: a bar only when stderr is a terminal)\n"
    "  -h, --help            show this help and exit\n"
    "      --version         show the version and exit\n"
    "\n"
    "By default the copy is written to a temporary file in DST's directory and renamed over\n"
    "DST on success, so DST is never partly written: DST becomes a new inode (hard links to\n"
    "the old DST keep the old content) with SRC's permission bits. FIFOs, sockets and devices\n"
    "are refused at once (never opened for reading). SIGINT/SIGTERM remove the temp file\n"
    "and exit 130/143. Prints one summary line per file on stdout.\n"
    "Exit status: 0 ok, 1 runtime error (any SRC failed), 2 usage error.\n";

enum OptId {
  kQueueDepth, kBlockSize, kDirect, kNoDirect, kSparse, kInPlace, kSync, kRate, kStats, kProgress, kNoProgress,
  kHelp, kVersion
};
constexpr cli::OptSpec specs[] = {
    {"queue-depth", 'q', true, kQueueDepth}, {"block-size", 'b', true, kBlockSize}, {"direct", 0, false, kDirect},
    {"no-direct", 0, false, kNoDirect},      {"sparse", 0, true, kSparse},          {"in-place", 0, false, kInPlace},
    {"sync", 0, false, kSync},               {"rate-limit", 0, true, kRate},        {"stats", 0, false, kStats},
    {"progress", 0, false, kProgress},       {"no-progress", 0, false, kNoProgress}, {"help", 'h', false, kHelp},
    {"version", 0, false, kVersion},
};

enum class Direct { automatic, on, off };
enum class Sparse { automatic, always, never };

struct Options {
  std::uint64_t qd = 32;
  std::uint64_t bs = 1 << 20;
  std::uint64_t rate = 0;  // bytes per second, 0: unlimited
  Direct direct = Direct::automatic;
  Sparse sparse = Sparse::automatic;
  bool in_place = false;
  bool sync = false;
  bool stats = false;
  bool progress = false;
};

volatile sig_atomic_t g_stop = 0;   // the stop signal's number
volatile sig_atomic_t g_winch = 0;  // the terminal was resized
extern "C" void on_stop(int sig) { g_stop = sig; }
extern "C" void on_winch(int /*sig*/) { g_winch = 1; }

void install_handlers() {
  struct sigaction sa {};
  sigemptyset(&sa.sa_mask);
  sa.sa_handler = on_stop;  // no SA_RESTART: a blocked wait returns EINTR
  for (int sig : {SIGINT, SIGTERM, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  sa.sa_handler = on_winch;
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGWINCH, &sa, nullptr);
}

/// Leaves with 128 + the signal's number once the caller's cleanup has run (see main()).
void check_stop() {
  if (g_stop != 0) throw cli::Exit{128 + g_stop};
}

std::string base_name(std::string path) {
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::string dir_name(const std::string& path) {
  const auto slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

const char* file_kind(mode_t mode) {
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  return "not a file";
}

/// Exits unless `st` is a regular file: a directory is EISDIR, anything else is refused.
void require_regular(const std::string& path, const struct stat& st) {
  if (S_ISDIR(st.st_mode)) cli::fail(path, EISDIR);
  if (!S_ISREG(st.st_mode)) cli::fail(path + ": not a regular file (" + file_kind(st.st_mode) + ")");
}

/// Removes the temp file on scope exit unless commit()ted.
class TempFile {
 public:
  explicit TempFile(std::string path) : path_(std::move(path)) {}
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  ~TempFile() {
    if (!committed_) ::unlink(path_.c_str());
  }
  void commit() noexcept { committed_ = true; }
  [[nodiscard]] const std::string& path() const noexcept { return path_; }

 private:
  std::string path_;
  bool committed_ = false;
};

// ---- progress bar ---------------------------------------------------------------------

/// The terminal width of stderr (TIOCGWINSZ), 80 when it is not a terminal.
int terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

/// "[####....]  45.2% 1.2 GiB/2.0 GiB 98.1 MiB/s ETA 0:12" redrawn in place, never wider
/// than the terminal's width minus one (so it never wraps); re-measured after SIGWINCH.
class Progress {
 public:
  Progress(bool on, std::uint64_t total) : on_(on), total_(total), start_(cli::now_s()), cols_(terminal_columns()) {}
  void update(std::uint64_t done, bool final = false) {
    if (!on_) return;
    const double now = cli::now_s();
    if (!final && now - last_ < 0.1 && g_winch == 0) return;
    last_ = now;
    if (g_winch != 0) {
      g_winch = 0;
      cols_ = terminal_columns();
    }
    const std::string line = render(done, now - start_, final);
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final ? "\n" : "");
    std::fflush(stderr);
  }

 private:
  [[nodiscard]] std::string render(std::uint64_t done, double elapsed, bool final) const {
    const double frac = total_ == 0 ? 1.0 : static_cast<double>(done) / static_cast<double>(total_);
    const bool rate_known = done > 0 && elapsed >= 0.2;
    const double rate = rate_known ? static_cast<double>(done) / elapsed : 0.0;
    char eta[32] = "ETA --:--";
    if (final) {
      const auto s = static_cast<unsigned long long>(elapsed + 0.5);
      std::snprintf(eta, sizeof eta, "in %llu:%02llu", s / 60, s % 60);
    } else if (rate_known) {
      const auto s = static_cast<unsigned long long>(static_cast<double>(total_ - done) / rate + 0.5);
      std::snprintf(eta, sizeof eta, "ETA %llu:%02llu", s / 60, s % 60);
    }
    char stats[160];
    std::snprintf(stats, sizeof stats, " %5.1f%% %s/%s %s %s", 100.0 * frac, cli::human_bytes(done).c_str(),
                  cli::human_bytes(total_).c_str(),
                  rate_known ? (cli::human_bytes(static_cast<std::uint64_t>(rate)) + "/s").c_str() : "-- B/s", eta);
    const int room = cols_ - 1;  // the last column would leave the cursor pending a wrap
    std::string line(stats);
    const int bar = std::min(room - static_cast<int>(line.size()) - 2, 40);
    if (bar >= 5) {
      const auto filled = static_cast<int>(frac * bar);
      std::string head(static_cast<std::size_t>(bar) + 2, '.');
      head.front() = '[';
      head.back() = ']';
      std::fill_n(head.begin() + 1, filled, '#');
      line.insert(0, head);
    } else {
      line.erase(0, 1);
    }
    if (static_cast<int>(line.size()) > room) line.resize(static_cast<std::size_t>(std::max(room, 0)));
    return line;
  }

  bool on_;
  std::uint64_t total_;
  double start_;
  double last_ = 0;
  int cols_;
};

// ---- what to copy ---------------------------------------------------------------------

struct Extent {
  std::uint64_t offset;
  std::uint64_t length;
};

/// The data extents of fd's first `size` bytes, offsets aligned down and ends up to `align`
/// (clamped to size). Sparse::never, or a file system without SEEK_DATA: all of it.
std::vector<Extent> data_extents(int fd, std::uint64_t size, Sparse sparse, std::uint64_t align) {
  std::vector<Extent> out;
  if (size == 0) return out;
  if (sparse == Sparse::never) return {{0, size}};
  std::uint64_t pos = 0;
  while (pos < size) {
    const off_t data = ::lseek(fd, static_cast<off_t>(pos), SEEK_DATA);
    if (data < 0 && errno == ENXIO) break;  // only a hole is left
    if (data < 0) return {{0, size}};
    off_t hole = ::lseek(fd, data, SEEK_HOLE);
    if (hole < 0) hole = static_cast<off_t>(size);
    const std::uint64_t begin = static_cast<std::uint64_t>(data) / align * align;
    const std::uint64_t end = std::min(round_up(static_cast<std::uint64_t>(hole), align), size);
    if (begin >= size) break;
    if (!out.empty() && begin <= out.back().offset + out.back().length)
      out.back().length = std::max(out.back().offset + out.back().length, end) - out.back().offset;
    else
      out.push_back({begin, end - begin});
    pos = end;
  }
  return out;
}

bool all_zero(const std::byte* p, std::size_t n) {
  return std::all_of(p, p + n, [](std::byte b) { return b == std::byte{0}; });
}

// ---- the copy -------------------------------------------------------------------------

/// One file's copy, shared by its slot coroutines.
struct Job {
  aio::Engine& engine;
  const Options& opt;
  int in = -1;
  int out = -1;
  std::string src;
  std::string dst;
  std::vector<Extent> extents{};
  std::uint64_t align = 1;  // O_DIRECT offset/length alignment; 1 when buffered
  std::size_t extent = 0;   // the next block: extents[extent], `into` bytes in
  std::uint64_t into = 0;
  std::uint64_t copied = 0;
  std::uint64_t ios = 0;
  std::string error{};  // the first failure, "what: why"
  Progress* bar = nullptr;
  double t0 = cli::now_s();

  /// The next block to copy; false when none is left, after a failure or a stop signal.
  bool claim(Extent& block) {
    if (!error.empty() || g_stop != 0 || extent == extents.size()) return false;
    const Extent& e = extents[extent];
    block = {e.offset + into, std::min(opt.bs, e.length - into)};
    into += block.length;
    if (into == e.length) {
      ++extent;
      into = 0;
    }
    return true;
  }
  void fail(const std::string& what, const std::string& why) {
    if (error.empty()) error = what + ": " + why;
  }
  /// A block is done: progress, and the rate limit (a blocking sleep: it stalls every slot).
  void done(std::uint64_t n) {
    copied += n;
    bar->update(copied);
    if (opt.rate == 0) return;
    const double due = t0 + static_cast<double>(copied) / static_cast<double>(opt.rate);
    for (double now = cli::now_s(); now < due && g_stop == 0; now = cli::now_s()) {
      const double wait = std::min(due - now, 0.1);
      const timespec ts{0, static_cast<long>(wait * 1e9)};
      ::nanosleep(&ts, nullptr);
    }
  }
};

/// A slot: claims blocks and copies each (read it whole, write it whole) until none is left.
aio::Task<> copy_blocks(Job& j, std::byte* buf) {
  Extent b{};
  while (j.claim(b)) {
    // A block is at most opt.bs (<= 1 GiB) padded to the alignment: a size_t on every ABI.
    const auto length = static_cast<std::size_t>(b.length);
    // O_DIRECT: lengths are padded to the alignment; the kernel stops a read at EOF.
    for (std::size_t got = 0; got < length;) {
      const auto want = static_cast<std::size_t>(round_up(length - got, j.align));
      auto n = co_await j.engine.read(j.in, std::span(buf + got, want), static_cast<std::int64_t>(b.offset + got));
      ++j.ios;
      if (!n || *n == 0) co_return j.fail(j.src, n ? "file shrank while being copied" : n.error().message());
      got += *n;
    }
    if (j.opt.sparse == Sparse::always && all_zero(buf, length)) {
      j.done(b.length);  // left a hole: the final ftruncate gives the file its size
      continue;
    }
    const auto len = static_cast<std::size_t>(round_up(length, j.align));
    std::memset(buf + length, 0, len - length);
    for (std::size_t put = 0; put < len;) {
      auto n = co_await j.engine.write(j.out, std::span<const std::byte>(buf + put, len - put),
                                       static_cast<std::int64_t>(b.offset + put));
      ++j.ios;
      if (!n || *n == 0) co_return j.fail(j.dst, n ? std::strerror(EIO) : n.error().message());
      put += *n;
    }
    j.done(b.length);
  }
}

aio::Task<aio::Result<std::size_t>> fdatasync(aio::Engine& engine, int fd) { co_return co_await engine.fdsync(fd); }

/// Runs one slot coroutine per buffer (at most one per block) until the job is done.
void run_job(Job& j, std::span<aio::AlignedBuffer> buffers) {
  std::uint64_t blocks = 0;
  for (const Extent& e : j.extents) blocks += (e.length + j.opt.bs - 1) / j.opt.bs;
  std::vector<aio::Task<>> slots;
  for (std::size_t i = 0; i < std::min<std::uint64_t>(blocks, buffers.size()); ++i)
    slots.push_back(copy_blocks(j, buffers[i].data()));
  aio::sync_wait(j.engine, aio::when_all(slots));
  check_stop();
  if (!j.error.empty()) cli::fail(j.error);
}

// ---- O_DIRECT ---------------------------------------------------------------------------

bool set_direct(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  return ::fcntl(fd, F_SETFL, on ? (flags | O_DIRECT) : (flags & ~O_DIRECT)) == 0;
}

/// Turns O_DIRECT on for both files when wanted and possible (buffers are aligned to
/// `mem_align`). Returns: the offset alignment, or 1 for buffered I/O. Exits when --direct
/// cannot be honoured.
std::uint64_t choose_direct(const Options& opt, int in, int out, const std::string& src, const std::string& dst,
                            std::uint64_t mem_align) {
  if (opt.direct == Direct::off) return 1;
  const auto sc = aio::probe_fd(in);
  const auto dc = aio::probe_fd(out);
  const bool s_known = sc && sc->dio_mem_align && sc->dio_offset_align;
  const bool d_known = dc && dc->dio_mem_align && dc->dio_offset_align;
  std::string who;
  int err = 0;
  if (s_known && (*sc->dio_mem_align == 0 || *sc->dio_mem_align > mem_align)) who = src, err = EINVAL;
  else if (d_known && (*dc->dio_mem_align == 0 || *dc->dio_mem_align > mem_align)) who = dst, err = EINVAL;
  else if (!set_direct(in, true)) who = src, err = errno;
  else if (!set_direct(out, true)) who = dst, err = errno;
  std::uint64_t oa = 4096;  // the safe guess when the kernel doesn't say
  if (s_known && d_known) oa = std::max<std::uint64_t>({*sc->dio_offset_align, *dc->dio_offset_align, 1});
  if (err == 0 && opt.bs % oa == 0) return oa;
  (void)set_direct(in, false);
  (void)set_direct(out, false);
  if (err == 0) {
    const std::string what = "block size " + std::to_string(opt.bs) + " is not a multiple of the O_DIRECT alignment " +
                             std::to_string(oa);
    if (opt.direct == Direct::on) cli::fail("--direct: " + what);
    cli::note(what + ", using buffered I/O");
  } else {
    if (opt.direct == Direct::on) cli::fail("--direct: " + who, err);
    cli::note("O_DIRECT not available (" + who + ": " + std::strerror(err) + "), using buffered I/O");
  }
  return 1;
}

// ---- one file -------------------------------------------------------------------------

/// Opens SRC for reading; refuses anything but a regular file without blocking (stat first,
/// then O_NONBLOCK, in case it was swapped for a FIFO meanwhile).
cli::Fd open_source(const std::string& src, struct stat& st) {
  if (::stat(src.c_str(), &st) != 0) cli::fail(src, errno);
  require_regular(src, st);
  cli::Fd fd(::open(src.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  if (!fd.valid()) cli::fail(src, errno);
  if (::fstat(fd.get(), &st) != 0) cli::fail(src, errno);
  require_regular(src, st);
  const int flags = ::fcntl(fd.get(), F_GETFL);
  if (flags < 0 || ::fcntl(fd.get(), F_SETFL, flags & ~O_NONBLOCK) != 0) cli::fail(src, errno);
  return fd;
}

/// The file DST names for SRC (DST/basename(SRC) for a directory), through a symlink to
/// its target (as cp does); exits when it is SRC itself or not a regular file.
std::string resolve_target(const std::string& src, const struct stat& sst, std::string dst) {
  struct stat st {};
  bool exists = ::stat(dst.c_str(), &st) == 0;
  if (!exists && errno != ENOENT) cli::fail(dst, errno);
  if (exists && S_ISDIR(st.st_mode)) {
    if (dst.back() != '/') dst += '/';
    dst += base_name(src);
    exists = ::stat(dst.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) cli::fail(dst, errno);
  } else if (!exists && dst.back() == '/') {
    cli::fail(dst, ENOTDIR);
  }
  if (!exists) return dst;
  if (st.st_dev == sst.st_dev && st.st_ino == sst.st_ino) cli::fail("'" + src + "' and '" + dst + "' are the same file");
  if (S_ISDIR(st.st_mode)) cli::fail(dst, EISDIR);
  if (!S_ISREG(st.st_mode)) cli::fail(dst + ": exists and is not a regular file");
  struct stat lst {};
  if (::lstat(dst.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
    std::unique_ptr<char, decltype(&std::free)> real(::realpath(dst.c_str(), nullptr), &std::free);
    if (!real) cli::fail(dst, errno);
    return real.get();
  }
  return dst;
}

struct Shared {
  aio::Engine& engine;
  const aio::Observer& observer;
  std::span<aio::AlignedBuffer> buffers;
  std::uint64_t buffer_align;
};

/// Copies SRC to DST (an operand as given); exits (cli::Exit) on failure with DST untouched
/// (unless --in-place).
void copy_file(const Options& opt, Shared& sh, const std::string& src, const std::string& dst_operand) {
  struct stat sst {};
  const cli::Fd in = open_source(src, sst);
  const std::string dst = resolve_target(src, sst, dst_operand);
  const auto size = static_cast<std::uint64_t>(sst.st_size);

  std::optional<TempFile> temp;
  cli::Fd out;
  if (opt.in_place) {
    out.reset(::open(dst.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, sst.st_mode & 07777));
  } else {
    std::string tmpl = dir_name(dst) + "/." + base_name(dst) + ".aio-copy.XXXXXX";
    out.reset(::mkostemp(tmpl.data(), O_CLOEXEC));
    if (out.valid()) temp.emplace(tmpl);
  }
  if (!out.valid()) cli::fail(dst, errno);

  const std::uint64_t calls0 = sh.observer.total_syscalls();
  const double t0 = cli::now_s();
  Progress bar(opt.progress, size);
  Job job{.engine = sh.engine, .opt = opt, .in = in.get(), .out = out.get(), .src = src, .dst = dst, .bar = &bar};
  job.align = choose_direct(opt, in.get(), out.get(), src, dst, sh.buffer_align);
  job.extents = data_extents(in.get(), size, opt.sparse, job.align);
  run_job(job, sh.buffers);
  bar.update(job.copied, true);

  if (::ftruncate(out.get(), static_cast<off_t>(size)) != 0) cli::fail(dst, errno);  // trailing hole, O_DIRECT pad
  if (opt.sync) {
    ++job.ios;
    if (auto r = aio::sync_wait(sh.engine, fdatasync(sh.engine, out.get())); !r) cli::fail(dst + ": fdatasync", r.error());
  }
  if (temp) {
    if (::fchmod(out.get(), sst.st_mode & 07777) != 0) cli::fail(dst, errno);
    check_stop();
    if (::rename(temp->path().c_str(), dst.c_str()) != 0) cli::fail(dst, errno);
    temp->commit();
    if (opt.sync) {
      const cli::Fd dir(::open(dir_name(dst).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
      if (dir.valid()) (void)::fsync(dir.get());
    }
  }
  const double secs = cli::now_s() - t0;
  const double rate = secs > 0 ? static_cast<double>(size) / cli::mib / secs : 0.0;
  std::printf("aio-copy: %llu bytes in %.3f s, %.1f MiB/s, %llu I/Os, %llu syscalls (%s, queue depth %u, block size %s)\n",
              static_cast<unsigned long long>(size), secs, rate, static_cast<unsigned long long>(job.ios),
              static_cast<unsigned long long>(sh.observer.total_syscalls() - calls0),
              job.align > 1 ? "O_DIRECT" : "buffered", sh.engine.queue_depth(), cli::human_bytes(opt.bs).c_str());
  std::fflush(stdout);
}

// ---- command line -----------------------------------------------------------------------

Options parse_options(const cli::ParsedArgs& args, bool& help) {
  Options opt;
  std::optional<bool> progress;
  for (const auto& o : args.opts) {
    switch (o.id) {
      case kHelp: help = true; break;
      case kVersion: cli::print_version();
      case kQueueDepth: opt.qd = cli::parse_uint(o.value, "queue depth", 1, 65536); break;
      case kBlockSize: opt.bs = cli::parse_size(o.value, "block size"); break;
      case kDirect: opt.direct = Direct::on; break;
      case kNoDirect: opt.direct = Direct::off; break;
      case kInPlace: opt.in_place = true; break;
      case kSync: opt.sync = true; break;
      case kStats: opt.stats = true; break;
      case kProgress: progress = true; break;
      case kNoProgress: progress = false; break;
      case kRate:
        opt.rate = cli::parse_size(o.value, "rate limit");
        if (opt.rate == 0) cli::usage_error("rate limit must be greater than 0");
        break;
      case kSparse:
        if (o.value == "auto") opt.sparse = Sparse::automatic;
        else if (o.value == "always") opt.sparse = Sparse::always;
        else if (o.value == "never") opt.sparse = Sparse::never;
        else cli::usage_error("invalid --sparse '" + o.value + "' (auto, always or never)");
        break;
      default: break;
    }
  }
  if (opt.bs == 0) cli::usage_error("block size must be greater than 0");
  if (opt.bs > (1ULL << 30)) cli::usage_error("block size must be at most 1G");
  if (opt.direct == Direct::on && opt.bs % 512 != 0)
    cli::usage_error("--direct needs a block size that is a multiple of 512");
  opt.progress = progress.value_or(::isatty(STDERR_FILENO) == 1);
  return opt;
}

/// Exits unless `path` is a directory (the target of several sources).
void require_directory(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) cli::fail("target '" + path + "'", errno);
  if (!S_ISDIR(st.st_mode)) cli::fail("target '" + path + "' is not a directory");
}

/// The queue depth worth asking for: no more than the largest source has blocks.
unsigned plan_depth(const Options& opt, std::span<const std::string> sources) {
  std::uint64_t blocks = 1;
  for (const auto& s : sources) {
    struct stat st {};
    if (::stat(s.c_str(), &st) == 0 && S_ISREG(st.st_mode))
      blocks = std::max<std::uint64_t>(blocks, (static_cast<std::uint64_t>(st.st_size) + opt.bs - 1) / opt.bs);
  }
  return static_cast<unsigned>(std::min(opt.qd, blocks));
}

int run(int argc, char** argv) {
  const auto args = cli::parse_args(argc, argv, specs);
  bool help = false;
  const Options opt = parse_options(args, help);
  if (help) return std::fputs(usage_text, stdout) < 0 ? 1 : 0;
  const auto& ops = args.positionals;
  if (ops.size() < 2) cli::usage_error("missing file operand (usage: aio-copy [OPTIONS] SRC DST)");
  if (std::ranges::any_of(ops, [](const std::string& s) { return s.empty(); })) cli::usage_error("empty file operand");
  const std::span<const std::string> sources(ops.data(), ops.size() - 1);
  if (sources.size() > 1) require_directory(ops.back());
  install_handlers();

  // Buffers before the Engine: an early exit destroys the Engine (which waits for its
  // requests) before them.
  constexpr std::uint64_t buffer_align = 4096;
  std::vector<aio::AlignedBuffer> buffers;
  aio::Observer observer(opt.stats ? static_cast<std::size_t>(opt.qd) : 0);  // qd <= 65536
  aio::Engine engine = cli::make_engine(plan_depth(opt, sources), &observer, /*shrink_to=*/1);
  for (unsigned i = 0; i < engine.queue_depth(); ++i)
    buffers.push_back(cli::aligned_buffer(static_cast<std::size_t>(opt.bs), buffer_align));  // bs <= 1 GiB
  Shared shared{engine, observer, buffers, buffer_align};

  int status = 0;
  for (const auto& src : sources) {
    try {
      copy_file(opt, shared, src, ops.back());
    } catch (const cli::Exit& e) {
      if (g_stop != 0 || sources.size() == 1) throw;
      status = e.code;
    }
  }
  if (opt.stats) std::fputs(observer.summary().c_str(), stderr);
  return status;
}

}  // namespace

int main(int argc, char** argv) {
  const int code = cli::run_main("aio-copy", argc, argv, run);
  if (g_stop != 0) {  // die by the signal, as the shell expects of an interrupted command
    ::signal(g_stop, SIG_DFL);
    ::raise(g_stop);
  }
  return code;
}
