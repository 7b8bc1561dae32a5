// aiopp tests — O_DIRECT data integrity on a real file system (ext4 on this machine).
//
// These tests check what the kernel does with the bytes, not the wrapper's bookkeeping:
// every write carries a self-describing, checksummed pattern (file offset + generation per
// unit) and every read-back is compared with an in-memory model of the whole file, with
// both O_DIRECT AIO reads and buffered reads through a freshly opened descriptor.
//
// Kernel behaviour pinned (fs/iomap/direct-io.c, fs/ext4/file.c, Linux 6.x):
//  - Sub-block O_DIRECT writes (aligned to the logical block size reported by
//    statx(STATX_DIOALIGN), e.g. 512, but smaller than the fs block, 4096): for a newly
//    allocated / unwritten block, or a block past EOF, iomap zeroes the rest of the block
//    around the write (iomap_dio_zero), and ext4 serialises such unaligned writes
//    (exclusive i_rwsem + inode_dio_wait, IOMAP_DIO_FORCE_WAIT) so that one write's zeroing
//    never lands on a neighbour's data in the same block — the historic "unaligned AIO-DIO
//    corrupts neighbouring sub-blocks" bug class (ext4 commit e9e3bcecf44c and successors).
//  - An extending O_DIRECT write updates i_size in the dio end_io (ext4_dio_write_end_io)
//    before the completion is posted to the AIO ring, so fstat after reaping a completion
//    shows a size covering it. On ext4 extending (and unaligned) writes are waited for
//    inside io_submit, while overwrites of allocated blocks below EOF run asynchronously
//    (shared i_rwsem), so a batch mixing both completes out of submission order.
//  - A DIO write into a hole converts the unwritten extent at completion, so an immediate
//    read (direct or buffered) sees the data, the rest of the hole still reads as zeros,
//    and cached page-cache pages over the range are invalidated by the write
//    (kiocb_invalidate_post_direct_write).
//
// The directory: $AIOPP_TEST_DIRECT_DIR when set (a failure there is a test failure),
// else the first of $TMPDIR, /var/tmp, /tmp and the working directory (the build tree)
// where O_DIRECT works. The test names say Ext4 because that is the file system these
// guarantees were checked on (and the one with the historic bugs); the checks themselves
// are what any file system must provide.
#include "test_util.hpp"

#include <sys/statfs.h>
#include <sys/types.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cinttypes>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <sstream>
#include <thread>

namespace {

using namespace aiotest;

// ---- Patterns ---------------------------------------------------------------------------

constexpr std::uint64_t kMagic = 0x414950505f444952ULL;  // "AIPP_DIR"

std::uint64_t mix64(std::uint64_t z) noexcept {  // splitmix64 finaliser
  z = (z ^ (z >> 30U)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27U)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31U);
}

std::uint64_t load64(const std::byte* p) noexcept {
  std::uint64_t v = 0;
  std::memcpy(&v, p, sizeof v);
  return v;
}
void store64(std::byte* p, std::uint64_t v) noexcept { std::memcpy(p, &v, sizeof v); }

/// Fills `out` (a multiple of `unit` bytes) as the data written at file offset `off` with
/// generation `gen`: each unit holds magic, its own file offset, gen, pseudo-random words
/// seeded by (offset, gen), and a checksum of all of that in the last word.
void fill_pattern(std::span<std::byte> out, std::uint64_t off, std::uint64_t gen, std::size_t unit) {
  const std::size_t words = unit / 8;
  for (std::size_t u = 0; u + unit <= out.size(); u += unit) {
    std::byte* p = out.data() + u;
    const std::uint64_t uoff = off + u;
    std::uint64_t sum = 0;
    for (std::size_t w = 0; w + 1 < words; ++w) {
      std::uint64_t v = 0;
      if (w == 0) {
        v = kMagic;
      } else if (w == 1) {
        v = uoff;
      } else if (w == 2) {
        v = gen;
      } else {
        v = mix64(uoff * 0x9e3779b97f4a7c15ULL + gen * 0xd1b54a32d192ed03ULL + w);
      }
      store64(p + w * 8, v);
      sum = mix64(sum ^ v);
    }
    store64(p + (words - 1) * 8, sum);
  }
}

/// What one unit holds, for failure messages: "zeros", "data of offset X gen G", ...
std::string describe_unit(const std::byte* p, std::size_t unit) {
  const std::size_t words = unit / 8;
  bool zero = true;
  for (std::size_t i = 0; i < unit && zero; ++i) zero = p[i] == std::byte{0};
  if (zero) return "zeros";
  std::ostringstream os;
  if (load64(p) != kMagic) {
    os << "foreign bytes (first word 0x" << std::hex << load64(p) << ")";
    return os.str();
  }
  std::uint64_t sum = 0;
  for (std::size_t w = 0; w + 1 < words; ++w) sum = mix64(sum ^ load64(p + w * 8));
  os << "data written at offset " << load64(p + 8) << " gen " << load64(p + 16);
  if (sum != load64(p + (words - 1) * 8)) os << " (checksum BAD: torn or mixed unit)";
  return os.str();
}

// ---- Memory -----------------------------------------------------------------------------

