// aio-copy — copy a file through aiopp with a queue of reads and writes in flight.
//
// Each of the queue-depth slots runs its own little pipeline: read block -> write block ->
// read the next unclaimed block, so reads and writes of different blocks overlap and the
// kernel always has up to queue-depth requests. Completions are reaped in batches.
// The copy goes to a temp file next to the destination, renamed into place on success.
#include <libgen.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstdio>
#include <chrono>
#include <optional>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-copy [OPTIONS] SRC DST\n"
    "Copy the regular file SRC to DST (a file, or an existing directory: DST/basename(SRC))\n"
    "with Linux native AIO, keeping up to queue-depth reads and writes in flight.\n"
    "\n"
    "  -q, --queue-depth N   requests in flight, 1..65536 (default 32); reduced, with a note,\n"
    "                        when the system's fs.aio-max-nr has no room for N\n"
    "  -b, --block-size SIZE bytes per request, K/M/G suffixes (default 1M, max 1G)\n"
    "      --direct          use O_DIRECT (fail if unsupported; SIZE must be a multiple of 512)\n"
    "      --no-direct       buffered I/O\n"
    "                        (default: O_DIRECT when both files support it, else buffered)\n"
    "      --sync            fdatasync the copy (IOCB_CMD_FDSYNC) before renaming it into place\n"
    "      --stats           print the library's observer summary on stderr at the end: syscalls\n"
    "                        by kind, events from the ring vs by syscall, batch sizes, errors,\n"
    "                        per-request latency (submit -> reap), the most repeated calls\n"
    "      --progress        show a progress bar on stderr\n"
    "      --no-progress     no progress bar (default: a bar only when stderr is a terminal)\n"
    "  -h, --help            show this help and exit\n"
    "\n"
    "The copy is written to a temporary file in DST's directory and renamed over DST on\n"
    "success; on any error DST is left untouched. SRC's permission bits are preserved.\n"
    "Prints one summary line on stdout. Exit status: 0 ok, 1 runtime error, 2 usage error.\n";

enum OptId { kQueueDepth, kBlockSize, kDirect, kNoDirect, kSync, kStats, kProgress, kNoProgress, kHelp };
constexpr cli::OptSpec specs[] = {
    {"queue-depth", 'q', true, kQueueDepth}, {"block-size", 'b', true, kBlockSize},
    {"direct", 0, false, kDirect},           {"no-direct", 0, false, kNoDirect},
    {"sync", 0, false, kSync},               {"stats", 0, false, kStats},               {"progress", 0, false, kProgress},
    {"no-progress", 0, false, kNoProgress},  {"help", 'h', false, kHelp},
};

volatile sig_atomic_t g_stop = 0;
extern "C" void on_signal(int sig) { g_stop = sig; }

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

/// O_DIRECT alignment as the kernel reports it (aio::probe_fd: statx STATX_DIOALIGN,
/// Linux >= 6.1).
struct DioAlign {
  bool known = false;      // the kernel answered
  std::uint32_t mem = 0;   // 0 with known: O_DIRECT not supported on this file
  std::uint32_t offset = 0;
};

DioAlign dio_align(int fd) {
  DioAlign a;
  if (auto caps = aio::probe_fd(fd); caps && caps->dio_mem_align && caps->dio_offset_align) {
    a.known = true;
    a.mem = *caps->dio_mem_align;
    a.offset = *caps->dio_offset_align;
  }
  return a;
}

bool set_direct(int fd, bool on) {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) return false;
  const int want = on ? (flags | O_DIRECT) : (flags & ~O_DIRECT);
  return ::fcntl(fd, F_SETFL, want) == 0;
}

std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

