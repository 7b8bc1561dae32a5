// aiopp trace — libaiopp-trace.so: libaio's C ABI on aiopp's syscall shim, plus glibc's
// syscall() for the io_* numbers, recording every AIO syscall and request of the process
// into a shared file mapping (record.hpp) that aio-trace reads after the process is gone.
//
// Without AIOPP_TRACE_DIR, or with AIOPP_TRACE=off, nothing is recorded: a plain libaio.
// Calling convention of the libaio entry points: -errno on failure, errno left alone.
// After start-up nothing here allocates: the record is mapped at start-up (and again in a
// forked child); file names are read into the mapping with readlink().
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>
#include <span>

#include "mix64.hpp"
#include "observer_access.hpp"
#include "record.hpp"
#include "syscall.hpp"

#if !defined(__x86_64__)
#error "libaiopp-trace forwards syscall() with the x86-64 syscall instruction of the shim"
#endif

#define AIOPP_EXPORT __attribute__((visibility("default")))  // NOLINT(cppcoreguidelines-macro-usage)

namespace aio::trace {
namespace {

// NOLINTBEGIN(cppcoreguidelines-avoid-non-const-global-variables): per-process interposer state
std::atomic<Record*> g_record{nullptr};
bool g_enabled = false;                 // a directory was given and tracing is not off
std::array<char, 512> g_dir{};          // AIOPP_TRACE_DIR
// fd -> file index + 1 (0: not resolved yet); fds at or above the size are resolved each time.
std::array<std::atomic<std::uint8_t>, 4096> g_fd_file{};
// NOLINTEND(cppcoreguidelines-avoid-non-const-global-variables)

constexpr std::uint32_t ring_magic = 0xa10a10a1U;
struct Ring {  // the head of the kernel's struct aio_ring
  unsigned id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};

[[nodiscard]] std::int64_t now_ns() noexcept { return detail::ObserverAccess::now_ns(); }

using aio::detail::mix64;

template <std::size_t N>
void copy_text(std::array<char, N>& dst, const char* src, std::size_t len) noexcept {
  const std::size_t n = len < N - 1 ? len : N - 1;
  std::memcpy(dst.data(), src, n);
  dst[n] = '\0';
}

using CloseFn = int (*)(int);

// The close() this library stands in front of (glibc's: a cancellation point), found once.
[[nodiscard]] CloseFn real_close() noexcept {
  static std::atomic<CloseFn> fn{nullptr};
  CloseFn f = fn.load(std::memory_order_acquire);
  if (f == nullptr) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): dlsym's answer is the function
    f = reinterpret_cast<CloseFn>(::dlsym(RTLD_NEXT, "close"));
    if (f == nullptr) f = +[](int fd) { return static_cast<int>(::syscall(SYS_close, static_cast<long>(fd))); };
    fn.store(f, std::memory_order_release);
  }
  return f;
}

// ---- start-up: one record file per process image ---------------------------------------

void read_cmdline(Record& r) noexcept {
  const int fd = ::open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  std::array<char, 256> buf{};
  const ssize_t n = ::read(fd, buf.data(), buf.size() - 1);
  ::close(fd);
  if (n <= 0) return;
  for (ssize_t i = 0; i < n - 1; ++i)
    if (buf[static_cast<std::size_t>(i)] == '\0') buf[static_cast<std::size_t>(i)] = ' ';
  copy_text(r.cmdline, buf.data(), std::strlen(buf.data()));
}

