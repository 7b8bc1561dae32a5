// aiopp fuzzer — argument validation of every public call, against the real kernel.
//
// Each input is a program of up to 48 operations on a few Contexts (two long-lived ones, one
// automatic and one ReapMode::syscall, kept across inputs; a scratch one the input creates
// with an arbitrary size and mode; an empty one): submit / submit_all (three overloads) of
// iocbs whose every field is arbitrary, getevents / pgetevents / wait_for / wait_until with
// arbitrary min_nr, span sizes, timeouts and signal masks, cancel, ready, create /
// create_shrinking / destroy / move, observers on and off, and the pure builders, modifiers
// and completion helpers (iocb.hpp, flags.hpp, nowait.hpp, limits.hpp) with arbitrary values.
//
// Safety rules that keep the kernel from writing anywhere but fuzzer-owned memory:
//   - the buffer of a PREAD/PWRITE always lies inside a 64 KiB arena (nbytes clamped), and
//     PREADV/PWRITEV point at a separate iovec array whose entries lie inside the arena; for
//     other opcodes (which the kernel never dereferences) aio_buf is 0, a 16-bit poll mask or
//     an arena address;
//   - iocb pointers are our own iocbs (each in flight at most once), nullptr, a PROT_NONE
//     page or a kernel address (EFAULT: the kernel writes aio_key only into accepted iocbs);
//   - fds are ours (a tmpfs file, /dev/null, a non-blocking pipe, a non-blocking eventfd)
//     or numbers that are never open; nothing blocks in io_submit;
//   - waits are bounded: no timeout only with min_nr == 0, any positive timeout clamped to
//     2 ms when min_nr > 0; io_setup sizes are small (<= 256, at most 2 per input), or
//     beyond 4194304 / 0 which the kernel refuses without charging fs.aio-nr.
// Invariants checked (__builtin_trap on violation): every error is in system_category();
// counts never exceed what was asked or the span; every completion reaped belongs to a
// request of ours that the kernel accepted on that Context and is reaped exactly once, with
// its aio_data intact; invalid arguments (empty Context, min_nr > span, negative timeout,
// empty submit) fail with EINVAL / return 0 without a syscall (Observer counters); at the
// end of every input each accepted request is reaped (cancelling polls) before any Context
// is destroyed; the builders set exactly the fields they document.
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <system_error>
#include <utility>

#include "aio/aio.hpp"
#include "aio/batch.hpp"
#include "aio/flags.hpp"
#include "aio/iocb.hpp"
#include "aio/limits.hpp"
#include "aio/nowait.hpp"
#include "aio/observer.hpp"
#include "aio/probe.hpp"
#include "aio/wait.hpp"

#include "fuzz_input.hpp"