/// A buffer aligned to exactly `align` bytes (the STATX_DIOALIGN memory alignment): it is
/// placed `align` bytes into a page-aligned block when align < page, so the test relies on
/// what the kernel reported, not on page alignment.
class DioBuf {
 public:
  DioBuf() = default;
  DioBuf(std::size_t size, std::size_t align) : size_(size) {
    constexpr std::size_t kPage = 4096;
    const std::size_t base_align = std::max<std::size_t>({align, kPage, sizeof(void*)});
    const std::size_t skew = align < kPage ? align : 0;
    void* p = nullptr;
    if (::posix_memalign(&p, base_align, size + skew + 1) != 0) return;
    mem_.reset(static_cast<std::byte*>(p));
    data_ = mem_.get() + skew;
    std::memset(mem_.get(), 0xEE, size + skew + 1);  // never zero: reads must overwrite it
  }
  [[nodiscard]] bool ok() const noexcept { return data_ != nullptr; }
  [[nodiscard]] std::byte* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::span<std::byte> span() const noexcept { return {data_, size_}; }

 private:
  struct Free {
    void operator()(std::byte* p) const noexcept { std::free(p); }
  };
  std::unique_ptr<std::byte, Free> mem_;
  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
};

// ---- The model of the file ---------------------------------------------------------------

class Model {
 public:
  void write(std::uint64_t off, std::span<const std::byte> data) {
    const std::size_t end = static_cast<std::size_t>(off) + data.size();
    if (end > bytes_.size()) bytes_.resize(end, std::byte{0});
    std::copy(data.begin(), data.end(), bytes_.begin() + static_cast<std::ptrdiff_t>(off));
  }
  void resize(std::uint64_t size) { bytes_.resize(static_cast<std::size_t>(size), std::byte{0}); }
  [[nodiscard]] std::uint64_t size() const noexcept { return bytes_.size(); }

  /// Compares `got` (read at `off`) with the model, unit by unit; the first few
  /// mismatching units are described.
  [[nodiscard]] ::testing::AssertionResult matches(std::span<const std::byte> got, std::uint64_t off,
                                                   std::size_t unit, const std::string& what) const {
    if (off + got.size() > bytes_.size()) {
      return ::testing::AssertionFailure() << what << ": read [" << off << ", " << off + got.size()
                                           << ") runs past the model's size " << bytes_.size();
    }
    std::size_t bad = 0;
    std::ostringstream os;
    for (std::size_t u = 0; u < got.size(); u += unit) {
      const std::size_t n = std::min(unit, got.size() - u);
      const std::byte* want = bytes_.data() + off + u;
      if (std::memcmp(got.data() + u, want, n) == 0) continue;
      if (++bad <= 4) {
        std::size_t first = 0;
        while (got[u + first] == want[first]) ++first;
        os << "\n  unit at file offset " << off + u << " (first bad byte " << first
           << "): expected " << (n == unit ? describe_unit(want, unit) : "partial unit")
           << ", found " << (n == unit ? describe_unit(got.data() + u, unit) : "different bytes");
      }
    }
    if (bad == 0) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << what << ": " << bad << " of " << (got.size() + unit - 1) / unit
                                         << " units differ in [" << off << ", " << off + got.size() << ")"
                                         << os.str();
  }

 private:
  std::vector<std::byte> bytes_;
};

// ---- Finding a directory with O_DIRECT ---------------------------------------------------

std::string fs_name(long type) {
  switch (static_cast<unsigned long>(type)) {
    case 0xEF53UL: return "ext2/3/4";
    case 0x58465342UL: return "xfs";
    case 0x9123683EUL: return "btrfs";
    case 0x01021994UL: return "tmpfs";
    case 0x858458f6UL: return "ramfs";
    case 0x794c7630UL: return "overlayfs";
    case 0x65735546UL: return "fuse";
    case 0x6969UL: return "nfs";
    case 0x2fc12fc1UL: return "zfs";
    case 0xF2F52010UL: return "f2fs";
    default: {
      char buf[32];
      std::snprintf(buf, sizeof buf, "fs type 0x%lx", static_cast<unsigned long>(type));
      return buf;
    }
  }
}

struct DirectDir {
  std::unique_ptr<TempDir> dir;
  std::uint32_t mem_align = 0;  // STATX_DIOALIGN stx_dio_mem_align
  std::uint32_t off_align = 0;  // STATX_DIOALIGN stx_dio_offset_align (logical block size)
  std::uint32_t fs_block = 0;   // st_blksize (the file system block, 4096 on ext4)
  std::string fs;
  std::string tried;            // why each candidate was rejected
};

std::string errno_text(int e) { return std::error_code(e, std::generic_category()).message(); }

