// aiopp — flags.hpp: typed per-request RWF_* flags and poll event masks.
//
// The raw-integer builders in iocb.hpp (set_rw_flags(iocb&, int), make_poll(int, short))
// stay; these overloads only make the integers optional:
//
//     auto cb = aio::make_pread(fd, buf, 0);
//     aio::set_rw_flags(cb, aio::Rwf::nowait | aio::Rwf::hipri);
//     auto p = aio::make_poll(sock, aio::PollEvents::in | aio::PollEvents::rdhup);
//
// The enumerators have the kernel's values (static_asserted against the libc macros), so
// a value converts losslessly with std::to_underlying() / static_cast. Every function here
// is constexpr or inline, noexcept, and touches nothing but its arguments (thread-safe).
// I/O priorities are in iocb.hpp (IoprioClass, ioprio_value(), set_priority()).
#pragma once

#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/uio.h>

#include <cstdint>

#include "aio/iocb.hpp"

namespace aio {

/// Per-request RWF_* flags for read/write requests (iocb::aio_rw_flags, Linux >= 4.13).
enum class Rwf : int {
  none = 0,
  hipri = 0x01,   ///< RWF_HIPRI: polled I/O (needs a polling-capable O_DIRECT queue)
  dsync = 0x02,   ///< RWF_DSYNC: this write is O_DSYNC
  sync = 0x04,    ///< RWF_SYNC: this write is O_SYNC
  nowait = 0x08,  ///< RWF_NOWAIT: fail with -EAGAIN instead of blocking (see nowait.hpp)
  append = 0x10,  ///< RWF_APPEND: this write appends (offset ignored), Linux >= 4.16
};

#ifdef RWF_HIPRI
static_assert(static_cast<int>(Rwf::hipri) == RWF_HIPRI);
static_assert(static_cast<int>(Rwf::dsync) == RWF_DSYNC);
static_assert(static_cast<int>(Rwf::sync) == RWF_SYNC);
static_assert(static_cast<int>(Rwf::nowait) == RWF_NOWAIT);
#endif
#ifdef RWF_APPEND
static_assert(static_cast<int>(Rwf::append) == RWF_APPEND);
#endif

[[nodiscard]] constexpr Rwf operator|(Rwf a, Rwf b) noexcept {
  return static_cast<Rwf>(static_cast<int>(a) | static_cast<int>(b));
}
[[nodiscard]] constexpr Rwf operator&(Rwf a, Rwf b) noexcept {
  return static_cast<Rwf>(static_cast<int>(a) & static_cast<int>(b));
}
[[nodiscard]] constexpr Rwf operator~(Rwf a) noexcept {
  return static_cast<Rwf>(~static_cast<int>(a));  // keeps flags newer than this enum
}
constexpr Rwf& operator|=(Rwf& a, Rwf b) noexcept { return a = a | b; }
constexpr Rwf& operator&=(Rwf& a, Rwf b) noexcept { return a = a & b; }
/// True when any flag of `f` is set.
[[nodiscard]] constexpr bool any(Rwf f) noexcept { return f != Rwf::none; }

/// Replaces the request's RWF_* flags with `f` (typed form of set_rw_flags(iocb&, int)).
/// Only read/write requests accept flags: FSYNC/FDSYNC/POLL with any flag fail with EINVAL
/// at submit; a flag this kernel does not know fails with EOPNOTSUPP.
inline iocb& set_rw_flags(iocb& cb, Rwf f) noexcept {
  cb.aio_rw_flags = static_cast<int>(f);
  return cb;
}

/// Adds `f` to the request's RWF_* flags, keeping the others.
inline iocb& add_rw_flags(iocb& cb, Rwf f) noexcept {
  cb.aio_rw_flags |= static_cast<int>(f);
  return cb;
}

/// The request's RWF_* flags.
[[nodiscard]] constexpr Rwf rw_flags(const iocb& cb) noexcept { return static_cast<Rwf>(cb.aio_rw_flags); }

/// Poll event bits (the 16-bit mask IOCB_CMD_POLL takes, and returns in io_event::res).
enum class PollEvents : std::uint16_t {
  none = 0,
  in = 0x001,      ///< POLLIN
  pri = 0x002,     ///< POLLPRI
  out = 0x004,     ///< POLLOUT
  err = 0x008,     ///< POLLERR (always reported; need not be asked for)
  hup = 0x010,     ///< POLLHUP (always reported; need not be asked for)
  nval = 0x020,    ///< POLLNVAL
  rdnorm = 0x040,  ///< POLLRDNORM
  rdband = 0x080,  ///< POLLRDBAND
  wrnorm = 0x100,  ///< POLLWRNORM
  wrband = 0x200,  ///< POLLWRBAND
  msg = 0x400,     ///< POLLMSG
  rdhup = 0x2000,  ///< POLLRDHUP (peer closed its writing half)
};

static_assert(static_cast<int>(PollEvents::in) == POLLIN);
static_assert(static_cast<int>(PollEvents::pri) == POLLPRI);
static_assert(static_cast<int>(PollEvents::out) == POLLOUT);
static_assert(static_cast<int>(PollEvents::err) == POLLERR);
static_assert(static_cast<int>(PollEvents::hup) == POLLHUP);
static_assert(static_cast<int>(PollEvents::nval) == POLLNVAL);
#ifdef POLLRDNORM
static_assert(static_cast<int>(PollEvents::rdnorm) == POLLRDNORM);
static_assert(static_cast<int>(PollEvents::rdband) == POLLRDBAND);
static_assert(static_cast<int>(PollEvents::wrnorm) == POLLWRNORM);
static_assert(static_cast<int>(PollEvents::wrband) == POLLWRBAND);
#endif
#ifdef POLLMSG
static_assert(static_cast<int>(PollEvents::msg) == POLLMSG);
#endif
#ifdef POLLRDHUP
static_assert(static_cast<int>(PollEvents::rdhup) == POLLRDHUP);
#endif

[[nodiscard]] constexpr PollEvents operator|(PollEvents a, PollEvents b) noexcept {
  return static_cast<PollEvents>(static_cast<std::uint16_t>(static_cast<unsigned>(a) | static_cast<unsigned>(b)));
}
[[nodiscard]] constexpr PollEvents operator&(PollEvents a, PollEvents b) noexcept {
  return static_cast<PollEvents>(static_cast<std::uint16_t>(static_cast<unsigned>(a) & static_cast<unsigned>(b)));
}
[[nodiscard]] constexpr PollEvents operator~(PollEvents a) noexcept {
  return static_cast<PollEvents>(static_cast<std::uint16_t>(~static_cast<unsigned>(a) & 0xffffU));
}
constexpr PollEvents& operator|=(PollEvents& a, PollEvents b) noexcept { return a = a | b; }
constexpr PollEvents& operator&=(PollEvents& a, PollEvents b) noexcept { return a = a & b; }
/// True when any bit of `e` is set.
[[nodiscard]] constexpr bool any(PollEvents e) noexcept { return e != PollEvents::none; }

/// IOCB_CMD_POLL for `events` (typed form of make_poll(int, short)).
[[nodiscard]] inline iocb make_poll(int fd, PollEvents events) noexcept {
  return make_poll(fd, static_cast<short>(static_cast<std::uint16_t>(events)));
}

/// The ready mask of a completed poll (io_event::res). A failed poll (res < 0) has no mask,
/// and a cancelled one completes with an empty mask: both give PollEvents::none.
[[nodiscard]] constexpr PollEvents poll_events(const io_event& ev) noexcept {
  if (ev.res < 0) return PollEvents::none;
  return static_cast<PollEvents>(static_cast<std::uint16_t>(static_cast<std::uint64_t>(ev.res) & 0xffffU));
}

}  // namespace aio