namespace {

using aiofuzz::check;

using aiofuzz::Input;

constexpr std::size_t arena_size = 64 * 1024;
constexpr std::size_t iov_count = 16;
constexpr std::size_t slot_count = 256;  // enough to fill a small ring (EAGAIN)
constexpr std::size_t event_cap = 64;
constexpr std::chrono::nanoseconds max_wait = std::chrono::milliseconds(2);

alignas(4096) unsigned char g_arena[arena_size];
iovec g_iov[iov_count];
io_event g_events[event_cap];

enum class State : std::uint8_t { idle, inflight, done };
struct Slot {
  iocb cb{};
  State state = State::idle;
  int ctx = -1;        // which Context it is in flight on
  std::uint64_t data;  // aio_data at submit
};
std::array<Slot, slot_count> g_slots;

struct Fds {
  int file = -1, devnull = -1, pipe_r = -1, pipe_w = -1, efd = -1;
  void* guard = nullptr;  // a PROT_NONE page
};
Fds g_fds;

// 0, 1: long-lived (automatic, syscall); 2: scratch (per input); 3: always empty.
constexpr int ctx_count = 4;
aio::Context g_ctx[ctx_count];
std::size_t g_inflight[ctx_count];
aio::Observer* g_obs = nullptr;      // plain counters
aio::Observer* g_obs_lat = nullptr;  // with latency tracking

bool is_system(const std::error_code& ec) { return &ec.category() == &std::system_category(); }
bool is_einval(const std::error_code& ec) { return is_system(ec) && ec.value() == EINVAL; }

void setup_once() {
  static bool done = false;
  if (done) return;
  done = true;
  char path[] = "/dev/shm/aiopp-fuzz-XXXXXX";
  g_fds.file = ::mkostemp(path, O_CLOEXEC);
  if (g_fds.file < 0) {
    char tmp[] = "/tmp/aiopp-fuzz-XXXXXX";
    std::memcpy(path, tmp, sizeof tmp);
    g_fds.file = ::mkostemp(path, O_CLOEXEC);
  }
  if (g_fds.file < 0) std::abort();
  ::unlink(path);
  g_fds.devnull = ::open("/dev/null", O_RDWR | O_CLOEXEC);
  int p[2];
  if (::pipe2(p, O_NONBLOCK | O_CLOEXEC) != 0) std::abort();
  g_fds.pipe_r = p[0];
  g_fds.pipe_w = p[1];
  g_fds.efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  g_fds.guard = ::mmap(nullptr, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (g_fds.devnull < 0 || g_fds.efd < 0 || g_fds.guard == MAP_FAILED) std::abort();
  g_obs = new aio::Observer(0);
  g_obs_lat = new aio::Observer(128);
  // fs.aio-max-nr is machine-wide: another process may hold it all for a moment.
  auto a = aio::Context::create(64, aio::ReapMode::automatic);
  auto s = aio::Context::create(64, aio::ReapMode::syscall);
  for (int tries = 0; tries < 200 && (!a || !s); ++tries) {
    ::usleep(10'000);
    if (!a) a = aio::Context::create(64, aio::ReapMode::automatic);
    if (!s) s = aio::Context::create(64, aio::ReapMode::syscall);
  }
  if (!a || !s) {
    std::fprintf(stderr, "fuzz_args: io_setup failed: %s\n", (a ? s.error() : a.error()).message().c_str());
    std::abort();
  }
  g_ctx[0] = std::move(*a);
  g_ctx[1] = std::move(*s);
}

int pick_fd(std::uint8_t b) {
  switch (b % 10) {
    case 0: return g_fds.file;
    case 1: return g_fds.devnull;
    case 2: return g_fds.pipe_r;
    case 3: return g_fds.pipe_w;
    case 4: return g_fds.efd;
    case 5: return -1;
    case 6: return INT_MAX;
    case 7: return INT_MIN;
    case 8: return 0x7ffffffe;
    default: return g_fds.file;
  }
}

std::uint16_t pick_opcode(Input& in) {
  const auto b = in.get<std::uint8_t>();
  static constexpr std::uint16_t known[] = {IOCB_CMD_PREAD,  IOCB_CMD_PWRITE, IOCB_CMD_FSYNC,
                                            IOCB_CMD_FDSYNC, IOCB_CMD_POLL,   IOCB_CMD_NOOP,
                                            IOCB_CMD_PREADV, IOCB_CMD_PWRITEV};
  if (b < 240) return known[b % 8];
  return in.get<std::uint16_t>();
}

std::int64_t pick_offset(Input& in) {
  const auto b = in.get<std::uint8_t>();
  const auto v = in.get<std::int64_t>();
  if (b % 4 != 0) return static_cast<std::int64_t>(static_cast<std::uint64_t>(v) % (2 * arena_size));
  return v;  // negative, huge, anything
}

// Fills the iocb of slot i from the input, keeping every buffer inside fuzzer memory.
void build_iocb(Slot& s, Input& in) {
  iocb cb{};
  cb.aio_lio_opcode = pick_opcode(in);
  const auto fdb = in.get<std::uint8_t>();
  cb.aio_fildes = static_cast<std::uint32_t>(pick_fd(fdb));
  cb.aio_data = in.get<std::uint64_t>();
  const auto shape = in.get<std::uint8_t>();
  cb.aio_offset = pick_offset(in);
  if ((shape & 1) != 0) cb.aio_rw_flags = in.get<std::int32_t>() & ((shape & 2) != 0 ? 0x1f : -1);
  if ((shape & 4) != 0) {
    cb.aio_flags = in.get<std::uint32_t>() & ((shape & 8) != 0 ? 3U : ~0U);
    cb.aio_resfd = static_cast<std::uint32_t>(pick_fd(in.get<std::uint8_t>()));
    cb.aio_reqprio = in.get<std::int16_t>();
  }
  if ((shape & 16) != 0) cb.aio_reserved2 = in.get<std::uint8_t>();
  if ((shape & 32) != 0) cb.aio_key = in.get<std::uint32_t>();
  const auto off = static_cast<std::size_t>(in.get<std::uint16_t>()) % arena_size;
  const auto len = in.get<std::uint32_t>();
  switch (cb.aio_lio_opcode) {
    case IOCB_CMD_PREAD:
    case IOCB_CMD_PWRITE:
      cb.aio_buf = reinterpret_cast<std::uintptr_t>(g_arena + off);
      cb.aio_nbytes = len % (arena_size - off + 1);
      break;
    case IOCB_CMD_PREADV:
    case IOCB_CMD_PWRITEV: {
      const std::size_t first = off % iov_count;
      cb.aio_buf = reinterpret_cast<std::uintptr_t>(g_iov + first);
      cb.aio_nbytes = len % (iov_count - first + 1);
      break;
    }
    default:  // never dereferenced by the kernel: a poll mask, 0, or an arena address
      if ((shape & 64) != 0)
        cb.aio_buf = (shape & 128) != 0 ? reinterpret_cast<std::uintptr_t>(g_arena + off) : (len & 0xffffU);
      if ((shape & 128) != 0 && (shape & 64) == 0) cb.aio_nbytes = len;
      break;
  }
  s.cb = cb;
  s.data = cb.aio_data;
}

// Above every user mapping: the x86-64 kernel half, or on ILP32 the last page (beyond a compat
// task's 4 GiB - 8 KiB, in the kernel's part of a native 32-bit one).
constexpr std::uintptr_t kernel_address =
    sizeof(std::uintptr_t) == 8 ? static_cast<std::uintptr_t>(0xffff'8000'0000'0000ULL) : std::uintptr_t{0xffff'f000U};

// A span of iocb pointers: fresh slots, slots whose request was reaped (resubmitted as
// is), nullptr, a PROT_NONE page, a kernel address. Returns the count.
std::size_t build_batch(Input& in, std::array<iocb*, 8>& batch, std::size_t& next_slot) {
  const std::size_t k = in.get<std::uint8_t>() % 9;
  for (std::size_t i = 0; i < k; ++i) {
    const auto how = in.get<std::uint8_t>() % 16;
    // how < 11: a fresh slot; 11: a reaped one again; 12: PROT_NONE; 13: kernel address; else nullptr.
    iocb* p = nullptr;
    if (how < 11) {
      if (next_slot < slot_count) {
        Slot& s = g_slots[next_slot++];
        build_iocb(s, in);
        p = &s.cb;
      }
    } else if (how == 11) {
      Slot& s = g_slots[in.get<std::uint16_t>() % slot_count];
      if (s.state == State::done) {  // never an iocb that is in flight, nor one twice
        s.state = State::idle;
        p = &s.cb;
      }
    } else if (how == 12) {
      p = static_cast<iocb*>(g_fds.guard);
    } else if (how == 13) {
      p = reinterpret_cast<iocb*>(kernel_address);
    }
    batch[i] = p;
  }
  return k;
}

Slot* slot_of(const iocb* p) {
  const auto* base = reinterpret_cast<const unsigned char*>(g_slots.data());
  const auto* q = reinterpret_cast<const unsigned char*>(p);
  if (q < base || q >= base + sizeof g_slots) return nullptr;
  const std::size_t i = static_cast<std::size_t>(q - base) / sizeof(Slot);
  if (&g_slots[i].cb != p) return nullptr;
  return &g_slots[i];
}

// The kernel accepted batch[0, n) on context c.
void accepted(int c, std::span<iocb* const> batch, std::size_t n) {
  check(n <= batch.size());
  for (std::size_t i = 0; i < n; ++i) {
    Slot* s = slot_of(batch[i]);
    check(s != nullptr && s->state != State::inflight);
    s->state = State::inflight;
    s->ctx = c;
    s->data = s->cb.aio_data;
    ++g_inflight[c];
  }
}

// Completions reaped from context c: each one ours, in flight there, reaped once.
void reaped(int c, std::span<const io_event> evs) {
  for (const io_event& ev : evs) {
    Slot* s = slot_of(aio::request_of(ev));
    check(s != nullptr);
    check(s->state == State::inflight && s->ctx == c);
    check(ev.data == s->data && aio::user_data(ev) == s->data);
    s->state = State::done;
    check(g_inflight[c] > 0);
    --g_inflight[c];
    // result() is total over res: a count, or an errno in 1..4095.
    const auto r = aio::result(ev);
    if (ev.res >= 0) {
      check(r && *r == static_cast<std::size_t>(ev.res));
    } else {
      check(!r && is_system(r.error()) && r.error().value() >= 1 && r.error().value() <= 4095);
    }
  }
}

// A timeout that cannot block long: negative, zero, nullopt (only with min_nr == 0), huge
// (only with min_nr == 0: the kernel returns at once), else at most max_wait.
aio::Timeout pick_timeout(Input& in, std::size_t min_nr, bool& negative) {
  const auto how = in.get<std::uint8_t>() % 5;
  const auto v = in.get<std::int64_t>();
  negative = false;
  switch (how) {
    case 0: return min_nr == 0 ? aio::Timeout{} : aio::Timeout{std::chrono::nanoseconds(0)};
    case 1: return std::chrono::nanoseconds(0);
    case 2:
      negative = v < 0;
      if (v <= 0 || min_nr == 0) return std::chrono::nanoseconds(v);
      return std::chrono::nanoseconds(v % max_wait.count());
    case 3: negative = true; return std::chrono::nanoseconds(v < 0 ? v : -1 - v);
    default: return std::chrono::nanoseconds(static_cast<std::uint64_t>(v) % max_wait.count());
  }
}

sigset_t pick_mask(Input& in) {
  sigset_t m;
  sigemptyset(&m);
  const auto bits = in.get<std::uint64_t>();
  for (int sig = 1; sig <= 64; ++sig)
    if ((bits >> (sig - 1) & 1U) != 0 && sig != SIGKILL && sig != SIGSTOP) sigaddset(&m, sig);
  return m;
}

std::uint64_t syscalls_of(int c) {
  const aio::Observer* o = g_ctx[c].observer();
  return o == nullptr ? 0 : o->total_syscalls();
}

int pick_ctx(Input& in) { return in.get<std::uint8_t>() % ctx_count; }

void op_submit(Input& in, std::size_t& next_slot) {
  const int c = pick_ctx(in);
  std::array<iocb*, 8> batch{};
  const std::size_t k = build_batch(in, batch, next_slot);
  const std::span<iocb* const> span(batch.data(), k);
  const bool usable = g_ctx[c].valid();
  const std::uint64_t before = syscalls_of(c);
  const auto r = g_ctx[c].submit(span);
  if (!usable) {
    check(!r && is_einval(r.error()));
    check(syscalls_of(c) == before);
    return;
  }
  if (k == 0) {
    check(r && *r == 0);
    check(syscalls_of(c) == before);
    return;
  }
  if (!r) {
    check(is_system(r.error()));
    return;
  }
  check(*r <= k);
  accepted(c, span, *r);
}

void op_submit_all(Input& in, std::size_t& next_slot) {
  const int c = pick_ctx(in);
  std::array<iocb*, 8> batch{};
  const std::size_t k = build_batch(in, batch, next_slot);
  const std::span<iocb* const> span(batch.data(), k);
  const auto how = in.get<std::uint8_t>();
  aio::RetryPolicy policy;
  policy.max_retries = in.get<std::uint8_t>() % 4;
  policy.reap_timeout = std::chrono::nanoseconds(in.get<std::uint32_t>() % max_wait.count());
  const std::size_t room = in.get<std::uint8_t>() % (event_cap + 1);
  aio::SubmitAll res;
  // The callback's completions are checked after the call: they may belong to requests of
  // this very call, which are marked accepted only once it returns.
  static io_event via_callback[4 * event_cap];
  std::size_t n_callback = 0;
  switch (how % 3) {
    case 0: res = aio::submit_all(g_ctx[c], span); break;
    case 1: res = aio::submit_all(g_ctx[c], span, std::span<io_event>(g_events, room), policy); break;
    default: {
      // The callback sees completions one by one; they are checked like any reaped ones.
      auto on_event = [&n_callback](const io_event& ev) noexcept {
        check(n_callback < 4 * event_cap);
        via_callback[n_callback++] = ev;
      };
      res = aio::submit_all(g_ctx[c], span, std::span<io_event>(g_events, room), on_event, policy);
      break;
    }
  }
  check(res.submitted <= k);
  check(res.failed_index == (res.ok() ? k : res.submitted));
  if (res.ok()) check(res.submitted == k);
  if (!res.ok()) check(is_system(res.error) && (res.submitted < k || k == 0));
  check(res.retries <= policy.max_retries);
  if (!g_ctx[c].valid()) check(res.submitted == 0 && is_einval(res.error));
  // Accept first: a reaped completion may belong to a request of this very call.
  accepted(c, span, res.submitted);
  if (how % 3 == 1) {
    check(res.reaped <= room);
    reaped(c, std::span<const io_event>(g_events, res.reaped));
  } else if (how % 3 == 2) {
    check(res.reaped == n_callback);
    reaped(c, std::span<const io_event>(via_callback, n_callback));
  } else {
    check(res.reaped == 0 && res.retries == 0);
  }
}

// A reap's outcome: EINVAL when its arguments were invalid, else a system error or at most
// evs.size() completions, each of them a request of ours on context c.
void check_reap(int c, const aio::Result<std::size_t>& r, bool invalid, std::span<io_event> evs) {
  if (invalid) {
    check(!r && is_einval(r.error()));
    return;
  }
  if (!r) {
    check(is_system(r.error()));
    return;
  }
  check(*r <= evs.size());
  reaped(c, evs.first(*r));
}

void op_getevents(Input& in, bool pget) {
  const int c = pick_ctx(in);
  const std::size_t size = in.get<std::uint8_t>() % (event_cap + 1);
  const std::size_t min_nr = in.get<std::uint8_t>() % (event_cap + 2);
  bool negative = false;
  const aio::Timeout timeout = pick_timeout(in, min_nr, negative);
  const bool with_mask = pget && (in.get<std::uint8_t>() & 1) != 0;
  const sigset_t mask = pick_mask(in);
  const std::span<io_event> evs(g_events, size);
  const bool invalid = !g_ctx[c].valid() || min_nr > size || negative;
  const std::uint64_t before = syscalls_of(c);
  const auto r = pget ? g_ctx[c].pgetevents(min_nr, evs, timeout, with_mask ? &mask : nullptr)
                      : g_ctx[c].getevents(min_nr, evs, timeout);
  check_reap(c, r, invalid, evs);
  if (invalid) check(syscalls_of(c) == before);  // refused by the wrapper, not the kernel
}

void op_wait(Input& in) {
  const int c = pick_ctx(in);
  const std::size_t size = in.get<std::uint8_t>() % (event_cap + 1);
  const std::size_t min_nr = in.get<std::uint8_t>() % (event_cap + 2);
  const auto how = in.get<std::uint8_t>();
  const auto v = in.get<std::int64_t>();
  const sigset_t mask = pick_mask(in);
  const sigset_t* mp = (how & 8) != 0 ? &mask : nullptr;
  const std::span<io_event> evs(g_events, size);
  const bool invalid = !g_ctx[c].valid() || min_nr > size;
  aio::Result<std::size_t> r;
  using Clock = std::chrono::steady_clock;
  switch (how % 4) {
    case 0:  // wait_for, nanoseconds: negative polls once; positive bounded unless min_nr == 0
      r = aio::wait_for(g_ctx[c], min_nr, evs,
                        std::chrono::nanoseconds(v <= 0 || min_nr == 0 ? v : v % max_wait.count()), mp);
      break;
    case 1:  // wait_for, other representations (double seconds, hours)
      if (min_nr == 0)
        r = aio::wait_for(g_ctx[c], min_nr, evs, std::chrono::duration<double>(static_cast<double>(v) * 1e3), mp);
      else
        r = aio::wait_for(g_ctx[c], min_nr, evs, std::chrono::hours(v < 0 ? v % 1000 : -(v % 1000)), mp);
      break;
    case 2:  // wait_until a deadline in the past or within max_wait
      r = aio::wait_until(g_ctx[c], min_nr, evs,
                          Clock::now() + std::chrono::nanoseconds(v % max_wait.count()), mp);
      break;
    default:  // wait_until: no time limit (only when it cannot block) or the epoch
      r = aio::wait_until(g_ctx[c], min_nr, evs, min_nr == 0 ? Clock::time_point::max() : Clock::time_point{}, mp);
      break;
  }
  check_reap(c, r, invalid, evs);
}

void op_cancel(Input& in) {
  const int c = pick_ctx(in);
  Slot& s = g_slots[in.get<std::uint16_t>() % slot_count];
  const bool was_ours = s.state == State::inflight && s.ctx == c;
  const std::uint64_t before = syscalls_of(c);
  const auto r = g_ctx[c].cancel(s.cb);
  if (!g_ctx[c].valid()) {
    check(!r && is_einval(r.error()) && syscalls_of(c) == before);
    return;
  }
  if (r) {
    // Accepted: the request was in flight on this Context (its completion still comes).
    check(was_ours);
  } else {
    check(is_system(r.error()));
  }
}

// Reaps every request in flight on c: cancels what can be cancelled (polls), then waits
// (bounded) for the rest. A request that never completes is a finding.
void drain(int c) {
  if (g_inflight[c] == 0) return;
  check(g_ctx[c].valid());
  for (Slot& s : g_slots)
    if (s.state == State::inflight && s.ctx == c) (void)g_ctx[c].cancel(s.cb);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (g_inflight[c] != 0) {
    const std::size_t want = g_inflight[c] < event_cap ? g_inflight[c] : event_cap;
    auto r = aio::wait_until(g_ctx[c], want, std::span<io_event>(g_events, event_cap), deadline);
    check(static_cast<bool>(r));
    reaped(c, std::span<const io_event>(g_events, *r));
    if (std::chrono::steady_clock::now() >= deadline && g_inflight[c] != 0) {
      std::fprintf(stderr, "fuzz_args: %zu accepted requests never completed\n", g_inflight[c]);
      __builtin_trap();
    }
  }
}

// io_setup sizes: small real ones, or ones the kernel refuses before charging aio-nr.
unsigned pick_size(Input& in) {
  const auto how = in.get<std::uint8_t>();
  const auto v = in.get<std::uint32_t>();
  if (how % 4 != 0) return 1 + v % 256;
  switch (v % 6) {
    case 0: return 0;                                   // EINVAL
    case 1: return 4194305 + v % 1000;                  // doubled beyond the ring limit: EINVAL
    case 2: return 0x7fffffffU;                         // EINVAL
    case 3: return 0x80000000U;                         // doubles to 0: EAGAIN
    case 4: return 0xffffffffU;                         // EAGAIN / EINVAL
    default: return 0x80000000U | (v & 0x7fffffffU);    // never charged
  }
}

bool real_size(unsigned n) { return n >= 1 && n <= 256; }

void op_create(Input& in, int& creates) {
  const unsigned n = pick_size(in);
  const auto how = in.get<std::uint8_t>();
  const aio::ReapMode mode = (how & 1) != 0 ? aio::ReapMode::syscall : aio::ReapMode::automatic;
  if (real_size(n) && creates >= 2) return;  // io_destroy waits an RCU grace period: few per input
  drain(2);
  aio::Observer* obs = (how & 2) != 0 ? g_obs : nullptr;
  const std::uint64_t setups = obs != nullptr ? obs->syscalls(aio::Syscall::setup) : 0;
  aio::Result<aio::Context> r = (how & 4) != 0 && real_size(n)
                                    ? aio::create_shrinking(n, 1 + (how >> 3) % (n + 1), mode)
                                    : aio::Context::create(n, mode, obs);
  if (obs != nullptr && (how & 4) == 0) check(obs->syscalls(aio::Syscall::setup) == setups + 1);
  if (!real_size(n)) {
    check(!r);
    check(is_system(r.error()));
    check(r.error().value() == EINVAL || r.error().value() == EAGAIN);
    return;
  }
  if (!r) {  // EAGAIN when the machine's quota is exhausted by someone else; minimum > wanted
    check(is_system(r.error()));
    return;
  }
  ++creates;
  check(r->valid() && r->native_handle() != 0 && r->max_events() >= 1 && r->max_events() <= n);
  if (mode == aio::ReapMode::syscall) check(!r->ring_reaping());
  check(r->ready() == 0);
  g_ctx[2] = std::move(*r);  // the old scratch was drained: its destructor may wait for nothing
  check(!r->valid() && r->native_handle() == 0);
}

void op_destroy(Input& in) {
  const int c = 2 + in.get<std::uint8_t>() % 2;  // scratch or the empty one: never the long-lived ones
  drain(c);
  const bool was_valid = g_ctx[c].valid();
  const auto r = g_ctx[c].destroy();
  check(static_cast<bool>(r) == was_valid);
  if (!r) check(is_einval(r.error()));
  check(!g_ctx[c].valid() && g_ctx[c].native_handle() == 0 && g_ctx[c].max_events() == 0);
  // Every call on it now fails with EINVAL.
  check(g_ctx[c].ready() == 0);
  const auto again = g_ctx[c].destroy();
  check(!again && is_einval(again.error()));
}

void op_move(Input& in) {
  // Moves between the scratch and the empty Context (self-move included); in-flight
  // requests follow the kernel context.
  const auto how = in.get<std::uint8_t>();
  const int from = 2 + how % 2, to = 2 + (how >> 1) % 2;
  if (from == to) {
    const aio_context_t h = g_ctx[from].native_handle();
    g_ctx[from] = std::move(g_ctx[to]);  // from == to: a self-move leaves it as it was
    check(g_ctx[from].native_handle() == h);
    return;
  }
  drain(to);  // move-assignment destroys what `to` owned
  const aio_context_t h = g_ctx[from].native_handle();
  if ((how & 4) != 0) {
    aio::Context tmp(std::move(g_ctx[from]));
    g_ctx[to] = std::move(tmp);
  } else {
    g_ctx[to] = std::move(g_ctx[from]);
  }
  check(g_ctx[to].native_handle() == h && g_ctx[from].native_handle() == 0);
  g_inflight[to] = g_inflight[from];
  g_inflight[from] = 0;
  for (Slot& s : g_slots)
    if (s.state == State::inflight && s.ctx == from) s.ctx = to;
}

void op_misc_ctx(Input& in) {
  const int c = pick_ctx(in);
  const auto how = in.get<std::uint8_t>();
  switch (how % 4) {
    case 0: {
      // ready(): never more than this Context has in flight.
      const std::size_t n = g_ctx[c].ready();
      check(n <= g_inflight[c]);
      if (!g_ctx[c].valid()) check(n == 0);
      break;
    }
    case 1: g_ctx[c].set_observer(nullptr); break;
    case 2: g_ctx[c].set_observer(g_obs); break;
    default: g_ctx[c].set_observer(g_obs_lat); break;
  }
}

// The builders and helpers, with arbitrary values, against what they document.
void op_builders(Input& in) {
  const int fd = in.get<std::int32_t>();
  const std::int64_t off = in.get<std::int64_t>();
  const std::size_t at = in.get<std::uint16_t>() % arena_size;
  const std::size_t len = in.get<std::uint32_t>() % (arena_size - at + 1);
  const std::span<std::byte> buf(reinterpret_cast<std::byte*>(g_arena + at), len);
  const std::size_t vi = in.get<std::uint8_t>() % iov_count;
  const std::span<const iovec> iov(g_iov + vi, in.get<std::uint8_t>() % (iov_count - vi + 1));
  const auto which = in.get<std::uint8_t>();
  const auto ev16 = in.get<std::int16_t>();
  iocb cb{};
  std::uint16_t op = 0;
  std::uint64_t want_buf = 0, want_nbytes = 0;
  std::int64_t want_off = 0;
  switch (which % 8) {
    case 0: cb = aio::make_pread(fd, buf, off); op = IOCB_CMD_PREAD; break;
    case 1: cb = aio::make_pwrite(fd, buf, off); op = IOCB_CMD_PWRITE; break;
    case 2: cb = aio::make_preadv(fd, iov, off); op = IOCB_CMD_PREADV; break;
    case 3: cb = aio::make_pwritev(fd, iov, off); op = IOCB_CMD_PWRITEV; break;
    case 4: cb = aio::make_fsync(fd); op = IOCB_CMD_FSYNC; break;
    case 5: cb = aio::make_fdsync(fd); op = IOCB_CMD_FDSYNC; break;
    case 6: cb = aio::make_poll(fd, ev16); op = IOCB_CMD_POLL; break;
    default:
      cb = aio::make_poll(fd, static_cast<aio::PollEvents>(static_cast<std::uint16_t>(ev16)));
      op = IOCB_CMD_POLL;
      break;
  }
  if (which % 8 < 2) {
    want_buf = reinterpret_cast<std::uintptr_t>(buf.data());
    want_nbytes = len;
    want_off = off;
  } else if (which % 8 < 4) {
    want_buf = reinterpret_cast<std::uintptr_t>(iov.data());
    want_nbytes = iov.size();
    want_off = off;
  } else if (which % 8 >= 6) {
    want_buf = static_cast<std::uint16_t>(ev16);  // no sign extension
  }
  check(cb.aio_lio_opcode == op && cb.aio_fildes == static_cast<std::uint32_t>(fd));
  check(cb.aio_buf == want_buf && cb.aio_nbytes == want_nbytes && cb.aio_offset == want_off);
  check(cb.aio_data == 0 && cb.aio_key == 0 && cb.aio_rw_flags == 0 && cb.aio_reqprio == 0 &&
        cb.aio_reserved2 == 0 && cb.aio_flags == 0 && cb.aio_resfd == 0);

  // Modifiers.
  const auto u = in.get<std::uint64_t>();
  const int efd = in.get<std::int32_t>();
  const int rwf = in.get<std::int32_t>();
  const auto cls = static_cast<aio::IoprioClass>(in.get<std::uint8_t>() % 4);
  const unsigned level = in.get<std::uint32_t>();
  const iocb plain = cb;
  check(&aio::set_user_data(cb, u) == &cb && cb.aio_data == u);
  check(&aio::set_user_ptr(cb, g_arena + at) == &cb && cb.aio_data == reinterpret_cast<std::uintptr_t>(g_arena + at));
  aio::set_eventfd(cb, efd);
  check((cb.aio_flags & IOCB_FLAG_RESFD) != 0 && cb.aio_resfd == static_cast<std::uint32_t>(efd));
  aio::set_priority(cb, cls, level);
  check((cb.aio_flags & IOCB_FLAG_IOPRIO) != 0 && (cb.aio_flags & IOCB_FLAG_RESFD) != 0);
  check(static_cast<std::uint16_t>(cb.aio_reqprio) == aio::ioprio_value(cls, level));
  check(static_cast<unsigned>(aio::ioprio_value(cls, level)) >> 13U == static_cast<unsigned>(cls));
  aio::clear_eventfd(cb);
  check((cb.aio_flags & IOCB_FLAG_RESFD) == 0 && cb.aio_resfd == 0 && (cb.aio_flags & IOCB_FLAG_IOPRIO) != 0);
  aio::set_rw_flags(cb, rwf);
  check(cb.aio_rw_flags == rwf && static_cast<int>(aio::rw_flags(cb)) == rwf);
  aio::set_rw_flags(cb, static_cast<aio::Rwf>(rwf & 0x1f));
  check(cb.aio_rw_flags == (rwf & 0x1f));
  aio::add_rw_flags(cb, aio::Rwf::nowait);
  check(any(aio::rw_flags(cb) & aio::Rwf::nowait));
  const bool rw = op == IOCB_CMD_PREAD || op == IOCB_CMD_PWRITE || op == IOCB_CMD_PREADV || op == IOCB_CMD_PWRITEV;
  check(aio::is_nowait(cb) == rw);
  const iocb blocking = aio::without_nowait(cb);
  check(!aio::is_nowait(blocking) && blocking.aio_rw_flags == (cb.aio_rw_flags & ~0x08));
  check(blocking.aio_buf == cb.aio_buf && blocking.aio_data == cb.aio_data && blocking.aio_flags == cb.aio_flags);
  // The modifiers leave the request itself alone.
  check(plain.aio_lio_opcode == cb.aio_lio_opcode && plain.aio_fildes == cb.aio_fildes &&
        plain.aio_buf == cb.aio_buf && plain.aio_nbytes == cb.aio_nbytes && plain.aio_offset == cb.aio_offset);

  // Completion helpers over arbitrary events.
  io_event ev{};
  ev.data = u;
  ev.obj = (which & 0x80) != 0 ? reinterpret_cast<std::uintptr_t>(&cb) : in.get<std::uint64_t>();
  ev.res = in.get<std::int64_t>();
  if ((which & 0x40) != 0) ev.res = -static_cast<std::int64_t>(in.get<std::uint16_t>() % 4200);
  ev.res2 = in.get<std::int64_t>();
  const auto r = aio::result(ev);
  if (ev.res >= 0) {
    check(r && *r == static_cast<std::size_t>(ev.res));
  } else {
    check(!r && is_system(r.error()));
    check(r.error().value() == (ev.res >= -4095 ? static_cast<int>(-ev.res) : EIO));
  }
  check(aio::user_data(ev) == u && aio::user_ptr<void>(ev) == reinterpret_cast<void*>(static_cast<std::uintptr_t>(u)));
  // obj read back as an address: all of it on LP64, its low half on ILP32 (where the kernel
  // only ever stores a 32-bit address there).
  check(reinterpret_cast<std::uintptr_t>(aio::request_of(ev)) == static_cast<std::uintptr_t>(ev.obj));
  check(aio::would_block(ev, cb) == (ev.res == -EAGAIN && aio::is_nowait(cb)));
  if ((which & 0x80) != 0) check(aio::would_block(ev) == aio::would_block(ev, cb));
  const aio::PollEvents pe = aio::poll_events(ev);
  check(ev.res < 0 ? pe == aio::PollEvents::none : static_cast<std::uint16_t>(pe) == (static_cast<std::uint64_t>(ev.res) & 0xffffU));
  const auto a = static_cast<aio::PollEvents>(static_cast<std::uint16_t>(ev16));
  check(static_cast<std::uint16_t>(a | ~a) == 0xffffU && (a & ~a) == aio::PollEvents::none);
  check(any(a) == (ev16 != 0));
  const auto f = static_cast<aio::Rwf>(rwf);
  check(static_cast<int>(f | ~f) == -1 && (f & ~f) == aio::Rwf::none && any(f) == (rwf != 0));

  // limits.hpp: the advice text for arbitrary numbers (allocates, never fails).
  aio::SystemLimits lim;
  lim.nr = in.get<std::uint64_t>();
  lim.max_nr = in.get<std::uint64_t>();
  check(lim.available() == (lim.nr >= lim.max_nr ? 0 : lim.max_nr - lim.nr));
  const unsigned wanted = in.get<std::uint32_t>();
  check(aio::aio_nr_charge(wanted) == wanted);
  const std::string advice = aio::aio_max_nr_advice(wanted, lim);
  check(advice.starts_with("io_setup(" + std::to_string(wanted) + ") needs "));
}

void op_probe_fd(Input& in, int& creates) {
  const auto b = in.get<std::uint8_t>();
  const int fd = pick_fd(b);
  if (fd == -1 || fd == INT_MAX || fd == INT_MIN || fd == 0x7ffffffe) {
    // Not open: EBADF before any io_setup.
    const auto r = aio::probe_fd(fd);
    check(!r && is_system(r.error()) && r.error().value() == EBADF);
  } else if (creates < 2) {  // ours: probes with a Context of its own (io_setup + io_destroy)
    ++creates;
    const auto r = aio::probe_fd(fd);
    if (r) {
      check(!r->o_direct);
      check(!r->setup || is_system(r->setup));
      check(!r->poll || is_system(r->poll));
      check(!(r->poll && r->poll_always_ready));  // always ready: the poll was accepted
      check(r->supports(aio::FdCapability::poll) == (!r->poll && !r->poll_always_ready));
      check(!aio::describe(*r).empty());
    } else {
      check(is_system(r.error()));
    }
  }
  const auto lim = aio::system_limits();
  check(lim ? lim->available() <= lim->max_nr : is_system(lim.error()));
}

void rebuild_iov(Input& in) {
  for (std::size_t i = 0; i < iov_count; ++i) {
    const std::size_t at = in.get<std::uint16_t>() % arena_size;
    g_iov[i].iov_base = g_arena + at;
    g_iov[i].iov_len = in.get<std::uint16_t>() % (arena_size - at + 1);
  }
}

// Back to the state every input starts from: nothing in flight anywhere, the scratch
// Context destroyed, no observers, the fds drained, the file 64 KiB again.
void reset() {
  for (int c = 0; c < ctx_count; ++c) drain(c);
  for (int c = 0; c < ctx_count; ++c) check(g_inflight[c] == 0);
  for (int c = 2; c < ctx_count; ++c) (void)g_ctx[c].destroy();
  for (int c = 0; c < 2; ++c) {
    g_ctx[c].set_observer(nullptr);
    check(g_ctx[c].valid() && g_ctx[c].ready() == 0);
  }
  for (Slot& s : g_slots) s = Slot{};
  unsigned char sink[4096];
  while (::read(g_fds.pipe_r, sink, sizeof sink) > 0) {
  }
  std::uint64_t count;
  (void)::read(g_fds.efd, &count, sizeof count);
  (void)::ftruncate(g_fds.file, arena_size);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  setup_once();
  Input in{data, size};
  rebuild_iov(in);
  std::size_t next_slot = 0;
  int creates = 0;
  for (int ops = 0; ops < 48 && !in.empty(); ++ops) {
    switch (in.get<std::uint8_t>() % 12) {
      case 0:
      case 1: op_submit(in, next_slot); break;
      case 2: op_submit_all(in, next_slot); break;
      case 3: op_getevents(in, false); break;
      case 4: op_getevents(in, true); break;
      case 5: op_wait(in); break;
      case 6: op_cancel(in); break;
      case 7: op_create(in, creates); break;
      case 8: op_destroy(in); break;
      case 9: op_move(in); break;
      case 10: op_misc_ctx(in); break;
      default:
        if ((in.get<std::uint8_t>() & 7) == 0)
          op_probe_fd(in, creates);
        else
          op_builders(in);
        break;
    }
  }
  reset();
  return 0;
}
