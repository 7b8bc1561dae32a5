// Soak: several submitter threads and one reaper share one aio::Context for a long mixed
// run — buffered 4 KiB reads and writes (plain and vectored), fsync, fdatasync, polls on
// pipes made ready by a write, polls cancelled with io_cancel, and polls whose cancel races
// with their readiness — first with ReapMode::automatic (userspace ring), then with
// ReapMode::syscall. ctest label "soak", RUN_SERIAL (it compares system-wide aio-nr).
//
// What is asserted:
//   - every accepted request completes exactly once: each carries (slot, unique id) in its
//     user data, and the reaper moves the slot from "in flight" to "completed" with a
//     compare-exchange that only the first completion of that id can win; a duplicate,
//     stale or unknown completion is counted and fails the test; the run ends only when
//     every submitter has had all its requests back, and completions == accepted requests;
//   - every read returns the bytes last written to that block: a block has one request in
//     flight at a time and is owned by one submitter, each write stores a new version of a
//     checksummed pattern (block index, version, checksum of the body, body derived from
//     both), a read is issued only after the write's completion was seen and must return
//     exactly that version; at the end of each phase every block is read back synchronously;
//   - polls: a poll made ready completes with POLLIN (see is_ready_mask); a cancelled poll on an empty pipe
//     completes with res == 0 (aio_poll_complete_work reports the empty mask); when a byte
//     is written and the poll cancelled at once (in either order), either the cancel wins
//     (io_cancel accepted, res 0) or the readiness wins (io_cancel: EINVAL, res POLLIN) —
//     both outcomes are counted, nothing else is accepted, and the poll completes exactly
//     once either way; the pipe must be empty again once its poll is processed;
//   - nothing leaks: /proc/self/fd entries, [aio] ring mappings in /proc/self/maps and
//     mallinfo2() in-use heap bytes are compared before and after (heap: at most
//     kHeapSlack bytes more, for glibc's per-thread arena bookkeeping and gtest), and
//     /proc/sys/fs/aio-nr must come back to its starting value (RUN_SERIAL: no other test
//     of this project runs meanwhile; up to 10 s are allowed for unrelated processes, and
//     if other processes visibly hold AIO contexts then, the comparison is reported as
//     not made — on a machine shared with other AIO users it cannot be exact).
//
// Bounds (environment):
//   AIOPP_SOAK_SECONDS  time limit for the whole run, split evenly over the two phases
//                       (default 100);
//   AIOPP_SOAK_OPS      requests to submit, split evenly over the phases (default 2000000);
//                       a phase stops at whichever limit it reaches first;
//   AIOPP_SOAK_MIN_OPS  completions the run must reach (default 1000000; 0 under TSan or
//                       valgrind, which run it for time only);
//   AIOPP_SOAK_DIR      where the data file lives (default /tmp).
// One summary line per phase and one for the run are printed ("soak: ...").
#include <gtest/gtest.h>
#include <dirent.h>
#include <malloc.h>
#include <sys/uio.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "test_util.hpp"

namespace {

using namespace aiotest;

constexpr std::size_t kBlock = 4096;
constexpr unsigned kSubmitters = 3;
constexpr unsigned kSlotsPerSubmitter = 32;    // requests one submitter keeps in flight
constexpr unsigned kBlocksPerSubmitter = 64;   // > kSlotsPerSubmitter: a free block always exists
constexpr unsigned kPipesPerSubmitter = 4;
constexpr unsigned kRingEvents = 256;          // > kSubmitters * kSlotsPerSubmitter
constexpr long long kHeapSlack = 256 * 1024;   // see the leak checks above

// ---- environment -------------------------------------------------------------------------

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  return (end != nullptr && *end == '\0') ? x : fallback;
}

// ---- process resources -------------------------------------------------------------------

long long open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return -1;
  long long n = 0;
  while (const dirent* e = ::readdir(d))
    if (e->d_name[0] != '.') ++n;
  ::closedir(d);
  return n - 1;  // the directory stream's own fd
}

long long heap_in_use() {
  const struct mallinfo2 m = ::mallinfo2();
  return static_cast<long long>(m.uordblks + m.hblkhd);
}

// aio-nr is system wide. It must come back to `start` (waiting up to 10 s for unrelated
// processes' contexts to come and go). When it does not and other processes hold AIO
// contexts at that moment, the comparison says nothing about this process: then `note`
// names them and the per-process [aio] mapping count is what proves the release.
bool aio_nr_returns_to(long long start, std::string& note) {
  for (int i = 0; i < 1000; ++i) {
    if (aio_nr() == start) return true;
    std::this_thread::sleep_for(10ms);
  }
  const std::string others = other_aio_users();
  if (others.empty()) return false;
  note = "aio-nr " + std::to_string(aio_nr()) + " != " + std::to_string(start) +
         " while other processes hold AIO contexts (pids " + others + "): not compared";
  return true;
}