class Progress {
 public:
  Progress(bool on, std::uint64_t total) : on_(on), total_(total), start_(cli::now_s()) {}
  void update(std::uint64_t done, bool final = false) {
    if (!on_) return;
    const double now = cli::now_s();
    if (!final && now - last_ < 0.1) return;
    last_ = now;
    const double elapsed = now - start_;
    const double rate = elapsed > 0 ? static_cast<double>(done) / elapsed : 0.0;
    const double pct = total_ == 0 ? 100.0 : 100.0 * static_cast<double>(done) / static_cast<double>(total_);
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    const auto eta_s = static_cast<unsigned long long>(eta + 0.5);
    constexpr int width = 24;
    const auto filled = static_cast<int>(pct / 100.0 * width);
    char bar[width + 1];
    for (int i = 0; i < width; ++i) bar[i] = i < filled ? '#' : '.';
    bar[width] = '\0';
    std::fprintf(stderr, "\r[%s] %5.1f%% %s / %s  %.1f MiB/s  ETA %llu:%02llu\033[K", bar, pct,
                 cli::human_bytes(done).c_str(), cli::human_bytes(total_).c_str(), rate / cli::mib,
                 eta_s / 60, eta_s % 60);
    if (final) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  bool on_;
  std::uint64_t total_;
  double start_;
  double last_ = 0;
};

struct Slot {
  enum class State { idle, reading, writing } state = State::idle;
  iocb cb{};
  std::byte* buf = nullptr;
  std::int64_t offset = 0;   // file offset of this slot's block
  std::uint64_t length = 0;  // the block's real length (<= block size)
  std::uint64_t target = 0;  // bytes the current request must move (write: padded length)
  std::uint64_t done = 0;    // bytes moved so far by the current request
};

int run(int argc, char** argv) {
  const auto args = cli::parse_args(argc, argv, specs);
  std::uint64_t qd = 32;
  std::uint64_t bs = 1 << 20;
  enum class Direct { automatic, on, off } direct = Direct::automatic;
  bool sync = false;
  bool stats = false;
  std::optional<bool> progress;
  for (const auto& o : args.opts) {
    switch (o.id) {
      case kHelp: std::fputs(usage_text, stdout); return 0;
      case kQueueDepth: qd = cli::parse_uint(o.value, "queue depth", 1, 65536); break;
      case kBlockSize: bs = cli::parse_size(o.value, "block size"); break;
      case kDirect: direct = Direct::on; break;
      case kNoDirect: direct = Direct::off; break;
      case kSync: sync = true; break;
      case kStats: stats = true; break;
      case kProgress: progress = true; break;
      case kNoProgress: progress = false; break;
      default: break;
    }
  }
  if (bs == 0) cli::usage_error("block size must be greater than 0");
  if (bs > (1ULL << 30)) cli::usage_error("block size must be at most 1G");
  if (direct == Direct::on && bs % 512 != 0) cli::usage_error("--direct needs a block size that is a multiple of 512");
  if (args.positionals.size() != 2)
    cli::usage_error(args.positionals.size() < 2 ? "missing file operand (usage: aio-copy [OPTIONS] SRC DST)"
                                                 : "too many operands (usage: aio-copy [OPTIONS] SRC DST)");
  if (args.positionals[0].empty() || args.positionals[1].empty()) cli::usage_error("empty file operand");
  const std::string src = args.positionals[0];
  std::string dst = args.positionals[1];

  // ---- source -------------------------------------------------------------------------
  cli::Fd sfd(::open(src.c_str(), O_RDONLY | O_CLOEXEC));
  if (!sfd.valid()) cli::fail(src, errno);
  struct stat sst {};
  if (::fstat(sfd.get(), &sst) != 0) cli::fail(src, errno);
  if (S_ISDIR(sst.st_mode)) cli::fail(src, EISDIR);
  if (!S_ISREG(sst.st_mode)) cli::fail(src + ": not a regular file");
  const auto size = static_cast<std::uint64_t>(sst.st_size);

  // ---- destination ----------------------------------------------------------------------
  struct stat dst_st {};
  bool dst_exists = ::stat(dst.c_str(), &dst_st) == 0;
  if (!dst_exists && errno != ENOENT) cli::fail(dst, errno);
  if (dst_exists && S_ISDIR(dst_st.st_mode)) {
    if (dst.back() != '/') dst += '/';
    dst += base_name(src);
    dst_exists = ::stat(dst.c_str(), &dst_st) == 0;
    if (!dst_exists && errno != ENOENT) cli::fail(dst, errno);
  } else if (!dst_exists && dst.back() == '/') {
    cli::fail(dst, ENOTDIR);
  }
  if (dst_exists) {
    if (dst_st.st_dev == sst.st_dev && dst_st.st_ino == sst.st_ino)
      cli::fail("'" + src + "' and '" + dst + "' are the same file");
    if (S_ISDIR(dst_st.st_mode)) cli::fail(dst, EISDIR);
    if (!S_ISREG(dst_st.st_mode)) cli::fail(dst + ": exists and is not a regular file");
    // Copy through a symlink to its target (as cp does) instead of replacing the link.
    struct stat lst {};
    if (::lstat(dst.c_str(), &lst) == 0 && S_ISLNK(lst.st_mode)) {
      std::unique_ptr<char, decltype(&std::free)> real(::realpath(dst.c_str(), nullptr), &std::free);
      if (!real) cli::fail(dst, errno);
      dst = real.get();
    }
  }

  std::string tmpl = dir_name(dst) + "/." + base_name(dst) + ".aio-copy.XXXXXX";
  std::vector<char> tmpl_buf(tmpl.begin(), tmpl.end());
  tmpl_buf.push_back('\0');
  cli::Fd tfd(::mkostemp(tmpl_buf.data(), O_CLOEXEC));
  if (!tfd.valid()) cli::fail(dst, errno);
  TempFile temp(tmpl_buf.data());

  // ---- O_DIRECT decision -----------------------------------------------------------------------
  std::uint64_t mem_align = 4096;
  std::uint64_t off_align = 1;
  bool use_direct = false;
  if (direct != Direct::off) {
    const DioAlign sa = dio_align(sfd.get());
    const DioAlign da = dio_align(tfd.get());
    std::string why;
    int err = 0;
    if ((sa.known && sa.mem == 0) || (da.known && da.mem == 0)) {
      err = EINVAL;
      why = (sa.known && sa.mem == 0) ? src : dst;
    }
    std::uint64_t oa = 4096;  // the safe guess when the kernel doesn't say
    if (err == 0 && sa.known && da.known) oa = std::max<std::uint64_t>(sa.offset, da.offset);
    if (err == 0 && sa.known) mem_align = std::max<std::uint64_t>(mem_align, sa.mem);
    if (err == 0 && da.known) mem_align = std::max<std::uint64_t>(mem_align, da.mem);
    if (err == 0 && !set_direct(sfd.get(), true)) {
      err = errno;
      why = src;
    }
    if (err == 0 && !set_direct(tfd.get(), true)) {
      err = errno;
      why = dst;
    }
    if (err == 0 && bs % oa != 0) {
      if (direct == Direct::on)
        cli::fail("--direct: block size " + std::to_string(bs) + " is not a multiple of the O_DIRECT alignment " +
                  std::to_string(oa));
      cli::note("block size is not a multiple of the O_DIRECT alignment " + std::to_string(oa) +
                ", using buffered I/O");
      (void)set_direct(sfd.get(), false);
      (void)set_direct(tfd.get(), false);
    } else if (err != 0) {
      if (direct == Direct::on) cli::fail("--direct: " + why, err);
      cli::note("O_DIRECT not available (" + why + ": " + std::strerror(err) + "), using buffered I/O");
      (void)set_direct(sfd.get(), false);
      (void)set_direct(tfd.get(), false);
    } else {
      use_direct = true;
      off_align = oa;
    }
  }

  // ---- the pipeline -------------------------------------------------------------------------
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::sigaction(SIGHUP, &sa, nullptr);

  const std::uint64_t nblocks = (size + bs - 1) / bs;
  const auto want_slots = static_cast<unsigned>(std::min<std::uint64_t>(qd, std::max<std::uint64_t>(nblocks, 1)));
  // Buffers and slots are declared before the Context: on an early exit the Context is
  // destroyed first, and io_destroy waits for in-flight I/O before the buffers are freed.
  // They are sized after it: when fs.aio-max-nr has no room for the whole queue depth the
  // Context shrinks (down to 1) and the copy runs with the depth it got.
  std::vector<aio::AlignedBuffer> buffers;
  std::vector<Slot> slots;
  cli::CountingContext ctx = cli::make_context(want_slots, stats ? want_slots : 0, /*shrink_to=*/1);
  const unsigned nslots = ctx.raw().max_events();
  slots.resize(nslots);
  if (nblocks > 0) {
    buffers.reserve(nslots);
    for (auto& s : slots) {
      buffers.push_back(cli::aligned_buffer(bs, mem_align));
      s.buf = buffers.back().data();
    }
  }
  std::vector<io_event> events(nslots);
  std::vector<iocb*> pending;
  pending.reserve(nslots);
  std::uint64_t ios = 0;
  std::uint64_t next_block = 0;
  std::uint64_t copied = 0;
  unsigned inflight = 0;

  const double t0 = cli::now_s();
  Progress bar(progress.value_or(::isatty(STDERR_FILENO) == 1), size);

  const auto start_read = [&](Slot& s) {
    s.offset = static_cast<std::int64_t>(next_block * bs);
    s.length = std::min<std::uint64_t>(bs, size - next_block * bs);
    ++next_block;
    s.state = Slot::State::reading;
    s.target = s.length;
    s.done = 0;
    // With O_DIRECT the request length must be aligned too: ask for the padded length,
    // the kernel stops at EOF.
    const std::uint64_t want = use_direct ? round_up(s.length, off_align) : s.length;
    s.cb = aio::make_pread(sfd.get(), {s.buf, want}, s.offset);
    aio::set_user_ptr(s.cb, &s);
    pending.push_back(&s.cb);
  };
  const auto start_write = [&](Slot& s) {
    s.state = Slot::State::writing;
    s.target = s.length;
    if (use_direct && s.length % off_align != 0) {
      // The tail block: write it padded to the alignment, ftruncate to the exact size later.
      s.target = round_up(s.length, off_align);
      std::memset(s.buf + s.length, 0, s.target - s.length);
    }
    s.done = 0;
    s.cb = aio::make_pwrite(tfd.get(), {s.buf, s.target}, s.offset);
    aio::set_user_ptr(s.cb, &s);
    pending.push_back(&s.cb);
  };
  const auto resubmit_rest = [&](Slot& s) {  // a short read/write: the remainder
    std::byte* p = s.buf + s.done;
    const std::int64_t off = s.offset + static_cast<std::int64_t>(s.done);
    if (s.state == Slot::State::reading) {
      const std::uint64_t rest = s.target - s.done;
      const std::uint64_t want = use_direct ? round_up(rest, off_align) : rest;
      s.cb = aio::make_pread(sfd.get(), {p, want}, off);
    } else {
      s.cb = aio::make_pwrite(tfd.get(), {p, s.target - s.done}, off);
    }
    aio::set_user_ptr(s.cb, &s);
    pending.push_back(&s.cb);
  };

  for (auto& s : slots)
    if (next_block < nblocks) start_read(s);

  while (!pending.empty() || inflight > 0) {
    if (g_stop != 0) cli::fail("interrupted");
    // submit_all: every accepted request is counted even when a later one fails.
    const aio::SubmitAll sub = aio::submit_all(ctx.raw(), pending);
    const std::size_t sent = sub.submitted;
    inflight += static_cast<unsigned>(sent);
    ios += sent;
    const bool retry_later = sub.error == std::errc::interrupted ||  // g_stop is checked above
                             (sub.error == std::errc::resource_unavailable_try_again && inflight > 0);  // reap first
    if (!sub.ok() && !retry_later) {
      const auto* s = reinterpret_cast<const Slot*>(static_cast<std::uintptr_t>(pending[sub.failed_index]->aio_data));
      cli::fail(s->state == Slot::State::reading ? src : dst, sub.error);
    }
    pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(sent));
    if (inflight == 0) continue;

    auto got = ctx.getevents(1, events);
    if (!got) {
      if (got.error() == std::errc::interrupted) continue;  // g_stop is checked above
      cli::fail("io_getevents", got.error());
    }
    for (std::size_t i = 0; i < *got; ++i) {
      const io_event& ev = events[i];
      --inflight;
      Slot& s = *aio::user_ptr<Slot>(ev);
      const bool reading = s.state == Slot::State::reading;
      auto res = aio::result(ev);
      if (!res) cli::fail(reading ? src : dst, res.error());
      if (*res == 0) {
        if (reading) cli::fail(src + ": file shrank while being copied");
        cli::fail(dst, EIO);  // a write that makes no progress
      }
      s.done += std::min<std::uint64_t>(*res, s.target - s.done);
      if (s.done < s.target) {
        resubmit_rest(s);
      } else if (reading) {
        start_write(s);
      } else {
        copied += s.length;
        s.state = Slot::State::idle;
        if (next_block < nblocks) start_read(s);
      }
    }
    bar.update(copied);
  }
  bar.update(copied, true);