// Maps a new, zero-filled record file <dir>/<pid>.<start ns>.rec and constructs the header.
[[nodiscard]] Record* open_record() noexcept {
  const std::int64_t start = now_ns();
  std::array<char, 600> path{};
  const int len = std::snprintf(path.data(), path.size(), "%s/%d.%lld.rec", g_dir.data(), static_cast<int>(::getpid()),
                                static_cast<long long>(start));
  if (len <= 0 || static_cast<std::size_t>(len) >= path.size()) return nullptr;
  const int fd = ::open(path.data(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return nullptr;
  // The blocks are reserved up front: a full file system then means no record, never a
  // SIGBUS in the traced program when a page of the mapping is first written.
  void* mem = MAP_FAILED;
  if (::fallocate(fd, 0, 0, sizeof(Record)) == 0)
    mem = ::mmap(nullptr, sizeof(Record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  ::close(fd);
  if (mem == MAP_FAILED) {
    ::unlink(path.data());
    return nullptr;
  }
  auto* r = new (mem) Record{};
  r->version = record_version;
  r->size = sizeof(Record);
  r->pid = static_cast<std::int32_t>(::getpid());
  r->ppid = static_cast<std::int32_t>(::getppid());
  r->start_ns = start;
  std::array<char, 256> exe{};
  const ssize_t n = ::readlink("/proc/self/exe", exe.data(), exe.size() - 1);
  if (n > 0) copy_text(r->exe, exe.data(), static_cast<std::size_t>(n));
  read_cmdline(*r);
  std::atomic_thread_fence(std::memory_order_release);
  r->magic = record_magic;  // last: a reader trusts nothing before it
  return r;
}

void after_fork_child() noexcept {
  // The parent's mapping stays the parent's: the child starts a record of its own.
  const int saved_errno = errno;
  Record* parent = g_record.exchange(nullptr, std::memory_order_acq_rel);
  if (parent != nullptr) ::munmap(parent, sizeof(Record));
  for (auto& f : g_fd_file) f.store(0, std::memory_order_relaxed);
  if (g_enabled) g_record.store(open_record(), std::memory_order_release);
  errno = saved_errno;
}

__attribute__((constructor)) void start() noexcept {
  (void)real_close();  // dlsym may allocate: at start-up, not in the program's first close()
  const char* sw = std::getenv(env_switch);
  const char* dir = std::getenv(env_dir);
  if (sw != nullptr && std::strcmp(sw, "off") == 0) return;
  if (dir == nullptr || *dir == '\0' || std::strlen(dir) >= g_dir.size()) return;
  copy_text(g_dir, dir, std::strlen(dir));
  g_enabled = true;
  g_record.store(open_record(), std::memory_order_release);
  ::pthread_atfork(nullptr, nullptr, after_fork_child);
}

__attribute__((destructor)) void finish() noexcept {
  if (Record* r = g_record.load(std::memory_order_acquire)) r->exited.store(1, std::memory_order_release);
}

// ---- recording -------------------------------------------------------------------------

void note_call(Record& r, const SyscallInfo& info, std::int64_t t0) noexcept {
  detail::ObserverAccess::syscall(r.observer, info);
  const auto k = static_cast<std::size_t>(info.call);
  r.duration[k].record(info.duration);
  if (info.result < 0 && !(info.call == Syscall::cancel && info.result == -EINPROGRESS)) {
    const auto e = static_cast<std::size_t>(-info.result);
    r.call_errors[k][e < errno_slots ? e : 0].fetch_add(1, std::memory_order_relaxed);
  }
  if (r.first_call_ns.load(std::memory_order_relaxed) == 0) {
    std::int64_t zero = 0;
    r.first_call_ns.compare_exchange_strong(zero, t0, std::memory_order_relaxed);
  }
  r.last_call_ns.store(t0 + info.duration.count(), std::memory_order_relaxed);
}

[[nodiscard]] std::uint32_t lookup_path(Record& r, const char* path, std::size_t len) noexcept {
  const std::uint32_t n = r.file_count.load(std::memory_order_acquire);
  for (std::uint32_t i = 0; i < n; ++i)
    if (std::strncmp(r.files[i].path.data(), path, len) == 0 && r.files[i].path[len] == '\0') return i;
  return max_files;
}

// The file index of fd in r.files: found by its /proc/self/fd link, added when new.
[[nodiscard]] std::uint32_t resolve_file(Record& r, int fd) noexcept {
  const int saved_errno = errno;  // libaio's convention: errno is the program's
  std::array<char, 40> link{};
  std::array<char, 240> path{};
  std::snprintf(link.data(), link.size(), "/proc/self/fd/%d", fd);
  ssize_t n = ::readlink(link.data(), path.data(), path.size() - 1);
  if (n <= 0) {
    n = std::snprintf(path.data(), path.size(), "fd %d", fd);
  }
  errno = saved_errno;
  const auto len = static_cast<std::size_t>(n);
  std::uint32_t idx = lookup_path(r, path.data(), len);
  if (idx != max_files) return idx;
  std::uint32_t unlocked = 0;
  while (!r.file_lock.compare_exchange_weak(unlocked, 1, std::memory_order_acquire)) unlocked = 0;
  idx = lookup_path(r, path.data(), len);
  if (idx == max_files) {
    const std::uint32_t count = r.file_count.load(std::memory_order_relaxed);
    if (count < max_files) {
      copy_text(r.files[count].path, path.data(), len);
      r.file_count.store(count + 1, std::memory_order_release);
      idx = count;
    }
  }
  r.file_lock.store(0, std::memory_order_release);
  return idx;
}

[[nodiscard]] std::uint32_t file_of(Record& r, int fd) noexcept {
  if (fd >= 0 && static_cast<std::size_t>(fd) < g_fd_file.size()) {
    const std::uint8_t cached = g_fd_file[static_cast<std::size_t>(fd)].load(std::memory_order_relaxed);
    if (cached != 0) return cached - 1U;
    const std::uint32_t idx = resolve_file(r, fd);
    g_fd_file[static_cast<std::size_t>(fd)].store(static_cast<std::uint8_t>(idx + 1), std::memory_order_relaxed);
    return idx;
  }
  return resolve_file(r, fd);
}

// Finds and removes the table entry of iocb address `key`; false when there is none.
[[nodiscard]] bool take_request(Record& r, std::uint64_t key, std::int64_t& t0, std::uint32_t& meta) noexcept {
  for (std::size_t probe = 0, s = mix64(key) % inflight_slots; probe < max_probe; ++probe, s = (s + 1) % inflight_slots) {
    InflightSlot& slot = r.table[s];
    std::uint64_t k = slot.key.load(std::memory_order_acquire);
    if (k == slot_empty) return false;
    if (k != key) continue;
    t0 = slot.t0.load(std::memory_order_relaxed);
    meta = slot.meta.load(std::memory_order_relaxed);
    if (slot.key.compare_exchange_strong(k, slot_free, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void record_latency(Record& r, std::uint32_t meta, std::int64_t ns, bool failed) noexcept {
  const std::uint32_t op = meta >> 8U;
  const std::uint32_t file = meta & 0xffU;
  if (op < opcodes) {
    r.latency_by_op[op].record_ns(ns);
    if (failed) r.errors_by_op[op].fetch_add(1, std::memory_order_relaxed);
  }
  if (file <= max_files) {
    r.files[file].latency.record_ns(ns);
    if (failed) r.files[file].errors.fetch_add(1, std::memory_order_relaxed);
  }
}

void raise_inflight(Record& r, std::int64_t by) noexcept {
  const std::int64_t now = r.inflight.fetch_add(by, std::memory_order_relaxed) + by;
  std::int64_t hwm = r.inflight_hwm.load(std::memory_order_relaxed);
  while (now > hwm && !r.inflight_hwm.compare_exchange_weak(hwm, now, std::memory_order_relaxed)) {
  }
}

// A completion reaped (by another thread) between io_submit's return and its entry into the
// table: parked with its reap time, picked up by that entry. Returns false when none is parked.
[[nodiscard]] bool take_early(Record& r, std::uint64_t key, std::int64_t t0, std::int64_t& reaped, bool& failed) noexcept {
  if (r.early_count.load(std::memory_order_acquire) == 0) return false;
  for (EarlyCompletion& e : r.early) {
    std::uint64_t k = e.key.load(std::memory_order_acquire);
    if (k != key) continue;
    const std::int64_t at = e.reaped_ns.load(std::memory_order_relaxed);
    if (at < t0) continue;  // reaped before this submit began: an older request's
    failed = e.failed.load(std::memory_order_relaxed) != 0;
    if (!e.key.compare_exchange_strong(k, slot_empty, std::memory_order_acq_rel)) continue;
    r.early_count.fetch_sub(1, std::memory_order_relaxed);
    reaped = at;
    return true;
  }
  return false;
}

// Returns false when every early slot is taken.
[[nodiscard]] bool park_early(Record& r, std::uint64_t key, std::int64_t now, bool failed) noexcept {
  for (EarlyCompletion& e : r.early) {
    std::uint64_t k = e.key.load(std::memory_order_relaxed);
    if (k != slot_empty) continue;
    if (!e.key.compare_exchange_strong(k, slot_busy, std::memory_order_acquire)) continue;
    e.reaped_ns.store(now, std::memory_order_relaxed);
    e.failed.store(failed ? 1 : 0, std::memory_order_relaxed);
    e.key.store(key, std::memory_order_release);
    r.early_count.fetch_add(1, std::memory_order_seq_cst);
    return true;
  }
  return false;
}

// Enters one accepted request into the in-flight table; false when its probe range is full.
[[nodiscard]] bool enter_request(Record& r, aio_context_t ctx, std::uint64_t key, std::int64_t t0,
                                 std::uint32_t meta) noexcept {
  for (std::size_t probe = 0, s = mix64(key) % inflight_slots; probe < max_probe; ++probe, s = (s + 1) % inflight_slots) {
    InflightSlot& slot = r.table[s];
    std::uint64_t k = slot.key.load(std::memory_order_relaxed);
    if (k != slot_empty && k != slot_free) continue;
    if (!slot.key.compare_exchange_strong(k, slot_busy, std::memory_order_acquire)) continue;
    slot.t0.store(t0, std::memory_order_relaxed);
    slot.ctx.store(ctx, std::memory_order_relaxed);
    slot.meta.store(meta, std::memory_order_relaxed);
    slot.key.store(key, std::memory_order_release);
    return true;
  }
  return false;
}

// Counts one accepted request under its (file, opcode, offset, length) tuple.
void count_request_tuple(Record& r, std::uint32_t meta, const iocb& cb) noexcept {
  const auto offset = static_cast<std::uint64_t>(cb.aio_offset);
  const std::uint64_t tag = mix64(mix64(offset ^ (std::uint64_t{meta} << 40U)) ^ cb.aio_nbytes) | 1U;
  for (std::size_t probe = 0, s = tag % request_tuple_slots; probe < request_tuple_probe;
       ++probe, s = (s + 1) % request_tuple_slots) {
    RequestTuple& t = r.request_tuples[s];
    std::uint64_t seen = t.tag.load(std::memory_order_acquire);
    if (seen == 0 && t.tag.compare_exchange_strong(seen, tag, std::memory_order_acq_rel)) {
      t.meta.store(meta, std::memory_order_relaxed);
      t.offset.store(cb.aio_offset, std::memory_order_relaxed);
      t.nbytes.store(cb.aio_nbytes, std::memory_order_relaxed);
      t.count.fetch_add(1, std::memory_order_release);
      return;
    }
    if (seen == tag) {
      t.count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  r.request_tuples_dropped.fetch_add(1, std::memory_order_relaxed);
}

// After io_submit accepted the first `accepted` iocbs (which the kernel has just read, so
// they are readable; the refused ones are never touched): counted and entered into the table.
void after_submit(Record& r, aio_context_t ctx, iocb* const* iocbs, std::size_t accepted, std::int64_t t0) noexcept {
  std::int64_t entered = 0;
  std::uint64_t completed = 0;
  for (std::size_t i = 0; i < accepted; ++i) {
    const iocb* cb = iocbs[i];
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): keyed by address, as io_event::obj reports it
    const auto key = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(cb));
    const std::uint32_t op = cb->aio_lio_opcode < opcodes ? cb->aio_lio_opcode : opcodes;
    const std::uint32_t file = file_of(r, static_cast<int>(cb->aio_fildes));
    const std::uint32_t meta = op << 8U | file;
    if (op < opcodes) r.requests_by_op[op].fetch_add(1, std::memory_order_relaxed);
    r.files[file].requests.fetch_add(1, std::memory_order_relaxed);
    count_request_tuple(r, meta, *cb);
    std::int64_t reaped = 0;
    bool failed = false;
    if (take_early(r, key, t0, reaped, failed)) {
      record_latency(r, meta, reaped - t0, failed);
      ++completed;
    } else if (enter_request(r, ctx, key, t0, meta)) {
      // A reaper that missed the entry parks the completion: look once more, now that the
      // entry is visible (after_reap looks again too, so one of the two matches them). Taking
      // the parked completion but not the entry means the reaper took the entry: it records.
      std::atomic_thread_fence(std::memory_order_seq_cst);
      std::int64_t t = 0;
      std::uint32_t m = 0;
      if (take_early(r, key, t0, reaped, failed) && take_request(r, key, t, m)) {
        record_latency(r, meta, reaped - t0, failed);
        ++completed;
      } else {
        ++entered;
      }
    } else {
      r.untracked.fetch_add(1, std::memory_order_relaxed);
    }
  }
  r.submitted.fetch_add(accepted, std::memory_order_relaxed);
  if (completed != 0) r.completed.fetch_add(completed, std::memory_order_relaxed);
  if (entered != 0) raise_inflight(r, entered);
}

void after_reap(Record& r, const io_event* events, long n, std::int64_t now) noexcept {
  if (n <= 0 || events == nullptr) return;
  const std::span<const io_event> evs(events, static_cast<std::size_t>(n));
  detail::ObserverAccess::reaped(r.observer, evs, false, 0);
  std::int64_t matched = 0;
  for (const io_event& ev : evs) {
    const auto res = static_cast<long long>(ev.res);
    if (res < 0) {
      const auto e = static_cast<std::size_t>(-res);
      r.request_errors[e < errno_slots ? e : 0].fetch_add(1, std::memory_order_relaxed);
    }
    std::int64_t t0 = 0;
    std::uint32_t meta = 0;
    if (!take_request(r, ev.obj, t0, meta)) {
      // Not entered yet (its submitter is between io_submit and the entry): parked for the
      // submitter. Then a second look, fenced against the submitter's own second look at the
      // parked completions (enter; fence; look — park; fence; look): one of the two sees the
      // other. Whoever takes the table entry records the completion (taking the parked one
      // back if it is still there); a submitter that took only the parked one leaves it.
      const bool parked = park_early(r, ev.obj, now, res < 0);
      std::atomic_thread_fence(std::memory_order_seq_cst);
      if (!take_request(r, ev.obj, t0, meta)) {
        if (!parked) r.unmatched.fetch_add(1, std::memory_order_relaxed);
        continue;
      }
      std::int64_t at = 0;
      bool f = false;
      if (parked) (void)take_early(r, ev.obj, t0, at, f);
    }
    ++matched;
    record_latency(r, meta, now - t0, res < 0);
  }
  if (matched != 0) {
    r.completed.fetch_add(static_cast<std::uint64_t>(matched), std::memory_order_relaxed);
    r.inflight.fetch_sub(matched, std::memory_order_relaxed);
  }
}

// io_destroy waited for every request of ctx: those still in the table completed unseen.
void forget_context(Record& r, aio_context_t ctx) noexcept {
  std::int64_t gone = 0;
  for (InflightSlot& slot : r.table) {
    std::uint64_t k = slot.key.load(std::memory_order_acquire);
    if (k <= slot_busy || slot.ctx.load(std::memory_order_relaxed) != ctx) continue;
    if (slot.key.compare_exchange_strong(k, slot_free, std::memory_order_acq_rel)) ++gone;
  }
  if (gone != 0) {
    r.destroyed_unseen.fetch_add(static_cast<std::uint64_t>(gone), std::memory_order_relaxed);
    r.inflight.fetch_sub(gone, std::memory_order_relaxed);
  }
}

[[nodiscard]] long long timeout_of(const sys::KernelTimespec* ts) noexcept {
  return ts == nullptr ? -1 : ts->tv_sec * 1'000'000'000LL + ts->tv_nsec;
}

// ---- the traced calls (raw convention: >= 0 or -errno) ----------------------------------

[[nodiscard]] long traced_setup(long nr, aio_context_t* ctxp) noexcept {
  Record* r = g_record.load(std::memory_order_acquire);
  if (r == nullptr) return sys::raw::setup(nr, ctxp);
  const std::int64_t t0 = now_ns();
  const long res = sys::raw::setup(nr, ctxp);
  const std::int64_t t1 = now_ns();
  if (res == 0) r->contexts.fetch_add(1, std::memory_order_relaxed);
  note_call(*r, SyscallInfo{Syscall::setup, res == 0 ? *ctxp : 0, nr, 0, -1, false, res, std::chrono::nanoseconds(t1 - t0)},
            t0);
  return res;
}

[[nodiscard]] long traced_destroy(aio_context_t ctx) noexcept {
  Record* r = g_record.load(std::memory_order_acquire);
  if (r == nullptr) return sys::raw::destroy(ctx);
  const std::int64_t t0 = now_ns();
  const long res = sys::raw::destroy(ctx);
  const std::int64_t t1 = now_ns();
  if (res == 0) forget_context(*r, ctx);
  note_call(*r, SyscallInfo{Syscall::destroy, ctx, 0, 0, -1, false, res, std::chrono::nanoseconds(t1 - t0)}, t0);
  return res;
}

[[nodiscard]] long traced_submit(aio_context_t ctx, long nr, iocb* const* iocbs) noexcept {
  Record* r = g_record.load(std::memory_order_acquire);
  if (r == nullptr) return sys::raw::submit(ctx, nr, iocbs);
  const std::int64_t t0 = now_ns();
  const long res = sys::raw::submit(ctx, nr, iocbs);
  const std::int64_t t1 = now_ns();
  if (res > 0) after_submit(*r, ctx, iocbs, static_cast<std::size_t>(res), t0);
  note_call(*r, SyscallInfo{Syscall::submit, ctx, nr, 0, -1, false, res, std::chrono::nanoseconds(t1 - t0)}, t0);
  return res;
}

[[nodiscard]] long traced_cancel(aio_context_t ctx, iocb* cb, io_event* result) noexcept {
  Record* r = g_record.load(std::memory_order_acquire);
  if (r == nullptr) return sys::raw::cancel(ctx, cb, result);
  const std::int64_t t0 = now_ns();
  const long res = sys::raw::cancel(ctx, cb, result);
  const std::int64_t t1 = now_ns();
  if (res == 0 && result != nullptr) after_reap(*r, result, 1, t1);  // old kernels: the event is here
  note_call(*r, SyscallInfo{Syscall::cancel, ctx, 0, 0, -1, false, res, std::chrono::nanoseconds(t1 - t0)}, t0);
  return res;
}

[[nodiscard]] long traced_getevents(aio_context_t ctx, long min_nr, long nr, io_event* events,
                                    const sys::KernelTimespec* timeout, const sys::AioSigset* sig, bool pget) noexcept {
  Record* r = g_record.load(std::memory_order_acquire);
  if (r == nullptr) {
    return pget ? sys::raw::pgetevents(ctx, min_nr, nr, events, timeout, sig)
                : sys::raw::getevents(ctx, min_nr, nr, events, timeout);
  }
  const std::int64_t t0 = now_ns();
  const long res = pget ? sys::raw::pgetevents(ctx, min_nr, nr, events, timeout, sig)
                        : sys::raw::getevents(ctx, min_nr, nr, events, timeout);
  const std::int64_t t1 = now_ns();
  if (res > 0) after_reap(*r, events, res, t1);
  const bool masked = pget && sig != nullptr && sig->sigmask != nullptr;
  note_call(*r,
            SyscallInfo{pget ? Syscall::pgetevents : Syscall::getevents, ctx, nr, min_nr, timeout_of(timeout), masked, res,
                        std::chrono::nanoseconds(t1 - t0)},
            t0);
  return res;
}

// libaio's shortcut: a zero timeout on an empty ring answers 0 with no syscall.
[[nodiscard]] bool empty_ring_poll(aio_context_t ctx, const sys::KernelTimespec* timeout) noexcept {
  if (ctx == 0 || timeout == nullptr || timeout->tv_sec != 0 || timeout->tv_nsec != 0) return false;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr): the context is the ring's address
  const auto* ring = reinterpret_cast<const Ring*>(ctx);
  if (__atomic_load_n(&ring->magic, __ATOMIC_RELAXED) != ring_magic) return false;
  if (__atomic_load_n(&ring->head, __ATOMIC_ACQUIRE) != __atomic_load_n(&ring->tail, __ATOMIC_ACQUIRE)) return false;
  if (Record* r = g_record.load(std::memory_order_relaxed)) r->empty_polls.fetch_add(1, std::memory_order_relaxed);
  return true;
}

template <class T>
[[nodiscard]] aio_context_t handle(T* ctx) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): libaio's io_context_t is the ring address
  return static_cast<aio_context_t>(reinterpret_cast<std::uintptr_t>(ctx));
}

}  // namespace
}  // namespace aio::trace

// ---- libaio's exported C ABI -------------------------------------------------------------

using aio::trace::handle;
namespace trace = aio::trace;
namespace sys = aio::sys;

extern "C" {
struct io_context;
using io_context_t = io_context*;
using io_callback_t = void (*)(io_context_t ctx, iocb* cb, long res, long res2);

AIOPP_EXPORT int io_setup(int maxevents, io_context_t* ctxp) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): io_context_t* is an aio_context_t* in the ABI
  return static_cast<int>(trace::traced_setup(maxevents, reinterpret_cast<aio_context_t*>(ctxp)));
}

AIOPP_EXPORT int io_destroy(io_context_t ctx) { return static_cast<int>(trace::traced_destroy(handle(ctx))); }

AIOPP_EXPORT int io_submit(io_context_t ctx, long nr, iocb* ios[]) {
  return static_cast<int>(trace::traced_submit(handle(ctx), nr, ios));
}

AIOPP_EXPORT int aiopp_io_cancel_0_4(io_context_t ctx, iocb* cb, io_event* evt) {
  return static_cast<int>(trace::traced_cancel(handle(ctx), cb, evt));
}

AIOPP_EXPORT int aiopp_io_getevents_0_4(io_context_t ctx, long min_nr, long nr, io_event* events, timespec* timeout) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): struct timespec is __kernel_timespec on 64-bit
  const auto* ts = reinterpret_cast<const sys::KernelTimespec*>(timeout);
  if (trace::empty_ring_poll(handle(ctx), ts)) return 0;
  return static_cast<int>(trace::traced_getevents(handle(ctx), min_nr, nr, events, ts, nullptr, false));
}

