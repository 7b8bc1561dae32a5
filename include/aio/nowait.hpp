// aiopp — nowait.hpp: telling a would-block RWF_NOWAIT completion apart, and resubmitting.
//
// A read/write with RWF_NOWAIT (aio::Rwf::nowait) does not wait inside the kernel: where
// it would have to (uncached file data, a block allocation, a busy inode lock, a full
// device queue), it fails with EAGAIN instead — in the completion (io_event::res), or, on
// a file without non-blocking support, at submit with operation_not_supported.
//
//     if (aio::would_block(ev, cb)) {           // e.g. data not in the page cache
//       cb = aio::without_nowait(cb);           // the same request, RWF_NOWAIT cleared
//       blocking_ctx.submit(...);               // from a thread allowed to block
//     }
//
// Errors: nothing here fails, throws or allocates.
// Thread safety: every function touches only its arguments.
// Notes: EAGAIN from io_submit itself means the completion ring is full, not would-block:
// reap and resubmit the same iocb. aio::probe_fd() says whether a file takes RWF_NOWAIT.
#pragma once

#include <linux/aio_abi.h>

#include <cerrno>

#include "aio/iocb.hpp"

namespace aio {

/// Returns: true when `cb` is a read or write (PREAD, PWRITE, PREADV, PWRITEV) carrying
/// RWF_NOWAIT.
[[nodiscard]] constexpr bool is_nowait(const iocb& cb) noexcept {
  const bool rw = cb.aio_lio_opcode == IOCB_CMD_PREAD || cb.aio_lio_opcode == IOCB_CMD_PWRITE ||
                  cb.aio_lio_opcode == IOCB_CMD_PREADV || cb.aio_lio_opcode == IOCB_CMD_PWRITEV;
  return rw && any(rw_flags(cb) & Rwf::nowait);
}

/// Returns: true when `ev`, the completion of `cb` (the caller vouches for the pairing),
/// says "would block": res == -EAGAIN on a RWF_NOWAIT read/write. False for every other
/// result, including -EAGAIN on a request without RWF_NOWAIT (a real error of that request).
/// Notes: resubmit without_nowait(cb) to do the I/O the blocking way.
[[nodiscard]] constexpr bool would_block(const io_event& ev, const iocb& cb) noexcept {
  return ev.res == -EAGAIN && is_nowait(cb);
}

/// Returns: would_block(ev, *request_of(ev)); false when io_event::obj is null.
/// Notes: the iocb passed to submit must still be alive.
[[nodiscard]] inline bool would_block(const io_event& ev) noexcept {
  const iocb* cb = request_of(ev);
  return cb != nullptr && would_block(ev, *cb);
}

/// Returns: a copy of `cb` with RWF_NOWAIT cleared and everything else (buffer, offset,
/// user data, eventfd, priority, other RWF_* flags) unchanged, ready to be resubmitted.
[[nodiscard]] constexpr iocb without_nowait(iocb cb) noexcept {
  cb.aio_rw_flags = static_cast<int>(rw_flags(cb) & ~Rwf::nowait);
  return cb;
}

}  // namespace aio