  // ---- finish -----------------------------------------------------------------------------------
  if (use_direct && size % off_align != 0 && ::ftruncate(tfd.get(), static_cast<off_t>(size)) != 0)
    cli::fail(dst, errno);
  if (sync) {
    iocb cb = aio::make_fdsync(tfd.get());
    iocb* list[] = {&cb};
    if (const aio::SubmitAll sub = aio::submit_all(ctx.raw(), list); !sub.ok())
      cli::fail(dst + ": fdatasync", sub.error);
    ++ios;
    io_event ev{};
    // wait_until retries EINTR (SIGINT is checked once the sync is done) with no time limit.
    auto got = aio::wait_until(ctx.raw(), 1, {&ev, 1}, std::chrono::steady_clock::time_point::max());
    if (!got || *got != 1) cli::fail(dst + ": fdatasync", got ? std::make_error_code(std::errc::io_error) : got.error());
    if (auto r = aio::result(ev); !r) cli::fail(dst + ": fdatasync", r.error());
  }
  if (::fchmod(tfd.get(), sst.st_mode & 07777) != 0) cli::fail(dst, errno);
  if (g_stop != 0) cli::fail("interrupted");
  if (::rename(temp.path().c_str(), dst.c_str()) != 0) cli::fail(dst, errno);
  temp.commit();
  if (sync) {
    cli::Fd dfd(::open(dir_name(dst).c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.valid()) (void)::fsync(dfd.get());
  }
  const double secs = cli::now_s() - t0;
  const double rate = secs > 0 ? static_cast<double>(size) / cli::mib / secs : 0.0;
  std::printf("aio-copy: %llu bytes in %.3f s, %.1f MiB/s, %llu I/Os, %llu syscalls (%s, queue depth %llu, block size %s)\n",
              static_cast<unsigned long long>(size), secs, rate, static_cast<unsigned long long>(ios),
              static_cast<unsigned long long>(ctx.calls()), use_direct ? "O_DIRECT" : "buffered",
              static_cast<unsigned long long>(nslots < want_slots ? nslots : qd), cli::human_bytes(bs).c_str());
  if (stats) std::fputs(ctx.observer().summary().c_str(), stderr);
  return 0;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-copy", argc, argv, run); }