// ---- checksummed block pattern -------------------------------------------------------------

std::uint64_t splitmix(std::uint64_t& s) noexcept {
  std::uint64_t z = (s += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

struct BlockHeader {
  std::uint64_t magic;
  std::uint64_t block;
  std::uint64_t version;
  std::uint64_t checksum;  // FNV-1a over the body
};
constexpr std::uint64_t kMagic = 0x616970702d736f6bULL;  // "aipp-sok"
static_assert(sizeof(BlockHeader) == 32);

std::uint64_t fnv1a(const std::byte* p, std::size_t n) noexcept {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (std::size_t i = 0; i < n; ++i) h = (h ^ std::to_integer<std::uint64_t>(p[i])) * 0x100000001b3ULL;
  return h;
}

void fill_block(std::byte* out, std::uint64_t block, std::uint64_t version) noexcept {
  std::uint64_t s = (block << 32) ^ version ^ 0x5eed;
  for (std::size_t off = sizeof(BlockHeader); off < kBlock; off += 8) {
    const std::uint64_t v = splitmix(s);
    std::memcpy(out + off, &v, 8);
  }
  const BlockHeader h{kMagic, block, version, fnv1a(out + sizeof(BlockHeader), kBlock - sizeof(BlockHeader))};
  std::memcpy(out, &h, sizeof h);
}

// Empty when `got` is exactly (block, version); otherwise what is wrong with it.
std::string check_block(const std::byte* got, std::uint64_t block, std::uint64_t version) {
  alignas(16) std::array<std::byte, kBlock> want;
  fill_block(want.data(), block, version);
  if (std::memcmp(got, want.data(), kBlock) == 0) return {};
  BlockHeader h;
  std::memcpy(&h, got, sizeof h);
  char msg[200];
  if (h.magic != kMagic) {
    std::snprintf(msg, sizeof msg, "block %" PRIu64 ": no pattern header (expected version %" PRIu64 ")", block,
                  version);
  } else if (h.block != block || h.version != version) {
    std::snprintf(msg, sizeof msg, "block %" PRIu64 ": holds block %" PRIu64 " version %" PRIu64
                  ", expected version %" PRIu64, block, h.block, h.version, version);
  } else if (fnv1a(got + sizeof h, kBlock - sizeof h) != h.checksum) {
    std::snprintf(msg, sizeof msg, "block %" PRIu64 " version %" PRIu64 ": checksum mismatch (torn data)", block,
                  version);
  } else {
    std::snprintf(msg, sizeof msg, "block %" PRIu64 " version %" PRIu64 ": body differs", block, version);
  }
  return msg;
}

// ---- the run ---------------------------------------------------------------------------------

enum Kind : unsigned { kRead, kWrite, kReadv, kWritev, kFsync, kFdatasync, kPollReady, kPollCancel, kPollRace, kKinds };
constexpr const char* kKindNames[kKinds] = {"read",  "write",      "readv",       "writev",   "fsync",
                                            "fdatasync", "poll-ready", "poll-cancel", "poll-race"};
// Relative weights of the mix (per mille).
constexpr unsigned kWeights[kKinds] = {380, 300, 80, 80, 5, 5, 70, 50, 30};

// A ready pipe poll's res: POLLIN when the kernel completed it from vfs_poll() (masked with
// the requested events: at submit, or in aio_poll_complete_work), POLLIN|POLLRDNORM when it
// completed from the pipe's wake-up (aio_poll_wake stores the wake key, which pipe_write
// sets to EPOLLIN | EPOLLRDNORM, unmasked).
bool is_ready_mask(std::int64_t res) noexcept { return res == POLLIN || res == (POLLIN | POLLRDNORM); }

enum SlotState : int { kFree = 0, kInFlight = 1, kDone = 2, kReaping = 3 };

struct alignas(64) Slot {
  iocb cb{};
  std::atomic<int> state{kFree};
  std::atomic<std::uint64_t> id{0};  // unique per submission (0: none yet)
  std::int64_t res = 0;              // written by the reaper before state = kDone
  // Submitter-private from here on.
  Kind kind = kRead;
  unsigned target = 0;  // block index, or pipe index
  std::uint64_t version = 0;
  bool wrote_byte = false;
  bool byte_first = false;    // poll-ready: the byte is written before io_submit
  bool cancel_first = false;  // poll-race: io_cancel before the byte is written
  bool cancel_accepted = false;
  int cancel_errno = 0;
  std::array<iovec, 2> iov{};
  std::unique_ptr<std::byte[]> buf{new std::byte[kBlock]};
};

struct Block {
  std::uint64_t version = 0;
  bool busy = false;
};

struct Errors {
  std::atomic<std::uint64_t> count{0};
  std::mutex mu;
  std::vector<std::string> first;  // a few messages for the report
  void add(std::string msg) {
    if (count.fetch_add(1) < 10) {
      std::lock_guard lock(mu);
      first.push_back(std::move(msg));
    }
  }
};

struct alignas(64) Submitter {
  std::vector<Slot> slots = std::vector<Slot>(kSlotsPerSubmitter);
  std::vector<Block> blocks = std::vector<Block>(kBlocksPerSubmitter);
  std::vector<Pipe> pipes;
  std::vector<bool> pipe_busy = std::vector<bool>(kPipesPerSubmitter, false);
  std::atomic<std::uint32_t> completions{0};  // bumped (and notified) by the reaper
  std::array<std::uint64_t, kKinds> done{};   // completions by kind
  std::uint64_t accepted = 0;
  std::uint64_t eagain = 0;
  // poll-race outcomes: cancel accepted (res 0), readiness first (EINVAL, res POLLIN)
  std::uint64_t race_cancel_won = 0, race_ready_won = 0;
};

struct PhaseResult {
  std::array<std::uint64_t, kKinds> done{};
  std::uint64_t ops = 0, accepted = 0, eagain = 0;
  std::uint64_t race_cancel_won = 0, race_ready_won = 0;
  std::uint64_t via_ring = 0, via_syscall = 0;
  double seconds = 0;
};

class Phase {
 public:
  Phase(aio::Context& ctx, int fd, std::uint64_t max_ops, Clock::time_point deadline, Errors& errors)
      : ctx_(ctx), fd_(fd), max_ops_(max_ops), deadline_(deadline), errors_(errors), subs_(kSubmitters) {
    for (auto& s : subs_) {
      for (unsigned i = 0; i < kPipesPerSubmitter; ++i) {
        Pipe p;
        // Non-blocking read end, so draining the one byte written never blocks.
        if (p.ok()) ::fcntl(p.rd.get(), F_SETFL, O_NONBLOCK);
        s.pipes.push_back(std::move(p));
      }
    }
  }

  bool pipes_ok() const {
    for (const auto& s : subs_)
      for (const auto& p : s.pipes)
        if (!p.ok()) return false;
    return true;
  }

  PhaseResult run() {
    const auto t0 = Clock::now();
    std::thread reaper([this] { reap_loop(); });
    std::vector<std::thread> threads;
    for (unsigned t = 0; t < kSubmitters; ++t) threads.emplace_back([this, t] { submit_loop(t); });
    for (auto& th : threads) th.join();
    submitters_done_.store(true);
    reaper.join();
    PhaseResult r;
    r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    for (const auto& s : subs_) {
      for (unsigned k = 0; k < kKinds; ++k) r.done[k] += s.done[k];
      r.accepted += s.accepted;
      r.eagain += s.eagain;
      r.race_cancel_won += s.race_cancel_won;
      r.race_ready_won += s.race_ready_won;
    }
    for (auto k : r.done) r.ops += k;
    if (r.ops != reaped_.load()) errors_.add("completions processed != completions reaped");
    return r;
  }

  // Every block read back synchronously: the last version written is what the file holds.
  void verify_file() {
    std::vector<std::byte> buf(kBlock);
    for (unsigned t = 0; t < kSubmitters; ++t) {
      for (unsigned b = 0; b < kBlocksPerSubmitter; ++b) {
        const unsigned block = global_block(t, b);
        const ssize_t n = ::pread(fd_, buf.data(), kBlock, static_cast<off_t>(block) * static_cast<off_t>(kBlock));
        if (n != static_cast<ssize_t>(kBlock)) {
          errors_.add("final pread of block " + std::to_string(block) + " returned " + std::to_string(n));
          continue;
        }
        if (auto msg = check_block(buf.data(), block, subs_[t].blocks[b].version); !msg.empty())
          errors_.add("final check: " + msg);
      }
    }
  }

  static unsigned global_block(unsigned submitter, unsigned b) { return b * kSubmitters + submitter; }

 private:
  // user data: slot index (global) in the top 16 bits, the unique id below.
  static constexpr unsigned kIdBits = 48;

  void reap_loop() {
    std::vector<io_event> evs(128);
    std::uint64_t calls = 0;
    bool draining = false;
    for (;;) {
      // Vary how it waits: getevents, pgetevents without a mask, and wait_for with min_nr > 1.
      aio::Result<std::size_t> got{0};
      const auto which = calls++ % 4;
      if (draining) {
        got = ctx_.getevents(1, evs, 200ms);
      } else if (which == 3) {
        // Let completions pile up, then a zero-timeout poll: with ReapMode::automatic it is
        // answered from the ring, without a syscall.
        std::this_thread::sleep_for(100us);
        got = ctx_.getevents(0, evs, 0ns);
        if (got && *got == 0) got = ctx_.getevents(1, evs, 20ms);
      } else if (which == 0) {
        got = ctx_.pgetevents(1, evs, 20ms, nullptr);
      } else if (which == 1) {
        got = aio::wait_for(ctx_, 4, std::span(evs), 5ms);
      } else {
        got = ctx_.getevents(1, evs, 20ms);
      }
      if (!got) {
        if (got.error() == std::errc::interrupted) continue;
        errors_.add("reaper: " + got.error().message());
        if (draining) return;
        std::this_thread::sleep_for(1ms);
        continue;
      }
      std::array<bool, kSubmitters> touched{};
      for (std::size_t i = 0; i < *got; ++i) on_event(evs[i], touched);
      reaped_.fetch_add(*got);
      for (unsigned t = 0; t < kSubmitters; ++t) {
        if (touched[t]) {
          subs_[t].completions.fetch_add(1, std::memory_order_release);
          subs_[t].completions.notify_one();
        }
      }
      if (draining && *got == 0) return;  // nothing more arrived: no stray or duplicate events
      // Submitters finish only when all their requests are back, so after they are done
      // one last wait catches anything the kernel would still (wrongly) deliver.
      if (!draining && submitters_done_.load()) draining = true;
    }
  }

  void on_event(const io_event& ev, std::array<bool, kSubmitters>& touched) {
    const std::uint64_t slot_index = ev.data >> kIdBits;
    const std::uint64_t id = ev.data & ((std::uint64_t{1} << kIdBits) - 1);
    if (slot_index >= std::uint64_t{kSubmitters} * kSlotsPerSubmitter) {
      errors_.add("completion with unknown user data " + std::to_string(ev.data));
      return;
    }
    const auto t = static_cast<unsigned>(slot_index / kSlotsPerSubmitter);
    Slot& s = subs_[t].slots[slot_index % kSlotsPerSubmitter];
    if (aio::request_of(ev) != &s.cb) errors_.add("completion's iocb pointer is not its slot's");
    // Only the first completion of this id finds the slot in flight with this id.
    int expected = kInFlight;
    if (!s.state.compare_exchange_strong(expected, kReaping, std::memory_order_acq_rel)) {
      errors_.add("duplicate completion of id " + std::to_string(id) + " (slot not in flight)");
      return;
    }
    if (s.id.load(std::memory_order_relaxed) != id) {
      s.state.store(kInFlight, std::memory_order_release);
      errors_.add("stale or duplicate completion of id " + std::to_string(id));
      return;
    }
    s.res = ev.res;  // read by the submitter only after the kDone store below
    s.state.store(kDone, std::memory_order_release);
    touched[t] = true;
  }

  Kind pick_kind(std::uint64_t& rng) const {
    unsigned x = static_cast<unsigned>(splitmix(rng) % 1000);
    for (unsigned k = 0; k < kKinds; ++k) {
      if (x < kWeights[k]) return static_cast<Kind>(k);
      x -= kWeights[k];
    }
    return kRead;
  }

  // Prepares slot `s` for a new request of a random kind; false if none can be issued now.
  bool prepare(Submitter& sub, unsigned t, unsigned slot_local, std::uint64_t& rng) {
    Slot& s = sub.slots[slot_local];
    Kind kind = pick_kind(rng);
    const bool is_poll = kind == kPollReady || kind == kPollCancel || kind == kPollRace;
    if (is_poll) {
      unsigned p = static_cast<unsigned>(splitmix(rng) % kPipesPerSubmitter);
      unsigned tries = 0;
      while (sub.pipe_busy[p] && tries++ < kPipesPerSubmitter) p = (p + 1) % kPipesPerSubmitter;
      if (sub.pipe_busy[p]) {
        kind = kRead;  // every pipe has a poll in flight: do a read instead
      } else {
        sub.pipe_busy[p] = true;
        s.kind = kind;
        s.target = p;
        s.wrote_byte = false;
        s.cancel_accepted = false;
        s.cancel_errno = 0;
        // Half the ready polls find the byte already there (they complete inside io_submit);
        // half the racing ones are cancelled before the byte is written rather than after.
        s.byte_first = kind == kPollReady && (splitmix(rng) & 1) != 0;
        s.cancel_first = kind == kPollRace && (splitmix(rng) & 1) != 0;
        if (s.byte_first) write_byte(sub, s);
        s.cb = aio::make_poll(sub.pipes[p].rd.get(), POLLIN);
        return true;
      }
    }
    if (kind == kFsync || kind == kFdatasync) {
      s.kind = kind;
      s.cb = kind == kFsync ? aio::make_fsync(fd_) : aio::make_fdsync(fd_);
      return true;
    }
    unsigned b = static_cast<unsigned>(splitmix(rng) % kBlocksPerSubmitter);
    while (sub.blocks[b].busy) b = (b + 1) % kBlocksPerSubmitter;  // kBlocks > kSlots: ends
    Block& blk = sub.blocks[b];
    blk.busy = true;
    const unsigned block = global_block(t, b);
    const auto offset = static_cast<std::int64_t>(block) * static_cast<std::int64_t>(kBlock);
    s.kind = kind;
    s.target = b;
    const bool write = kind == kWrite || kind == kWritev;
    s.version = write ? blk.version + 1 : blk.version;
    if (write) {
      fill_block(s.buf.get(), block, s.version);
    } else {
      std::memset(s.buf.get(), 0xA5, kBlock);  // whatever a read leaves behind is caught
    }
    if (kind == kReadv || kind == kWritev) {
      const std::size_t split = 1 + static_cast<std::size_t>(splitmix(rng) % (kBlock - 1));
      s.iov[0] = iovec{s.buf.get(), split};
      s.iov[1] = iovec{s.buf.get() + split, kBlock - split};
      s.cb = write ? aio::make_pwritev(fd_, s.iov, offset) : aio::make_preadv(fd_, s.iov, offset);
    } else if (write) {
      s.cb = aio::make_pwrite(fd_, std::span<const std::byte>(s.buf.get(), kBlock), offset);
    } else {
      s.cb = aio::make_pread(fd_, std::span<std::byte>(s.buf.get(), kBlock), offset);
    }
    return true;
  }

  void write_byte(Submitter& sub, Slot& s) {
    const char one = 'x';
    if (::write(sub.pipes[s.target].wr.get(), &one, 1) != 1) errors_.add("pipe write failed");
    s.wrote_byte = true;
  }

  void cancel(Slot& s) {
    auto c = ctx_.cancel(s.cb);
    s.cancel_accepted = c.has_value();
    s.cancel_errno = c ? 0 : c.error().value();
  }

  // After the kernel accepted a poll: make it ready, cancel it, or both at once.
  void after_submit(Submitter& sub, Slot& s) {
    switch (s.kind) {
      case kPollReady:
        if (!s.byte_first) write_byte(sub, s);
        break;
      case kPollCancel:
        cancel(s);
        break;
      case kPollRace:
        if (s.cancel_first) {
          cancel(s);
          write_byte(sub, s);
        } else {
          write_byte(sub, s);
          cancel(s);
        }
        break;
      default:
        break;
    }
  }

  // The submitter's side of a completion: check the result and free the block / pipe.
  void complete(Submitter& sub, unsigned t, Slot& s) {
    const std::int64_t res = s.res;
    const std::uint64_t id = s.id.load(std::memory_order_relaxed);
    auto fail = [&](const std::string& what) {
      errors_.add(std::string(kKindNames[s.kind]) + " id " + std::to_string(id) + ": " + what +
                  " (res " + std::to_string(res) + ")");
    };
    switch (s.kind) {
      case kRead:
      case kReadv:
      case kWrite:
      case kWritev: {
        Block& blk = sub.blocks[s.target];
        if (res != static_cast<std::int64_t>(kBlock)) {
          fail("short or failed transfer");
        } else if (s.kind == kWrite || s.kind == kWritev) {
          blk.version = s.version;
        } else if (auto msg = check_block(s.buf.get(), global_block(t, s.target), s.version); !msg.empty()) {
          fail("read returned other bytes than last written: " + msg);
        }
        blk.busy = false;
        break;
      }
      case kFsync:
      case kFdatasync:
        if (res != 0) fail("sync failed");
        break;
      case kPollReady:
      case kPollCancel:
      case kPollRace: {
        // Ready at io_submit: completed there from vfs_poll(), masked: exactly POLLIN.
        if (s.kind == kPollReady && s.byte_first && res != POLLIN) fail("poll ready at submit: not POLLIN");
        if (s.kind == kPollReady && !is_ready_mask(res)) fail("ready poll did not report POLLIN");
        if (s.kind == kPollCancel) {
          if (!s.cancel_accepted) fail("cancel of a pending poll refused, errno " + std::to_string(s.cancel_errno));
          if (res != 0) fail("cancelled poll on an empty pipe did not complete with res 0");
        }
        // The race has two outcomes (fs/aio.c): io_cancel and the inline completion from the
        // wake-up both take ctx_lock and remove the request from active_reqs, so exactly one
        // of them finds it. Cancel first: it marks the poll cancelled and work-scheduled, so
        // no inline completion follows and aio_poll_complete_work reports the empty mask
        // (res 0) even if the byte is there by then. Readiness first: io_cancel finds
        // nothing (EINVAL) and res is the ready mask.
        if (s.kind == kPollRace) {
          if (s.cancel_accepted && res == 0) {
            ++sub.race_cancel_won;
          } else if (!s.cancel_accepted && s.cancel_errno == EINVAL && is_ready_mask(res)) {
            ++sub.race_ready_won;
          } else {
            fail("cancel/readiness race ended otherwise: cancel errno " + std::to_string(s.cancel_errno));
          }
        }
        // Drain the byte written (if any): the pipe must be empty again afterwards.
        const int rd = sub.pipes[s.target].rd.get();
        char c[2];
        if (s.wrote_byte && ::read(rd, c, 1) != 1) fail("the byte written to the pipe is gone");
        if (::read(rd, c, 1) != -1 || errno != EAGAIN) fail("pipe not empty after its poll");
        sub.pipe_busy[s.target] = false;
        break;
      }
      case kKinds:
        break;
    }
    ++sub.done[s.kind];
  }

  void submit_loop(unsigned t) {
    Submitter& sub = subs_[t];
    std::uint64_t rng = 0x1234567ULL * (t + 1) + static_cast<std::uint64_t>(Clock::now().time_since_epoch().count());
    std::vector<unsigned> free_slots;
    for (unsigned i = 0; i < kSlotsPerSubmitter; ++i) free_slots.push_back(kSlotsPerSubmitter - 1 - i);
    std::vector<unsigned> pending;  // prepared, not yet accepted by the kernel (in order)
    std::vector<iocb*> list;
    unsigned in_flight = 0;
    bool stopping = false;
    std::uint64_t iterations = 0;
    const auto wait_limit = deadline_ + 60s;  // a lost completion must not hang the test
    for (;;) {
      const std::uint32_t seen = sub.completions.load(std::memory_order_acquire);
      // 1. Completions the reaper handed back.
      bool progressed = false;
      for (unsigned i = 0; i < kSlotsPerSubmitter; ++i) {
        Slot& s = sub.slots[i];
        if (s.state.load(std::memory_order_acquire) != kDone) continue;
        complete(sub, t, s);
        s.state.store(kFree, std::memory_order_relaxed);
        free_slots.push_back(i);
        --in_flight;
        progressed = true;
      }
      if (!stopping && ((++iterations & 15) == 0 && Clock::now() >= deadline_)) stopping = true;
      if (stopping && pending.empty() && in_flight == 0) return;
      // 2. New requests for the free slots: a random batch of 1..8.
      if (!stopping && !free_slots.empty()) {
        const std::size_t want = std::min<std::size_t>(free_slots.size(), 1 + splitmix(rng) % 8);
        for (std::size_t k = 0; k < want; ++k) {
          const std::uint64_t id = next_id_.fetch_add(1, std::memory_order_relaxed);
          if (id > max_ops_) {
            stopping = true;
            break;
          }
          const unsigned i = free_slots.back();
          if (!prepare(sub, t, i, rng)) break;
          free_slots.pop_back();
          Slot& s = sub.slots[i];
          const std::uint64_t slot_index = std::uint64_t{t} * kSlotsPerSubmitter + i;
          aio::set_user_data(s.cb, (slot_index << kIdBits) | id);
          s.id.store(id, std::memory_order_relaxed);
          s.state.store(kInFlight, std::memory_order_release);  // before the kernel can complete it
          pending.push_back(i);
        }
      }
      // 3. Submit what is pending; a partial submit resumes at the first not accepted.
      if (!pending.empty()) {
        list.clear();
        for (unsigned i : pending) list.push_back(&sub.slots[i].cb);
        auto n = ctx_.submit(list);
        if (!n && n.error() == std::errc::resource_unavailable_try_again) {
          ++sub.eagain;
        } else if (!n) {
          errors_.add("submit: " + n.error().message());
          for (unsigned i : pending) {  // give the slots back, undo their block/pipe claims
            Slot& s = sub.slots[i];
            s.state.store(kFree, std::memory_order_relaxed);
            if (s.kind <= kWritev) sub.blocks[s.target].busy = false;
            if (s.kind >= kPollReady) {
              char c;
              if (s.byte_first) (void)!::read(sub.pipes[s.target].rd.get(), &c, 1);
              sub.pipe_busy[s.target] = false;
            }
            free_slots.push_back(i);
          }
          pending.clear();
          stopping = true;
        } else {
          sub.accepted += *n;
          in_flight += static_cast<unsigned>(*n);
          for (std::size_t k = 0; k < *n; ++k) after_submit(sub, sub.slots[pending[k]]);
          pending.erase(pending.begin(), pending.begin() + static_cast<std::ptrdiff_t>(*n));
          progressed = progressed || *n > 0;
        }
      }
      // 4. Nothing to do until the reaper hands something back.
      if (!progressed && (free_slots.empty() || stopping || !pending.empty())) {
        if (Clock::now() > wait_limit) {
          errors_.add("submitter " + std::to_string(t) + ": " + std::to_string(in_flight) +
                      " requests never completed");
          return;  // the Context's destroy() still waits for them before the slots go
        }
        if (in_flight == 0) {
          std::this_thread::sleep_for(1ms);  // EAGAIN with none of ours in flight: others' turn
        } else {
          sub.completions.wait(seen, std::memory_order_acquire);
        }
      }
    }
  }

  aio::Context& ctx_;
  int fd_;
  std::uint64_t max_ops_;
  Clock::time_point deadline_;
  Errors& errors_;
  std::vector<Submitter> subs_;
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::uint64_t> reaped_{0};
  std::atomic<bool> submitters_done_{false};
};

std::string describe(const char* mode, const PhaseResult& r) {
  char line[512];
  int n = std::snprintf(line, sizeof line, "soak: %s: %" PRIu64 " ops in %.1f s (%.0f ops/s):", mode, r.ops,
                        r.seconds, r.seconds > 0 ? static_cast<double>(r.ops) / r.seconds : 0.0);
  for (unsigned k = 0; k < kKinds && n > 0 && static_cast<std::size_t>(n) < sizeof line; ++k)
    n += std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n), " %s %" PRIu64, kKindNames[k], r.done[k]);
  if (n > 0 && static_cast<std::size_t>(n) < sizeof line)
    std::snprintf(line + n, sizeof line - static_cast<std::size_t>(n),
                  "; races: cancel won %" PRIu64 ", readiness won %" PRIu64 "; EAGAIN %" PRIu64
                  "; events via ring %" PRIu64 ", via syscall %" PRIu64,
                  r.race_cancel_won, r.race_ready_won, r.eagain, r.via_ring,
                  r.via_syscall);
  return line;
}