AIOPP_EXPORT int io_pgetevents(io_context_t ctx, long min_nr, long nr, io_event* events, timespec* timeout,
                               sigset_t* sigmask) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): struct timespec is __kernel_timespec on 64-bit
  const auto* ts = reinterpret_cast<const sys::KernelTimespec*>(timeout);
  if (trace::empty_ring_poll(handle(ctx), ts)) return 0;
  const sys::AioSigset sig{sigmask, sys::kernel_sigset_size};
  return static_cast<int>(trace::traced_getevents(handle(ctx), min_nr, nr, events, ts, &sig, true));
}

AIOPP_EXPORT int io_queue_init(int maxevents, io_context_t* ctxp) { return io_setup(maxevents, ctxp); }

AIOPP_EXPORT int io_queue_release(io_context_t ctx) { return io_destroy(ctx); }

// Reaps every completion ready now and calls the callback stored in each request's data.
AIOPP_EXPORT int io_queue_run(io_context_t ctx) {
  timespec zero{0, 0};
  io_event ev{};
  int got = 0;
  while ((got = aiopp_io_getevents_0_4(ctx, 0, 1, &ev, &zero)) == 1) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr): libaio's io_event.data is the callback
    auto cb = reinterpret_cast<io_callback_t>(static_cast<std::uintptr_t>(ev.data));
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr): io_event.obj is the iocb
    auto* req = reinterpret_cast<iocb*>(static_cast<std::uintptr_t>(ev.obj));
    if (cb != nullptr) cb(ctx, req, static_cast<long>(ev.res), static_cast<long>(ev.res2));
  }
  return got;
}

