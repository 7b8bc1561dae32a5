// aiopp — nowait.hpp: telling a would-block RWF_NOWAIT completion apart, and resubmitting.
//
// A read/write with RWF_NOWAIT (aio::Rwf::nowait) never blocks the submitter or the
// kernel's AIO path: when it would have to wait (uncached file data, a block allocation,
// a busy inode lock, a full device queue), the kernel fails it with EAGAIN instead.
// Measured on Linux 6.18 / ext4: a RWF_NOWAIT read of uncached data is accepted by
// io_submit and *completes* with res == -EAGAIN (it is not refused at submit); a file
// system without FMODE_NOWAIT support (tmpfs, /dev/shm) refuses the request at submit with
// operation_not_supported instead. An EAGAIN *from io_submit* means the ring is full, not
// would-block: reap and resubmit the same iocb.
//
//     if (aio::would_block(ev, cb)) {           // data not in cache: go the blocking way
//       cb = aio::without_nowait(cb);           // same request, RWF_NOWAIT cleared
//       blocking_ctx.submit(...);               // e.g. from a thread allowed to block
//     }
//
// Every function is noexcept, allocation-free and touches only its arguments.
#pragma once

#include <linux/aio_abi.h>

#include <cerrno>

#include "aio/flags.hpp"
#include "aio/iocb.hpp"

namespace aio {

/// True when `cb` is a read or write (PREAD, PWRITE, PREADV, PWRITEV) carrying RWF_NOWAIT.
[[nodiscard]] constexpr bool is_nowait(const iocb& cb) noexcept {
  const bool rw = cb.aio_lio_opcode == IOCB_CMD_PREAD || cb.aio_lio_opcode == IOCB_CMD_PWRITE ||
                  cb.aio_lio_opcode == IOCB_CMD_PREADV || cb.aio_lio_opcode == IOCB_CMD_PWRITEV;
  return rw && any(rw_flags(cb) & Rwf::nowait);
}

/// True when `ev` is the completion of `cb` (the caller vouches for the pairing) and says
/// "would block": res == -EAGAIN on a RWF_NOWAIT read/write. Resubmit without_nowait(cb)
/// to do the I/O the blocking way. False for every other result, including -EAGAIN on a
/// request without RWF_NOWAIT (then it is a real error of that request).
[[nodiscard]] constexpr bool would_block(const io_event& ev, const iocb& cb) noexcept {
  return ev.res == -EAGAIN && is_nowait(cb);
}

/// would_block(ev, *request_of(ev)): the iocb passed to submit must still be alive.
/// False if io_event::obj is null.
[[nodiscard]] inline bool would_block(const io_event& ev) noexcept {
  const iocb* cb = request_of(ev);
  return cb != nullptr && would_block(ev, *cb);
}

/// A copy of `cb` with RWF_NOWAIT cleared and everything else (buffer, offset, user data,
/// eventfd, priority, other RWF_* flags) unchanged, ready to be resubmitted.
[[nodiscard]] constexpr iocb without_nowait(iocb cb) noexcept {
  cb.aio_rw_flags = static_cast<int>(rw_flags(cb) & ~Rwf::nowait);
  return cb;
}

}  // namespace aio