// One phase on a fresh Context in `mode`; returns its figures (errors go to `errors`).
PhaseResult run_phase(aio::ReapMode mode, const char* dir, std::uint64_t max_ops, std::chrono::duration<double> budget,
                      Errors& errors) {
  PhaseResult r;
  TempDir tmp(dir);
  EXPECT_TRUE(tmp.ok()) << "mkdtemp under " << dir;
  if (!tmp.ok()) return r;
  Fd fd(::open(tmp.file("data").c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  EXPECT_TRUE(fd.ok());
  if (!fd.ok()) return r;
  {
    // Version 0 of every block, written synchronously.
    std::vector<std::byte> buf(kBlock);
    for (unsigned b = 0; b < kSubmitters * kBlocksPerSubmitter; ++b) {
      fill_block(buf.data(), b, 0);
      EXPECT_EQ(::pwrite(fd.get(), buf.data(), kBlock, static_cast<off_t>(b) * static_cast<off_t>(kBlock)),
                static_cast<ssize_t>(kBlock));
    }
  }
  aio::Observer observer;
  auto ctx = aio::Context::create(kRingEvents, mode, &observer);
  EXPECT_TRUE(ctx) << ctx.error().message();
  if (!ctx) return r;
  if (mode == aio::ReapMode::automatic && !ctx->ring_reaping())
    std::printf("soak: note: ring reaping is off here (valgrind or AIOPP_REAP=syscall)\n");
  {
    const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(budget);
    Phase phase(*ctx, fd.get(), max_ops, deadline, errors);
    EXPECT_TRUE(phase.pipes_ok());
    if (!phase.pipes_ok()) return r;
    r = phase.run();
    // Destroy before the slots (and their buffers) go: it waits for anything in flight.
    EXPECT_TRUE(ctx->destroy());
    phase.verify_file();
    r.via_ring = observer.events_via_ring();
    r.via_syscall = observer.events_via_syscall();
    if (observer.requests_submitted() != r.accepted)
      errors.add("observer counted " + std::to_string(observer.requests_submitted()) + " submitted, the test " +
                 std::to_string(r.accepted));
    if (r.ops != r.accepted)
      errors.add(std::to_string(r.accepted) + " requests accepted but " + std::to_string(r.ops) + " completed");
  }
  return r;
}

TEST(Soak, SubmittersAndOneReaperMixedIoEveryCompletionOnceNoLeaks) {
  const std::uint64_t seconds = env_u64("AIOPP_SOAK_SECONDS", 100);
  const std::uint64_t total_ops = env_u64("AIOPP_SOAK_OPS", 2'000'000);
  const std::uint64_t min_ops = env_u64("AIOPP_SOAK_MIN_OPS", 1'000'000);
  const char* dir = std::getenv("AIOPP_SOAK_DIR");
  if (dir == nullptr || *dir == '\0') dir = "/tmp";

  // Warm up what allocates once per process (stdio buffers, thread start-up), so the
  // before/after comparison sees only the soak's own resources.
  std::printf("soak: %u submitters x %u requests in flight, 1 reaper; limits %" PRIu64 " s, %" PRIu64
              " ops, at least %" PRIu64 " ops; data in %s\n",
              kSubmitters, kSlotsPerSubmitter, seconds, total_ops, min_ops, dir);
  std::fflush(stdout);
  std::thread([] {}).join();

  const long long fds_before = open_fds();
  const long long maps_before = aio_mappings();
  const long long heap_before = heap_in_use();
  const long long aio_nr_before = aio_nr();
  ASSERT_GE(fds_before, 0);
  ASSERT_GE(maps_before, 0);
  ASSERT_GE(aio_nr_before, 0);

  Errors errors;
  const std::chrono::duration<double> half(static_cast<double>(seconds) / 2);
  const PhaseResult ring = run_phase(aio::ReapMode::automatic, dir, total_ops / 2, half, errors);
  const PhaseResult sys = run_phase(aio::ReapMode::syscall, dir, total_ops - total_ops / 2, half, errors);

  const long long fds_after = open_fds();
  const long long maps_after = aio_mappings();
  const long long heap_after = heap_in_use();
  std::string aio_nr_note;
  const bool aio_nr_back = aio_nr_returns_to(aio_nr_before, aio_nr_note);
  if (!aio_nr_note.empty()) std::printf("soak: note: %s\n", aio_nr_note.c_str());

  std::printf("%s\n%s\n", describe("automatic", ring).c_str(), describe("syscall", sys).c_str());
  const std::uint64_t ops = ring.ops + sys.ops;
  const double secs = ring.seconds + sys.seconds;
  std::printf("soak: total %" PRIu64 " ops in %.1f s (%.0f ops/s), reap modes automatic+syscall, %" PRIu64
              " errors; fds %lld -> %lld, [aio] maps %lld -> %lld, heap %lld -> %lld B, aio-nr %lld -> %lld\n",
              ops, secs, secs > 0 ? static_cast<double>(ops) / secs : 0.0, errors.count.load(), fds_before,
              fds_after, maps_before, maps_after, heap_before, heap_after, aio_nr_before, aio_nr());
  std::fflush(stdout);

  EXPECT_EQ(errors.count.load(), 0u) << [&] {
    std::string all;
    for (const auto& e : errors.first) all += "\n  " + e;
    return all;
  }();
  EXPECT_GE(ops, min_ops) << "too few operations for the soak's budget (AIOPP_SOAK_SECONDS=" << seconds
                          << "); AIOPP_SOAK_MIN_OPS=0 runs for time only";
  for (const PhaseResult* r : {&ring, &sys}) {
    for (unsigned k = 0; k < kKinds; ++k) EXPECT_GT(r->done[k], 0u) << kKindNames[k] << " never ran";
  }
  EXPECT_EQ(fds_after, fds_before) << "file descriptors leaked";
  EXPECT_EQ(maps_after, maps_before) << "AIO ring mappings leaked (a context was not destroyed)";
  EXPECT_LE(heap_after - heap_before, kHeapSlack) << "heap in use grew";
  EXPECT_TRUE(aio_nr_back) << "aio-nr " << aio_nr() << " did not return to " << aio_nr_before;
}

}  // namespace
