// aiopp — iocb.hpp: builders for the kernel's own `struct iocb`, and the way back from
// a completion (`struct io_event`) to its result, request and user data.
//
// The types are the kernel ABI types from <linux/aio_abi.h>, not wrappers: an `iocb`
// built here can be handed to any other AIO code and vice versa. Every builder returns a
// fully zero-initialised iocb with only the named fields set, because the kernel rejects
// non-zero reserved fields (EINVAL) and, for FSYNC/FDSYNC/POLL, non-zero buf/offset/nbytes.
//
// Lifetime: the kernel reads the iocb itself only during io_submit, but the *buffers* it
// points to (and the iovec array for PREADV/PWRITEV, which the kernel copies at submit
// time) must stay valid until the completion is reaped. The iocb's address comes back in
// io_event::obj, so keep the iocb alive too if you use request_of().
#pragma once

#include <linux/aio_abi.h>
#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <span>

#include "aio/result.hpp"

namespace aio {

// ---- ABI checks: we hand these structs straight to the kernel. ----------------------
static_assert(sizeof(::iocb) == 64, "struct iocb is 64 bytes in the kernel ABI");
static_assert(offsetof(::iocb, aio_data) == 0);
static_assert(offsetof(::iocb, aio_lio_opcode) == 16);
static_assert(offsetof(::iocb, aio_fildes) == 20);
static_assert(offsetof(::iocb, aio_buf) == 24);
static_assert(offsetof(::iocb, aio_nbytes) == 32);
static_assert(offsetof(::iocb, aio_offset) == 40);
static_assert(offsetof(::iocb, aio_flags) == 56);
static_assert(offsetof(::iocb, aio_resfd) == 60);
static_assert(sizeof(::io_event) == 32, "struct io_event is 32 bytes in the kernel ABI");
static_assert(offsetof(::io_event, data) == 0);
static_assert(offsetof(::io_event, obj) == 8);
static_assert(offsetof(::io_event, res) == 16);
static_assert(offsetof(::io_event, res2) == 24);
static_assert(sizeof(void*) <= sizeof(std::uint64_t), "pointers must fit in aio_data");

namespace detail {
[[nodiscard]] inline std::uint64_t to_u64(const void* p) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the kernel ABI carries addresses as u64
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}
[[nodiscard]] inline iocb make_rw(std::uint16_t opcode, int fd, const void* buf,
                                  std::uint64_t nbytes, std::int64_t offset) noexcept {
  iocb cb{};
  cb.aio_lio_opcode = opcode;
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_buf = to_u64(buf);
  cb.aio_nbytes = nbytes;
  cb.aio_offset = offset;
  return cb;
}
}  // namespace detail

// ---- Builders -------------------------------------------------------------------------

/// IOCB_CMD_PREAD: read up to buf.size() bytes at `offset` into `buf`.
[[nodiscard]] inline iocb make_pread(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PREAD, fd, buf.data(), buf.size(), offset);
}

/// IOCB_CMD_PWRITE: write buf at `offset`.
[[nodiscard]] inline iocb make_pwrite(int fd, std::span<const std::byte> buf,
                                      std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PWRITE, fd, buf.data(), buf.size(), offset);
}

/// IOCB_CMD_PREADV: scatter read; aio_buf points at the iovec array, aio_nbytes is its count.
[[nodiscard]] inline iocb make_preadv(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PREADV, fd, iov.data(), iov.size(), offset);
}

/// IOCB_CMD_PWRITEV: gather write; aio_buf points at the iovec array, aio_nbytes is its count.
[[nodiscard]] inline iocb make_pwritev(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PWRITEV, fd, iov.data(), iov.size(), offset);
}

/// IOCB_CMD_FSYNC: fsync(fd) asynchronously.
[[nodiscard]] inline iocb make_fsync(int fd) noexcept {
  return detail::make_rw(IOCB_CMD_FSYNC, fd, nullptr, 0, 0);
}

/// IOCB_CMD_FDSYNC: fdatasync(fd) asynchronously.
[[nodiscard]] inline iocb make_fdsync(int fd) noexcept {
  return detail::make_rw(IOCB_CMD_FDSYNC, fd, nullptr, 0, 0);
}