AIOPP_EXPORT int aiopp_io_queue_wait_0_4(io_context_t ctx, timespec* timeout) {
  return aiopp_io_getevents_0_4(ctx, 0, 0, nullptr, timeout);
}

// LIBAIO_0.1's signatures of io_getevents, io_cancel and io_queue_wait.
AIOPP_EXPORT int aiopp_io_getevents_0_1(io_context_t ctx, long nr, io_event* events, const timespec* timeout) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): passed on read-only
  return aiopp_io_getevents_0_4(ctx, 1, nr, events, const_cast<timespec*>(timeout));
}

AIOPP_EXPORT int aiopp_io_cancel_0_1(io_context_t ctx, iocb* cb) {
  io_event ev{};
  return aiopp_io_cancel_0_4(ctx, cb, &ev);
}

AIOPP_EXPORT int aiopp_io_queue_wait_0_1(io_context_t ctx, const timespec* timeout) {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): passed on read-only
  return aiopp_io_getevents_0_4(ctx, 0, 0, nullptr, const_cast<timespec*>(timeout));
}

// NOLINTBEGIN(hicpp-no-assembler): symbol versions, as libaio.so.1 exports them
__asm__(".symver aiopp_io_getevents_0_4, io_getevents@@LIBAIO_0.4");
__asm__(".symver aiopp_io_getevents_0_1, io_getevents@LIBAIO_0.1");
__asm__(".symver aiopp_io_cancel_0_4, io_cancel@@LIBAIO_0.4");
__asm__(".symver aiopp_io_cancel_0_1, io_cancel@LIBAIO_0.1");
__asm__(".symver aiopp_io_queue_wait_0_4, io_queue_wait@@LIBAIO_0.4");
__asm__(".symver aiopp_io_queue_wait_0_1, io_queue_wait@LIBAIO_0.1");
// NOLINTEND(hicpp-no-assembler)