/// Tries `base`: mkdtemp, open(O_DIRECT), STATX_DIOALIGN, one aligned write+read. A
/// memory file system (tmpfs has O_DIRECT since Linux 6.6, as a page-cache copy) is taken
/// only when `allow_memory_fs`: the behaviour under test is that of block-backed ones.
bool try_direct_dir(const std::string& base, bool allow_memory_fs, DirectDir& out) {
  auto dir = std::make_unique<TempDir>(base.c_str());
  auto reject = [&](const std::string& why) {
    out.tried += "\n  " + base + ": " + why;
    return false;
  };
  if (!dir->ok()) return reject("mkdtemp: " + errno_text(errno));
  const std::string probe = dir->file("probe");
  Fd fd(::open(probe.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_DIRECT | O_CLOEXEC, 0600));
  if (!fd.ok()) return reject("open(O_DIRECT): " + errno_text(errno));
  struct statfs sfs {};
  std::string fs = ::fstatfs(fd.get(), &sfs) == 0 ? fs_name(sfs.f_type) : "unknown fs";
  if (!allow_memory_fs && (fs == "tmpfs" || fs == "ramfs")) {
    return reject(fs + ": memory file system, kept as a last resort");
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return reject("fstat: " + errno_text(errno));
  auto caps = aio::probe_fd(fd.get());
  if (!caps) return reject("probe_fd: " + caps.error().message());
  std::uint32_t mem = 0;
  std::uint32_t off = 0;
  if (caps->dio_offset_align.has_value()) {
    if (*caps->dio_offset_align == 0) return reject(fs + ": STATX_DIOALIGN says no O_DIRECT for files here");
    off = *caps->dio_offset_align;
    mem = caps->dio_mem_align.value_or(off);
  } else {
    // No STATX_DIOALIGN (older kernel or fs): the smallest size an aligned write accepts.
    for (std::uint32_t a = 512; a <= 65536 && off == 0; a *= 2) {
      DioBuf b(a, a);
      if (b.ok() && ::pwrite(fd.get(), b.data(), a, a) == static_cast<ssize_t>(a)) off = a;
    }
    if (off == 0) return reject(fs + ": no aligned O_DIRECT write size up to 64 KiB was accepted");
    mem = off;
  }
  // One real aligned write and read: some file systems accept the flag but not the I/O.
  DioBuf w(off, mem);
  DioBuf r(off, mem);
  if (!w.ok() || !r.ok()) return reject("posix_memalign failed");
  fill_pattern(w.span(), 0, 1, std::max<std::size_t>(off, 64));
  if (::pwrite(fd.get(), w.data(), off, 0) != static_cast<ssize_t>(off)) {
    return reject(fs + ": O_DIRECT pwrite: " + errno_text(errno));
  }
  if (::pread(fd.get(), r.data(), off, 0) != static_cast<ssize_t>(off) ||
      std::memcmp(w.data(), r.data(), off) != 0) {
    return reject(fs + ": O_DIRECT pread did not return what was written");
  }
  fd.reset();
  ::unlink(probe.c_str());
  out.dir = std::move(dir);
  out.mem_align = mem;
  out.off_align = off;
  out.fs_block = static_cast<std::uint32_t>(st.st_blksize);
  out.fs = fs;
  return true;
}

DirectDir find_direct_dir(bool& explicit_dir) {
  DirectDir d;
  std::vector<std::string> candidates;
  const char* env = std::getenv("AIOPP_TEST_DIRECT_DIR");
  explicit_dir = env != nullptr && *env != '\0';
  if (explicit_dir) {
    candidates.emplace_back(env);
  } else {
    if (const char* t = std::getenv("TMPDIR"); t != nullptr && *t != '\0') candidates.emplace_back(t);
    candidates.emplace_back("/var/tmp");
    candidates.emplace_back("/tmp");
    std::error_code ec;
    const auto cwd = std::filesystem::current_path(ec);
    if (!ec) candidates.push_back(cwd.string());
  }
  for (const bool allow_memory_fs : {false, true}) {
    for (const auto& c : candidates) {
      if (try_direct_dir(c, allow_memory_fs, d)) return d;
    }
  }
  return d;
}

/// io_setup(), retried while fs.aio-max-nr is exhausted by someone else (EAGAIN): on a
/// shared machine other test programs fill the quota for a moment.
aio::Result<aio::Context> create_context(unsigned max_events) {
  const auto deadline = Clock::now() + 20s;
  for (;;) {
    auto c = aio::Context::create(max_events);
    if (c || c.error() != std::errc::resource_unavailable_try_again || Clock::now() >= deadline) return c;
    std::this_thread::sleep_for(20ms);
  }
}

std::uint64_t round_down(std::uint64_t v, std::uint64_t a) { return v / a * a; }
std::uint64_t round_up(std::uint64_t v, std::uint64_t a) { return (v + a - 1) / a * a; }

// ---- The fixture ----------------------------------------------------------------------------

class OdirectIntegrity : public ::testing::Test {
 protected:
  void SetUp() override {
    bool explicit_dir = false;
    d_ = find_direct_dir(explicit_dir);
    if (!d_.dir) {
      if (explicit_dir) FAIL() << "AIOPP_TEST_DIRECT_DIR does not support O_DIRECT:" << d_.tried;
      GTEST_SKIP() << "no candidate directory supports O_DIRECT (set AIOPP_TEST_DIRECT_DIR to one "
                      "on ext4/xfs/btrfs):"
                   << d_.tried;
    }
    unit_ = std::max<std::size_t>(d_.off_align, 64);
    block_ = std::max<std::size_t>(d_.fs_block, unit_);
    static std::atomic<bool> printed{false};
    if (!printed.exchange(true)) {
      std::cout << "[ info     ] O_DIRECT directory " << d_.dir->file("") << " on " << d_.fs
                << ": STATX_DIOALIGN memory " << d_.mem_align << ", offset " << d_.off_align
                << "; fs block " << d_.fs_block << std::endl;
    }
    RecordProperty("direct_fs", d_.fs);
    auto c = create_context(256);
    ASSERT_TRUE(c) << "io_setup: " << c.error().message();
    ctx_ = std::move(*c);
  }

  /// Sub-block writes need a logical block smaller than the file system block.
  void require_sub_block() {
    if (unit_ >= block_) {
      GTEST_SKIP() << d_.fs << " accepts O_DIRECT only in units of " << unit_ << " bytes and its block is "
                   << block_ << ": there are no sub-block writes to test";
    }
  }

  [[nodiscard]] Fd open_direct(const std::string& name, int extra = 0) const {
    return Fd(::open(d_.dir->file(name).c_str(), O_RDWR | O_DIRECT | O_CLOEXEC | extra, 0600));
  }

  [[nodiscard]] std::uint64_t file_size(int fd) const {
    struct stat st {};
    EXPECT_EQ(::fstat(fd, &st), 0) << errno_text(errno);
    return static_cast<std::uint64_t>(st.st_size);
  }

  /// Submits all of `cbs` (retrying partial acceptance), reaping nothing.
  void submit_all_or_fail(std::vector<iocb*>& cbs) {
    const aio::SubmitAll r = aio::submit_all(ctx_, std::span<iocb* const>(cbs));
    ASSERT_TRUE(r.ok()) << "submitted " << r.submitted << " of " << cbs.size() << ": " << r.error.message();
  }

  /// One O_DIRECT AIO read of [off, off+len) (len a multiple of the alignment), checked
  /// against the model; the read is expected to stop at EOF.
  void check_direct(int fd, std::uint64_t off, std::uint64_t len, const Model& m, const std::string& what) {
    DioBuf buf(static_cast<std::size_t>(len), d_.mem_align);
    ASSERT_TRUE(buf.ok());
    iocb cb = aio::make_pread(fd, buf.span(), static_cast<std::int64_t>(off));
    const io_event ev = run_one(ctx_, cb);
    const std::uint64_t want = m.size() > off ? std::min(len, m.size() - off) : 0;
    ASSERT_EQ(ev.res, static_cast<std::int64_t>(want)) << what << ": O_DIRECT read of [" << off << ", +" << len
                                                       << ") with i_size " << m.size();
    EXPECT_TRUE(m.matches(std::span<const std::byte>(buf.data(), static_cast<std::size_t>(want)), off, unit_,
                          what + " (O_DIRECT AIO read)"));
  }

  /// A buffered pread of [off, off+len) through `fd` (not O_DIRECT), checked against the model.
  void check_buffered(int fd, std::uint64_t off, std::uint64_t len, const Model& m, const std::string& what) {
    std::vector<std::byte> buf(static_cast<std::size_t>(len), std::byte{0xEE});
    std::size_t done = 0;
    while (done < buf.size()) {
      const ssize_t n = ::pread(fd, buf.data() + done, buf.size() - done, static_cast<off_t>(off + done));
      ASSERT_GE(n, 0) << what << ": pread: " << errno_text(errno);
      if (n == 0) break;
      done += static_cast<std::size_t>(n);
    }
    const std::uint64_t want = m.size() > off ? std::min(len, m.size() - off) : 0;
    ASSERT_EQ(done, want) << what << ": buffered read stopped early";
    EXPECT_TRUE(m.matches(std::span<const std::byte>(buf.data(), done), off, unit_, what + " (buffered read)"));
  }

  /// Opens `name` afresh twice (O_DIRECT, then buffered; the caller has closed its own
  /// descriptors) and checks the whole file, its size and the read stopping at EOF.
  void check_whole_file_reopened(const std::string& name, const Model& m) {
    const std::string path = d_.dir->file(name);
    Fd dfd(::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC));
    ASSERT_TRUE(dfd.ok()) << errno_text(errno);
    EXPECT_EQ(file_size(dfd.get()), m.size());
    check_direct(dfd.get(), 0, round_up(m.size(), block_) + block_, m, name + " reopened");
    dfd.reset();
    Fd bfd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    ASSERT_TRUE(bfd.ok()) << errno_text(errno);
    check_buffered(bfd.get(), 0, m.size() + block_, m, name + " reopened");
  }

  /// The sub-block rounds shared by the three past-EOF tests. Round r targets the units from
  /// the current EOF to the end of fs block r (so the tail of block r-1 past EOF, then all of
  /// block r): a random subset of them is written, as writes of 1-3 adjacent units (never a
  /// whole block, sometimes straddling the block boundary), all of them past the EOF the
  /// round starts with. Skipped units below the new EOF must read as zeros; the next round's writes
  /// expose the tail of the block behind the old EOF, which must read as zeros too.
  enum class Mode { one_at_a_time, one_batch, threads };
  void run_sub_block_rounds(Mode mode, int rounds, std::uint64_t seed);

  DirectDir d_;
  std::size_t unit_ = 512;
  std::size_t block_ = 4096;
  aio::Context ctx_;
};

