// aiopp — capability probes (see include/aio/probe.hpp for the contract).
#include "aio/probe.hpp"

#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <thread>

#include "aio/context.hpp"
#include "aio/flags.hpp"
#include "aio/iocb.hpp"

namespace aio {
namespace {

using namespace std::chrono_literals;

// How long a probe waits for its one completion. (Named: cppcheck 2.10 aborts on `1s` in a
// loop or loop condition: "MathLib::toLongNumber: input was not completely consumed".)
constexpr std::chrono::nanoseconds reap_wait = 1s;

#ifdef STATX_DIOALIGN
constexpr unsigned statx_dioalign = STATX_DIOALIGN;
#else
constexpr unsigned statx_dioalign = 0x2000U;  // Linux 6.1; glibc < 2.37 headers lack it
#endif
static_assert(statx_dioalign == 0x2000U);

// BLKSSZGET from <linux/fs.h>, which clashes with glibc's RWF_* macros: _IO(0x12, 104).
constexpr unsigned long blk_ssz_get = _IO(0x12, 104);

struct DioAlign {
  std::uint32_t mem;
  std::uint32_t offset;
};

// stx_dio_mem_align / stx_dio_offset_align. glibc < 2.37 declares them as padding; the
// kernel ABI puts them at byte offsets 0x98 and 0x9c of struct statx whatever libc says.
template <class Statx>
[[nodiscard]] DioAlign dio_fields(const Statx& sx) noexcept {
  if constexpr (requires(const Statx& s) {
                  s.stx_dio_mem_align;
                  s.stx_dio_offset_align;
                }) {
    return {sx.stx_dio_mem_align, sx.stx_dio_offset_align};
  } else {
    static_assert(sizeof(Statx) >= 0xa0, "struct statx is 256 bytes in the kernel ABI");
    DioAlign d{};
    // Byte offsets into the ABI struct:
    // NOLINTBEGIN(cppcoreguidelines-pro-type-reinterpret-cast,cppcoreguidelines-pro-bounds-pointer-arithmetic)
    std::memcpy(&d.mem, reinterpret_cast<const unsigned char*>(&sx) + 0x98, sizeof d.mem);
    std::memcpy(&d.offset, reinterpret_cast<const unsigned char*>(&sx) + 0x9c, sizeof d.offset);
    // NOLINTEND(cppcoreguidelines-pro-type-reinterpret-cast,cppcoreguidelines-pro-bounds-pointer-arithmetic)
    return d;
  }
}

// Submits one request; if accepted, reaps its completion (up to a second). Returns the
// submit error (empty when accepted); the completion's res is not looked at.
[[nodiscard]] std::error_code submit_and_reap(Context& ctx, iocb& cb) noexcept {
  iocb* p = &cb;
  auto n = ctx.submit(std::span<iocb* const>(&p, 1));
  if (!n) return n.error();
  if (*n != 1) return make_error_code(EAGAIN);
  std::array<io_event, 1> ev{};
  for (int tries = 0; tries < 100; ++tries) {
    auto got = ctx.getevents(1, ev, reap_wait);
    if (got && *got == 1) return {};
    if (got || got.error() != std::errc::interrupted) break;
  }
  // Not completed within a second: ask for a cancel (only polls can be), and leave the rest
  // to the Context's destructor, which waits for in-flight requests.
  (void)ctx.cancel(cb);
  (void)ctx.getevents(1, ev, reap_wait);
  return make_error_code(ETIMEDOUT);
}

[[nodiscard]] std::error_code probe_pgetevents(Context& ctx) noexcept {
  sigset_t mask;
  sigemptyset(&mask);
  ::pthread_sigmask(SIG_SETMASK, nullptr, &mask);  // the current mask: changes nothing
  std::array<io_event, 1> ev{};
  for (int tries = 0; tries < 100; ++tries) {
    // min_nr 1 with a 1 ns timeout: nothing is ready, so it reaches the kernel (the ring
    // fast path answers only zero timeouts or calls it can satisfy).
    auto r = ctx.pgetevents(1, ev, std::chrono::nanoseconds(1), &mask);
    if (r) return {};
    if (r.error() != std::errc::interrupted) return r.error();
  }
  return make_error_code(EINTR);
}

[[nodiscard]] std::error_code probe_poll(Context& ctx, bool& ring_seen) noexcept {
  const int efd = ::eventfd(1, EFD_CLOEXEC | EFD_NONBLOCK);  // counter 1: readable now
  if (efd < 0) {
    const int err = errno;
    return make_error_code(err);
  }
  iocb cb = make_poll(efd, PollEvents::in);
  iocb* p = &cb;
  std::error_code out;
  if (auto n = ctx.submit(std::span<iocb* const>(&p, 1)); !n) {
    out = n.error();
  } else {
    // A poll on a ready file completes inside io_submit; give the ring a moment anyway.
    if (ctx.ring_reaping()) {
      const auto until = std::chrono::steady_clock::now() + reap_wait;
      while (ctx.ready() == 0 && std::chrono::steady_clock::now() < until)
        std::this_thread::sleep_for(std::chrono::microseconds(100));
      ring_seen = ctx.ready() != 0;
    }
    std::array<io_event, 1> ev{};
    auto got = ctx.getevents(1, ev, reap_wait);
    for (int tries = 0; tries < 100 && !got && got.error() == std::errc::interrupted; ++tries)
      got = ctx.getevents(1, ev, reap_wait);
    if (!got) {
      out = got.error();
    } else if (*got == 0) {
      (void)ctx.cancel(cb);
      (void)ctx.getevents(1, ev, reap_wait);
      out = make_error_code(ETIMEDOUT);
    } else if (ev[0].res < 0) {
      out = result(ev[0]).error();
    } else if (!any(poll_events(ev[0]) & PollEvents::in)) {
      out = make_error_code(EPROTO);
    }
  }
  ::close(efd);
  return out;
}

// One poll of fd for `events`: whether it was accepted, and whether it completed inside
// io_submit (the file was ready, or has no poll method). A poll still waiting is cancelled
// and its completion reaped; the fd is never read.
struct PollTry {
  std::error_code error;  // the submit error; empty when accepted
  bool at_once = false;   // accepted and already completed
};

[[nodiscard]] PollTry try_poll(Context& ctx, int fd, PollEvents events) noexcept {
  iocb cb = make_poll(fd, events);
  iocb* p = &cb;
  auto n = ctx.submit(std::span<iocb* const>(&p, 1));
  if (!n) return {n.error(), false};
  if (*n != 1) return {make_error_code(EAGAIN), false};
  std::array<io_event, 1> ev{};
  // A poll that is satisfied at submit completes inside io_submit: its event is there now.
  if (auto got = ctx.getevents(1, ev, std::chrono::nanoseconds(0)); got && *got == 1) return {{}, true};
  // Waiting: cancel it (accepted with EINPROGRESS; invalid_argument if it completed
  // meanwhile) and reap the completion either way. A completion that never comes is left
  // to the Context's destructor, whose io_destroy cancels it.
  (void)ctx.cancel(cb);
  for (int tries = 0; tries < 100; ++tries) {
    auto got = ctx.getevents(1, ev, reap_wait);
    if (got || got.error() != std::errc::interrupted) break;
  }
  return {{}, false};
}

// Files without a poll method of their own: the kernel answers every poll of them with
// POLLIN | POLLOUT at once (DEFAULT_POLLMASK). Terminals are character devices too, but
// their poll waits on two queues.
[[nodiscard]] bool may_lack_poll_method(int fd) noexcept {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return false;
  if (S_ISCHR(st.st_mode)) {
    termios t{};
    return ::tcgetattr(fd, &t) != 0;
  }
  return S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISDIR(st.st_mode);
}

// FdCapabilities::poll and poll_always_ready. First a poll for no event of its own (the
// kernel adds POLLERR | POLLHUP): it waits on any file the kernel can wait on, whatever is
// ready. The kernel refuses it with EINVAL when the file's poll uses two wait queues
// (terminals, a FIFO opened O_RDWR) and when the file has no poll method and so nothing
// to wait on. Only in the latter case, a poll for the access mode's events completes at
// once: always ready.
void probe_poll_fd(Context& ctx, int fd, PollEvents access_events, FdCapabilities& caps) noexcept {
  const PollTry waiting = try_poll(ctx, fd, PollEvents::none);
  caps.poll = waiting.error;
  if (waiting.error != std::errc::invalid_argument || !may_lack_poll_method(fd)) return;
  const PollTry ready = try_poll(ctx, fd, access_events);
  if (!ready.error && ready.at_once) {
    caps.poll = {};
    caps.poll_always_ready = true;
  }
}

void append_line(std::string& s, const char* what, const std::error_code& ec) {
  s += what;
  s += ": ";
  s += ec ? ec.message() : std::string("ok");
  s += '\n';
}

}  // namespace

Capabilities probe() noexcept {
  Capabilities caps;
  auto ctx = Context::create(4, ReapMode::automatic);
  if (!ctx) {
    caps.setup = caps.pgetevents = caps.poll = ctx.error();
    return caps;
  }
  caps.pgetevents = probe_pgetevents(*ctx);
  bool ring_seen = false;
  caps.poll = probe_poll(*ctx, ring_seen);
  caps.ring_reaping = ctx->ring_reaping() && ring_seen;
  if (auto d = ctx->destroy(); !d) caps.setup = d.error();
  return caps;
}

Result<FdCapabilities> probe_fd(int fd) noexcept {
  FdCapabilities caps;
  const int fl = ::fcntl(fd, F_GETFL);  // NOLINT(cppcoreguidelines-pro-type-vararg): C interface
  if (fl < 0) {
    const int err = errno;
    return fail(err);
  }
  caps.o_direct = (fl & O_DIRECT) != 0;

  struct statx sx {};
  if (::statx(fd, "", AT_EMPTY_PATH, statx_dioalign | STATX_TYPE, &sx) == 0) {
    if ((sx.stx_mask & statx_dioalign) != 0) {
      const DioAlign d = dio_fields(sx);
      caps.dio_mem_align = d.mem;
      caps.dio_offset_align = d.offset;
    } else if (S_ISBLK(sx.stx_mode)) {
      int lbs = 0;
      // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): C interface
      if (::ioctl(fd, blk_ssz_get, &lbs) == 0 && lbs > 0) {
        caps.dio_mem_align = caps.dio_offset_align = static_cast<std::uint32_t>(lbs);
      }
    }
  }  // statx refused (old kernel, seccomp): alignment stays unknown

  auto ctx = Context::create(4, ReapMode::syscall);
  if (!ctx) {
    caps.setup = caps.nowait_read = caps.ioprio_best_effort = caps.ioprio_realtime = caps.poll = ctx.error();
    return caps;
  }
  // 0-byte reads at offset 0 into an aligned buffer (satisfies any O_DIRECT alignment).
  alignas(4096) static std::array<std::byte, 1> probe_buf{};
  const std::span<std::byte> none(probe_buf.data(), std::size_t{0});

  iocb nowait = make_pread(fd, none, 0);
  set_rw_flags(nowait, Rwf::nowait);
  caps.nowait_read = submit_and_reap(*ctx, nowait);

  iocb be = make_pread(fd, none, 0);
  set_priority(be, IoprioClass::best_effort, 4);
  caps.ioprio_best_effort = submit_and_reap(*ctx, be);

  iocb rt = make_pread(fd, none, 0);
  set_priority(rt, IoprioClass::realtime, 4);
  caps.ioprio_realtime = submit_and_reap(*ctx, rt);

  const int mode = fl & O_ACCMODE;
  PollEvents access_events = PollEvents::in;
  if (mode == O_WRONLY) access_events = PollEvents::out;
  if (mode == O_RDWR) access_events = PollEvents::in | PollEvents::out;
  probe_poll_fd(*ctx, fd, access_events, caps);
  return caps;
}

std::string describe(const Capabilities& caps) {
  std::string s;
  append_line(s, "io_setup", caps.setup);
  append_line(s, "io_pgetevents", caps.pgetevents);
  append_line(s, "IOCB_CMD_POLL", caps.poll);
  s += "ring reaping: ";
  s += caps.ring_reaping ? "yes\n" : "no\n";
  return s;
}

std::string describe(const FdCapabilities& caps) {
  std::string s;
  s += "O_DIRECT: ";
  s += caps.o_direct ? "set\n" : "not set\n";
  s += "O_DIRECT alignment: ";
  if (!caps.dio_mem_align || !caps.dio_offset_align) {
    s += "unknown\n";
  } else if (*caps.dio_mem_align == 0 || *caps.dio_offset_align == 0) {
    s += "not supported\n";
  } else {
    s += "memory " + std::to_string(*caps.dio_mem_align) + ", offset " +
         std::to_string(*caps.dio_offset_align) + "\n";
  }
  append_line(s, "RWF_NOWAIT read", caps.nowait_read);
  append_line(s, "IOCB_FLAG_IOPRIO best-effort", caps.ioprio_best_effort);
  append_line(s, "IOCB_FLAG_IOPRIO realtime", caps.ioprio_realtime);
  if (caps.poll_always_ready && !caps.poll) {
    s += "IOCB_CMD_POLL: always ready (never waits)\n";
  } else {
    append_line(s, "IOCB_CMD_POLL", caps.poll);
  }
  if (caps.setup) append_line(s, "io_setup", caps.setup);
  return s;
}

}  // namespace aio