// ---- glibc's syscall(): the io_* numbers are traced, every other number passes through ----

// NOLINTNEXTLINE(cert-dcl50-cpp): syscall() is variadic by its C declaration
AIOPP_EXPORT long syscall(long number, ...) noexcept {
  va_list ap;
  va_start(ap, number);
  std::array<long, 6> a{};
  for (long& x : a) x = va_arg(ap, long);  // NOLINT(cppcoreguidelines-pro-type-vararg)
  va_end(ap);
  long res = 0;
  switch (number) {
    // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr): arguments are longs
    case SYS_io_setup: res = trace::traced_setup(a[0], reinterpret_cast<aio_context_t*>(a[1])); break;
    case SYS_io_destroy: res = trace::traced_destroy(static_cast<aio_context_t>(a[0])); break;
    case SYS_io_submit:
      res = trace::traced_submit(static_cast<aio_context_t>(a[0]), a[1], reinterpret_cast<iocb* const*>(a[2]));
      break;
    case SYS_io_cancel:
      res = trace::traced_cancel(static_cast<aio_context_t>(a[0]), reinterpret_cast<iocb*>(a[1]),
                                 reinterpret_cast<io_event*>(a[2]));
      break;
    case SYS_io_getevents:
      res = trace::traced_getevents(static_cast<aio_context_t>(a[0]), a[1], a[2], reinterpret_cast<io_event*>(a[3]),
                                    reinterpret_cast<const sys::KernelTimespec*>(a[4]), nullptr, false);
      break;
    case SYS_io_pgetevents:
      res = trace::traced_getevents(static_cast<aio_context_t>(a[0]), a[1], a[2], reinterpret_cast<io_event*>(a[3]),
                                    reinterpret_cast<const sys::KernelTimespec*>(a[4]),
                                    reinterpret_cast<const sys::AioSigset*>(a[5]), true);
      break;
      // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
    default: res = sys::raw::invoke(number, a[0], a[1], a[2], a[3], a[4], a[5]); break;
  }
  if (res < 0 && res > -4096) {
    errno = static_cast<int>(-res);
    return -1;
  }
  return res;
}

// close(): the fd's file name is looked up again when it is next used.
AIOPP_EXPORT int close(int fd) {
  if (fd >= 0 && static_cast<std::size_t>(fd) < trace::g_fd_file.size())
    trace::g_fd_file[static_cast<std::size_t>(fd)].store(0, std::memory_order_relaxed);
  return trace::real_close()(fd);
}
}  // extern "C"