/// IOCB_CMD_POLL (Linux >= 4.18): one-shot poll for `events` (POLLIN, POLLOUT, ...).
/// The kernel takes the mask from aio_buf and always adds POLLERR|POLLHUP; the completion's
/// res is the ready mask. A poll is the only request io_cancel can cancel.
[[nodiscard]] inline iocb make_poll(int fd, short events) noexcept {
  iocb cb{};
  cb.aio_lio_opcode = IOCB_CMD_POLL;
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_buf = static_cast<std::uint16_t>(events);  // no sign extension: the kernel wants 16 bits
  return cb;
}

// ---- Modifiers (return the iocb so they chain: set_eventfd(set_user_data(cb, 7), efd)) ----

/// Opaque 64-bit value returned unchanged in io_event::data.
inline iocb& set_user_data(iocb& cb, std::uint64_t data) noexcept {
  cb.aio_data = data;
  return cb;
}

/// Pointer variant of set_user_data(); read it back with user_ptr<T>(event).
inline iocb& set_user_ptr(iocb& cb, const void* ptr) noexcept {
  cb.aio_data = detail::to_u64(ptr);
  return cb;
}

/// IOCB_FLAG_RESFD: the kernel adds 1 to eventfd `efd` for each completion of this request,
/// so completions can be waited for with poll/epoll (the event itself is still reaped from the
/// context).
inline iocb& set_eventfd(iocb& cb, int efd) noexcept {
  cb.aio_flags |= IOCB_FLAG_RESFD;
  cb.aio_resfd = static_cast<std::uint32_t>(efd);
  return cb;
}

/// Clears IOCB_FLAG_RESFD.
inline iocb& clear_eventfd(iocb& cb) noexcept {
  cb.aio_flags &= ~static_cast<std::uint32_t>(IOCB_FLAG_RESFD);
  cb.aio_resfd = 0;
  return cb;
}

/// Per-request RWF_* flags (RWF_NOWAIT, RWF_DSYNC, RWF_SYNC, RWF_HIPRI, RWF_APPEND) for
/// read/write requests (Linux >= 4.13). Unknown flags make the submit fail with EOPNOTSUPP
/// or EINVAL; FSYNC/FDSYNC/POLL with any flag fail with EINVAL.
inline iocb& set_rw_flags(iocb& cb, int rwf) noexcept {
  cb.aio_rw_flags = rwf;
  return cb;
}

/// I/O priority classes (the kernel's IOPRIO_CLASS_*).
enum class IoprioClass : std::uint16_t { none = 0, realtime = 1, best_effort = 2, idle = 3 };

/// The kernel's IOPRIO_PRIO_VALUE(class, level): class in the top 3 bits of 16.
[[nodiscard]] constexpr std::uint16_t ioprio_value(IoprioClass cls, unsigned level) noexcept {
  return static_cast<std::uint16_t>((static_cast<unsigned>(cls) << 13U) | (level & 0x1fffU));
}

/// IOCB_FLAG_IOPRIO: per-request I/O priority (Linux >= 4.18). The realtime class needs
/// CAP_SYS_ADMIN (EPERM at submit otherwise); levels run 0 (highest) to 7.
inline iocb& set_priority(iocb& cb, IoprioClass cls, unsigned level) noexcept {
  cb.aio_flags |= IOCB_FLAG_IOPRIO;
  cb.aio_reqprio = static_cast<std::int16_t>(ioprio_value(cls, level));
  return cb;
}

// ---- From a completion back to its request -------------------------------------------

/// res >= 0: the byte count (or, for a poll, the ready mask); res < 0: that errno.
[[nodiscard]] inline Result<std::size_t> result(const io_event& ev) noexcept {
  if (ev.res >= 0) return static_cast<std::size_t>(ev.res);
  // The kernel only ever reports -errno (1..4095); anything else is not an errno.
  const int err = ev.res >= -4095 ? static_cast<int>(-ev.res) : EIO;
  return fail(err);
}

/// The iocb this completion belongs to (io_event::obj is the address passed to submit).
[[nodiscard]] inline iocb* request_of(const io_event& ev) noexcept {
  // obj is that address (kernel ABI).
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  return reinterpret_cast<iocb*>(static_cast<std::uintptr_t>(ev.obj));
}

/// The request's user data, as set by set_user_data().
[[nodiscard]] inline std::uint64_t user_data(const io_event& ev) noexcept { return ev.data; }

/// The request's user data as a pointer, as set by set_user_ptr().
template <class T>
[[nodiscard]] inline T* user_ptr(const io_event& ev) noexcept {
  // set_user_ptr() stored it.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(ev.data));
}

}  // namespace aio