struct PlannedWrite {
  std::uint64_t off = 0;
  std::size_t len = 0;
  std::uint64_t gen = 0;
  std::size_t slot = 0;  // position in its submission
  DioBuf buf;
  iocb cb{};
};

void OdirectIntegrity::run_sub_block_rounds(Mode mode, int rounds, std::uint64_t seed) {
  const std::string name = "subblock";
  Fd fd = open_direct(name, O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << errno_text(errno);
  std::mt19937_64 rng(seed);
  Model model;
  std::uint64_t eof = 0;
  std::uint64_t gen = 0;
  const std::size_t per_block = block_ / unit_;

  // Worker threads for Mode::threads: each has its own Context and, per round, a share of
  // the round's writes, which it submits as one batch the moment all threads are released.
  constexpr std::size_t kThreads = 4;
  std::vector<std::vector<PlannedWrite*>> share(kThreads);
  std::vector<std::string> thread_errors(kThreads);
  std::barrier sync(static_cast<std::ptrdiff_t>(kThreads + 1));
  std::atomic<bool> stop{false};
  std::vector<std::jthread> workers;
  if (mode == Mode::threads) {
    for (std::size_t t = 0; t < kThreads; ++t) {
      workers.emplace_back([&, t] {
        auto c = create_context(64);
        for (;;) {
          sync.arrive_and_wait();
          if (stop.load()) return;
          std::vector<iocb*> cbs;
          for (PlannedWrite* w : share[t]) cbs.push_back(&w->cb);
          if (!c) {
            thread_errors[t] = "io_setup: " + c.error().message();
          } else if (!cbs.empty()) {
            const aio::SubmitAll r = aio::submit_all(*c, std::span<iocb* const>(cbs));
            const auto evs = reap(*c, r.submitted, 10000ms);
            if (!r.ok()) thread_errors[t] = "submit: " + r.error.message();
            for (const io_event& ev : evs) {
              const iocb* cb = aio::request_of(ev);
              if (ev.res != static_cast<std::int64_t>(cb->aio_nbytes)) {
                thread_errors[t] += " write at " + std::to_string(cb->aio_offset) + " gave res " +
                                    std::to_string(ev.res) + ";";
              }
            }
            if (evs.size() != r.submitted) thread_errors[t] += " lost completions;";
          }
          sync.arrive_and_wait();
        }
      });
    }
  }
  struct StopWorkers {
    std::atomic<bool>& stop;
    std::barrier<>& sync;
    bool active;
    ~StopWorkers() {
      if (!active) return;
      stop.store(true);
      sync.arrive_and_wait();
    }
  } stopper{stop, sync, mode == Mode::threads};

  for (int r = 0; r < rounds; ++r) {
    const std::uint64_t block_end = (static_cast<std::uint64_t>(r) + 1) * block_;
    const std::uint64_t first_unit = eof / unit_;
    const std::uint64_t last_unit = block_end / unit_;  // exclusive
    std::vector<bool> chosen(static_cast<std::size_t>(last_unit - first_unit));
    bool in_block = false;
    for (std::size_t i = 0; i < chosen.size(); ++i) {
      chosen[i] = (rng() & 1U) != 0;
      if (chosen[i] && first_unit + i >= block_end / unit_ - per_block) in_block = true;
    }
    if (!in_block) chosen[chosen.size() - 1 - static_cast<std::size_t>(rng() % per_block)] = true;

    std::vector<std::unique_ptr<PlannedWrite>> writes;
    for (std::size_t i = 0; i < chosen.size();) {
      if (!chosen[i]) {
        ++i;
        continue;
      }
      std::size_t n = 1;
      const std::size_t want = 1 + static_cast<std::size_t>(rng() % 3);
      while (n < want && i + n < chosen.size() && chosen[i + n] && (n + 1) * unit_ < block_) ++n;
      auto w = std::make_unique<PlannedWrite>();
      w->off = (first_unit + i) * unit_;
      w->len = n * unit_;
      w->gen = ++gen;
      w->buf = DioBuf(w->len, d_.mem_align);
      ASSERT_TRUE(w->buf.ok());
      fill_pattern(w->buf.span(), w->off, w->gen, unit_);
      w->cb = aio::make_pwrite(fd.get(), w->buf.span(), static_cast<std::int64_t>(w->off));
      writes.push_back(std::move(w));
      i += n;
    }
    std::shuffle(writes.begin(), writes.end(), rng);
    const std::string what = "round " + std::to_string(r) + " (" + std::to_string(writes.size()) +
                             " sub-block writes past EOF " + std::to_string(eof) + ")";

    switch (mode) {
      case Mode::one_at_a_time:
        for (auto& w : writes) {
          const io_event ev = run_one(ctx_, w->cb);
          ASSERT_EQ(ev.res, static_cast<std::int64_t>(w->len)) << what << ": write at " << w->off;
        }
        break;
      case Mode::one_batch: {
        std::vector<iocb*> cbs;
        for (auto& w : writes) cbs.push_back(&w->cb);
        submit_all_or_fail(cbs);
        const auto evs = reap(ctx_, cbs.size(), 10000ms);
        ASSERT_EQ(evs.size(), cbs.size()) << what;
        for (const io_event& ev : evs) {
          EXPECT_EQ(ev.res, static_cast<std::int64_t>(aio::request_of(ev)->aio_nbytes))
              << what << ": write at " << aio::request_of(ev)->aio_offset;
        }
        break;
      }
      case Mode::threads:
        for (auto& s : share) s.clear();
        for (std::size_t i = 0; i < writes.size(); ++i) share[i % kThreads].push_back(writes[i].get());
        sync.arrive_and_wait();  // release the workers
        sync.arrive_and_wait();  // all of them reaped their share
        for (std::size_t t = 0; t < kThreads; ++t) {
          EXPECT_EQ(thread_errors[t], "") << what << ": thread " << t;
          thread_errors[t].clear();
        }
        break;
    }
    if (::testing::Test::HasFailure()) return;

    for (auto& w : writes) {
      model.write(w->off, std::span<const std::byte>(w->buf.data(), w->len));
      eof = std::max<std::uint64_t>(eof, w->off + w->len);
    }
    ASSERT_EQ(file_size(fd.get()), eof) << what << ": i_size after every write completed";
    ASSERT_EQ(model.size(), eof);
    // This round's blocks and the one before (whose tail past the old EOF was just exposed),
    // read past EOF on purpose: the read must stop at i_size.
    const std::uint64_t from = round_down(eof > 2 * block_ ? eof - 2 * block_ : 0, block_);
    check_direct(fd.get(), from, round_up(eof, block_) + block_ - from, model, what);
    if (::testing::Test::HasFailure()) return;
  }
  fd.reset();
  check_whole_file_reopened(name, model);
}

// Sub-block O_DIRECT writes, one in flight at a time, to units of new blocks past EOF and of
// the tail of the last block past EOF: iomap zeroes the rest of a new (or past-EOF) block
// around the written unit, so skipped units — including the block's tail once a later
// write exposes it — read back as zeros, and every written unit reads back exactly.
TEST_F(OdirectIntegrity, Ext4DioSubBlockPastEofZeroesTail) {
  require_sub_block();
  run_sub_block_rounds(Mode::one_at_a_time, 128, 0x5eed0001);
}

// The same writes of one round in a single io_submit, shuffled: several unaligned writes to
// different sub-blocks of the same new block past EOF in flight together. ext4 serialises
// unaligned DIO (exclusive i_rwsem, inode_dio_wait, IOMAP_DIO_FORCE_WAIT) so one write's
// block zeroing can never wipe a neighbour's data; all of it must read back exactly.
TEST_F(OdirectIntegrity, Ext4DioConcurrentSubBlockWritesPastEofOneBatchReadBackExactly) {
  require_sub_block();
  run_sub_block_rounds(Mode::one_batch, 128, 0x5eed0002);
}

// The same from four threads with a Context each, released together per round: the
// neighbouring sub-block writes race from different submitters (the original ext4 bug was
// concurrent AIO-DIO from separate io_submit calls to the same block).
TEST_F(OdirectIntegrity, Ext4DioConcurrentSubBlockWritesPastEofFromThreadsReadBackExactly) {
  require_sub_block();
  run_sub_block_rounds(Mode::threads, 96, 0x5eed0003);
}

// ---- Extending writes -----------------------------------------------------------------------

// A stream of O_DIRECT writes, each extending the file (some sub-block, some spanning
// blocks, some leaving a gap), kept 8 deep in flight: i_size is updated in the dio end_io
// before the completion reaches the ring, so when a completion is reaped fstat shows a size
// at least the end of every write completed so far, and never more than the furthest
// write submitted; when all are done it is exactly the furthest end.
TEST_F(OdirectIntegrity, Ext4DioExtendingWriteSizeCoversEachReapedCompletion) {
  const std::string name = "extend";
  Fd fd = open_direct(name, O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << errno_text(errno);
  std::mt19937_64 rng(0x5eed0004);
  Model model;
  constexpr std::size_t kWrites = 400;
  constexpr std::size_t kDepth = 8;
  std::vector<std::unique_ptr<PlannedWrite>> writes;
  std::uint64_t next = 0;
  for (std::size_t i = 0; i < kWrites; ++i) {
    auto w = std::make_unique<PlannedWrite>();
    if (rng() % 8 == 0) next += unit_ * (1 + rng() % (2 * block_ / unit_));  // a hole
    w->off = next;
    w->len = unit_ * (1 + static_cast<std::size_t>(rng() % (2 * block_ / unit_)));
    w->gen = i + 1;
    w->buf = DioBuf(w->len, d_.mem_align);
    ASSERT_TRUE(w->buf.ok());
    fill_pattern(w->buf.span(), w->off, w->gen, unit_);
    w->cb = aio::make_pwrite(fd.get(), w->buf.span(), static_cast<std::int64_t>(w->off));
    aio::set_user_data(w->cb, i);
    next += w->len;
    writes.push_back(std::move(w));
  }

  std::size_t submitted = 0;
  std::size_t completed = 0;
  std::uint64_t submitted_end = 0;
  std::uint64_t completed_end = 0;
  std::size_t reordered = 0;  // completions reaped before an earlier-submitted one
  std::size_t expected_next = 0;
  std::vector<bool> done(kWrites);
  while (completed < kWrites) {
    while (submitted < kWrites && submitted - completed < kDepth) {
      PlannedWrite& w = *writes[submitted];
      auto n = submit_one(ctx_, w.cb);
      ASSERT_TRUE(n) << "write " << submitted << ": " << n.error().message();
      submitted_end = std::max<std::uint64_t>(submitted_end, w.off + w.len);
      ++submitted;
    }
    io_event ev{};
    auto got = ctx_.getevents(1, std::span(&ev, 1), std::chrono::nanoseconds(10s));
    ASSERT_TRUE(got) << got.error().message();
    ASSERT_EQ(*got, 1U) << "no completion within 10 s";
    const std::size_t i = static_cast<std::size_t>(aio::user_data(ev));
    ASSERT_LT(i, kWrites);
    const PlannedWrite& w = *writes[i];
    ASSERT_EQ(ev.res, static_cast<std::int64_t>(w.len)) << "write " << i << " at " << w.off;
    if (i != expected_next) ++reordered;
    done[i] = true;
    while (expected_next < kWrites && done[expected_next]) ++expected_next;
    ++completed;
    completed_end = std::max<std::uint64_t>(completed_end, w.off + w.len);
    const std::uint64_t size = file_size(fd.get());
    ASSERT_GE(size, completed_end) << "i_size when write " << i << " (ending at " << w.off + w.len
                                   << ") was reaped, " << completed << " completed";
    ASSERT_LE(size, submitted_end) << "i_size beyond every submitted write";
  }
  EXPECT_EQ(file_size(fd.get()), submitted_end);
  for (const auto& w : writes) model.write(w->off, std::span<const std::byte>(w->buf.data(), w->len));
  ASSERT_EQ(model.size(), submitted_end);
  RecordProperty("reordered_completions", static_cast<int>(reordered));
  std::cout << "[ info     ] " << reordered << " of " << kWrites
            << " completions reaped before an earlier-submitted one" << std::endl;
  check_direct(fd.get(), 0, round_up(model.size(), block_), model, "after all extending writes");
  fd.reset();
  check_whole_file_reopened(name, model);
}

// Batches of writes tiling the region past EOF (sub-block and multi-block lengths, gaps),
// submitted in one io_submit in shuffled order (every third round the furthest first, so
// the rest land below the new EOF) behind overwrites of whole blocks below the old EOF,
// and reaped one completion at a time. The overwrites run asynchronously while ext4 waits
// for the extending writes inside io_submit, so completions arrive out of submission order
// (the test prints how often). Whatever the order, the size seen at each reap covers every
// write reaped so far and never exceeds the furthest one, and the data reads back exactly.
TEST_F(OdirectIntegrity, Ext4DioExtendingBatchOutOfOrderSizeCoversEveryCompletion) {
  const std::string name = "extend-batch";
  Fd fd = open_direct(name, O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << errno_text(errno);
  std::mt19937_64 rng(0x5eed0005);
  Model model;
  std::uint64_t eof = 0;
  std::uint64_t gen = 0;
  std::size_t out_of_offset_order = 0;
  std::size_t out_of_submit_order = 0;
  constexpr int kRounds = 60;
  constexpr std::size_t kPerRound = 12;
  constexpr std::size_t kOverwrites = 4;
  std::size_t total = 0;
  for (int r = 0; r < kRounds; ++r) {
    std::vector<std::unique_ptr<PlannedWrite>> writes;
    std::uint64_t next = eof;
    for (std::size_t i = 0; i < kPerRound; ++i) {
      auto w = std::make_unique<PlannedWrite>();
      if (rng() % 6 == 0) next += unit_ * (1 + rng() % (block_ / unit_));
      w->off = next;
      // Block-aligned, whole-block writes half the time (these are the ones ext4 can run
      // asynchronously once they are below EOF), any unit multiple otherwise.
      if (rng() % 2 == 0) {
        w->off = round_up(next, block_);
        w->len = block_ * (1 + static_cast<std::size_t>(rng() % 4));
      } else {
        w->len = unit_ * (1 + static_cast<std::size_t>(rng() % (3 * block_ / unit_)));
      }
      w->gen = ++gen;
      w->buf = DioBuf(w->len, d_.mem_align);
      ASSERT_TRUE(w->buf.ok());
      fill_pattern(w->buf.span(), w->off, w->gen, unit_);
      w->cb = aio::make_pwrite(fd.get(), w->buf.span(), static_cast<std::int64_t>(w->off));
      aio::set_user_ptr(w->cb, w.get());
      next = w->off + w->len;
      writes.push_back(std::move(w));
    }
    const std::uint64_t round_end = next;
    std::shuffle(writes.begin(), writes.end(), rng);
    if (r % 3 == 0) {  // the furthest write first: everything after it lands below EOF
      std::iter_swap(writes.begin(), std::max_element(writes.begin(), writes.end(), [](auto& a, auto& b) {
                       return a->off < b->off;
                     }));
    }
    // Ahead of them, overwrites of distinct whole blocks below EOF: ext4 runs those
    // asynchronously (shared i_rwsem, no FORCE_WAIT) while the extending writes behind
    // them complete inside io_submit, so completions really arrive out of submission order.
    const std::uint64_t old_blocks = eof / block_;
    std::vector<std::uint64_t> picked;
    std::vector<std::unique_ptr<PlannedWrite>> overwrites;
    for (std::size_t k = 0; k < kOverwrites && picked.size() < old_blocks; ++k) {
      std::uint64_t b = rng() % old_blocks;
      while (std::find(picked.begin(), picked.end(), b) != picked.end()) b = (b + 1) % old_blocks;
      picked.push_back(b);
      auto w = std::make_unique<PlannedWrite>();
      w->off = b * block_;
      w->len = block_;
      w->gen = ++gen;
      w->buf = DioBuf(w->len, d_.mem_align);
      ASSERT_TRUE(w->buf.ok());
      fill_pattern(w->buf.span(), w->off, w->gen, unit_);
      w->cb = aio::make_pwrite(fd.get(), w->buf.span(), static_cast<std::int64_t>(w->off));
      aio::set_user_ptr(w->cb, w.get());
      overwrites.push_back(std::move(w));
    }
    std::vector<PlannedWrite*> order;
    for (auto& w : overwrites) order.push_back(w.get());
    for (auto& w : writes) order.push_back(w.get());
    const std::string what = "round " + std::to_string(r);
    std::vector<iocb*> cbs;
    total += order.size();
    for (PlannedWrite* w : order) {
      w->slot = cbs.size();
      cbs.push_back(&w->cb);
    }
    submit_all_or_fail(cbs);
    std::uint64_t completed_end = 0;
    std::size_t last_slot = 0;
    std::uint64_t last_off = 0;
    for (std::size_t k = 0; k < cbs.size(); ++k) {
      io_event ev{};
      auto got = ctx_.getevents(1, std::span(&ev, 1), std::chrono::nanoseconds(10s));
      ASSERT_TRUE(got) << what << ": " << got.error().message();
      ASSERT_EQ(*got, 1U) << what << ": no completion within 10 s";
      const auto* w = aio::user_ptr<PlannedWrite>(ev);
      ASSERT_EQ(ev.res, static_cast<std::int64_t>(w->len)) << what << ": write at " << w->off;
      if (k > 0 && w->off < last_off) ++out_of_offset_order;
      if (k > 0 && w->slot < last_slot) ++out_of_submit_order;
      last_off = w->off;
      last_slot = w->slot;
      completed_end = std::max<std::uint64_t>(completed_end, w->off + w->len);
      const std::uint64_t size = file_size(fd.get());
      ASSERT_GE(size, completed_end) << what << ": i_size when the write ending at " << w->off + w->len
                                     << " was reaped (" << k + 1 << " of " << cbs.size() << ")";
      ASSERT_LE(size, round_end) << what << ": i_size beyond every submitted write";
    }
    ASSERT_EQ(file_size(fd.get()), round_end) << what;
    for (PlannedWrite* w : order) model.write(w->off, std::span<const std::byte>(w->buf.data(), w->len));
    ASSERT_EQ(model.size(), round_end);
    check_direct(fd.get(), round_down(eof, block_), round_up(round_end, block_) - round_down(eof, block_), model,
                 what);
    if (HasFailure()) return;
    eof = round_end;
  }
  RecordProperty("completions_out_of_offset_order", static_cast<int>(out_of_offset_order));
  RecordProperty("completions_out_of_submit_order", static_cast<int>(out_of_submit_order));
  std::cout << "[ info     ] of " << total << " completions, " << out_of_offset_order
            << " were reaped after one at a higher offset, " << out_of_submit_order
            << " after one submitted later" << std::endl;
  fd.reset();
  check_whole_file_reopened(name, model);
}

// ---- Writes into holes --------------------------------------------------------------------

// A sparse file (ftruncate); O_DIRECT writes of 1 unit to 3 blocks at random aligned offsets
// inside it, each reaped and then immediately read back around it with an O_DIRECT AIO read
// and a buffered pread on a second descriptor: the unwritten extent was converted before
// the completion was posted, so the data is there at once, the surrounding hole still reads
// as zeros, and the size never changes. Every other round the buffered descriptor reads the
// range *before* the write, so a stale cached page of zeros would show: the DIO write must
// invalidate it (kiocb_invalidate_post_direct_write).
TEST_F(OdirectIntegrity, Ext4DioWriteIntoHoleVisibleToImmediateRead) {
  const std::string name = "sparse";
  Fd fd = open_direct(name, O_CREAT | O_TRUNC);
  ASSERT_TRUE(fd.ok()) << errno_text(errno);
  const std::uint64_t size = 8U << 20U;
  ASSERT_EQ(::ftruncate(fd.get(), static_cast<off_t>(size)), 0) << errno_text(errno);
  Fd bfd(::open(d_.dir->file(name).c_str(), O_RDONLY | O_CLOEXEC));
  ASSERT_TRUE(bfd.ok()) << errno_text(errno);
  Model model;
  model.resize(size);
  std::mt19937_64 rng(0x5eed0006);
  constexpr int kRounds = 200;
  for (int r = 0; r < kRounds; ++r) {
    PlannedWrite w;
    w.len = unit_ * (1 + static_cast<std::size_t>(rng() % (3 * block_ / unit_)));
    w.off = block_ + round_down(rng() % (size - 2 * block_ - w.len), unit_);
    w.gen = static_cast<std::uint64_t>(r) + 1;
    w.buf = DioBuf(w.len, d_.mem_align);
    ASSERT_TRUE(w.buf.ok());
    fill_pattern(w.buf.span(), w.off, w.gen, unit_);
    const std::uint64_t from = round_down(w.off, block_) - block_;
    const std::uint64_t len = round_up(w.off + w.len, block_) + block_ - from;
    const std::string what = "round " + std::to_string(r) + ": " + std::to_string(w.len) + " bytes at " +
                             std::to_string(w.off);
    if (r % 2 == 1) check_buffered(bfd.get(), from, len, model, what + ", before the write");

    w.cb = aio::make_pwrite(fd.get(), w.buf.span(), static_cast<std::int64_t>(w.off));
    const io_event ev = run_one(ctx_, w.cb);
    ASSERT_EQ(ev.res, static_cast<std::int64_t>(w.len)) << what;
    model.write(w.off, std::span<const std::byte>(w.buf.data(), w.len));

    check_direct(fd.get(), from, len, model, what);
    check_buffered(bfd.get(), from, len, model, what);
    ASSERT_EQ(file_size(fd.get()), size) << what << ": a write inside EOF changed the size";
    if (HasFailure()) return;
  }
  fd.reset();
  bfd.reset();
  check_whole_file_reopened(name, model);
}

}  // namespace
