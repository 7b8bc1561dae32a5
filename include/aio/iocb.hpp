// aiopp — iocb.hpp: building requests (the kernel's own `struct iocb`), their typed RWF_*
// flags and poll masks, reading a request back, and the way from a completion
// (`struct io_event`) to its result, request and user data.
//
//     std::vector<char> data = ...;
//     iocb cb = aio::make_pwrite(fd, data, /*offset=*/0);       // any contiguous buffer
//     aio::set_rw_flags(cb, aio::Rwf::dsync | aio::Rwf::nowait);
//     aio::set_user_ptr(cb, &request);
//     iocb p = aio::make_poll(sock, aio::PollEvents::in | aio::PollEvents::rdhup);
//     ...
//     Request* r = aio::user_ptr<Request>(ev);                  // from the completion
//     aio::Result<std::size_t> n = aio::result(ev);
//
// The types are the kernel ABI types from <linux/aio_abi.h>, not wrappers: an iocb built
// here can be handed to any other AIO code and vice versa. Every builder returns a fully
// zero-initialised iocb with only the named fields set (the kernel refuses non-zero
// reserved fields, and buf/offset/nbytes on FSYNC/FDSYNC/POLL, with EINVAL).
//
// Errors: nothing here fails, throws or allocates; a request's errors come from submit
// (the request is refused) or in io_event::res (see result()).
// Thread safety: every function touches only its arguments.
// Notes: the kernel reads the iocb itself (and the iovec array of PREADV/PWRITEV) only
// during io_submit, but the data buffers must stay valid until the completion is reaped.
// io_event::obj is the iocb's address, so keep the iocb alive too to use request_of().
// The typed flags and masks (Rwf, PollEvents) are the documented spelling; the int/short
// overloads are for C-style callers holding raw RWF_* / POLL* values. The enumerators have
// the kernel's values, so std::to_underlying() converts losslessly.
#pragma once

#include <linux/aio_abi.h>
#include <poll.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <ranges>
#include <span>
#include <type_traits>
#include <utility>

#include "aio/result.hpp"

namespace aio {

// ---- ABI checks: these structs go straight to the kernel. ------------------------------
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
static_assert(sizeof(void (*)()) <= sizeof(std::uint64_t), "function pointers must fit in aio_data");

// ---- Per-request RWF_* flags ------------------------------------------------------------

/// Per-request RWF_* flags of a read/write request (iocb::aio_rw_flags, Linux >= 4.13).
/// Notes: a flag the running kernel does not know, or one the file does not support, makes
/// the submit fail with operation_not_supported; FSYNC/FDSYNC/POLL with any flag fail with
/// invalid_argument.
enum class Rwf : int {
  none = 0,
  hipri = 0x01,      ///< RWF_HIPRI: polled completion (needs a polling-capable O_DIRECT queue)
  dsync = 0x02,      ///< RWF_DSYNC: this write is O_DSYNC
  sync = 0x04,       ///< RWF_SYNC: this write is O_SYNC
  nowait = 0x08,     ///< RWF_NOWAIT: fail with EAGAIN instead of blocking (see nowait.hpp)
  append = 0x10,     ///< RWF_APPEND (Linux >= 4.16): this write appends; the offset is ignored
  noappend = 0x20,   ///< RWF_NOAPPEND (Linux >= 6.9): this write goes to its offset even on an
                     ///< O_APPEND fd; with `append` too: invalid_argument at submit
  atomic = 0x40,     ///< RWF_ATOMIC (Linux >= 6.11): torn-write protection for a write; needs
                     ///< O_DIRECT on a file system and device that do atomic writes
                     ///< (statx STATX_WRITE_ATOMIC), else, and on reads, operation_not_supported
  dontcache = 0x80,  ///< RWF_DONTCACHE (Linux >= 6.14): buffered I/O that drops the page cache
                     ///< it brought in; operation_not_supported where the fs lacks it (tmpfs)
  nosignal = 0x100,  ///< RWF_NOSIGNAL (Linux >= 6.18): a write to a pipe or socket with no
                     ///< reader fails with EPIPE without raising SIGPIPE
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
#ifdef RWF_NOAPPEND
static_assert(static_cast<int>(Rwf::noappend) == RWF_NOAPPEND);
#endif
#ifdef RWF_ATOMIC
static_assert(static_cast<int>(Rwf::atomic) == RWF_ATOMIC);
#endif
#ifdef RWF_DONTCACHE
static_assert(static_cast<int>(Rwf::dontcache) == RWF_DONTCACHE);
#endif
#ifdef RWF_NOSIGNAL
static_assert(static_cast<int>(Rwf::nosignal) == RWF_NOSIGNAL);
#endif

[[nodiscard]] constexpr Rwf operator|(Rwf a, Rwf b) noexcept {
  return static_cast<Rwf>(static_cast<int>(a) | static_cast<int>(b));
}
[[nodiscard]] constexpr Rwf operator&(Rwf a, Rwf b) noexcept {
  return static_cast<Rwf>(static_cast<int>(a) & static_cast<int>(b));
}
/// Notes: keeps bits newer than this enum, so `f & ~Rwf::nowait` clears only RWF_NOWAIT.
[[nodiscard]] constexpr Rwf operator~(Rwf a) noexcept { return static_cast<Rwf>(~static_cast<int>(a)); }
constexpr Rwf& operator|=(Rwf& a, Rwf b) noexcept { return a = a | b; }
constexpr Rwf& operator&=(Rwf& a, Rwf b) noexcept { return a = a & b; }
/// Returns: true when any flag of `f` is set.
[[nodiscard]] constexpr bool any(Rwf f) noexcept { return f != Rwf::none; }

// ---- Poll event masks ------------------------------------------------------------------

/// Poll event bits: the 16-bit mask IOCB_CMD_POLL takes, and returns in io_event::res.
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
  rdhup = 0x2000,  ///< POLLRDHUP (the peer closed its writing half)
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
/// Returns: true when any bit of `e` is set.
[[nodiscard]] constexpr bool any(PollEvents e) noexcept { return e != PollEvents::none; }

// ---- Internals ---------------------------------------------------------------------------

namespace detail {
[[nodiscard]] inline std::uint64_t to_u64(const void* p) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the kernel ABI carries addresses as u64
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(p));
}
template <class T>
[[nodiscard]] inline T* from_u64(std::uint64_t v) noexcept {
  // The address a builder or set_user_ptr()/set_user_fn() stored.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  return reinterpret_cast<T*>(static_cast<std::uintptr_t>(v));
}
[[nodiscard]] inline iocb make_rw(std::uint16_t opcode, int fd, const void* buf, std::uint64_t nbytes,
                                  std::int64_t offset) noexcept {
  iocb cb{};
  cb.aio_lio_opcode = opcode;
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_buf = to_u64(buf);
  cb.aio_nbytes = nbytes;
  cb.aio_offset = offset;
  return cb;
}

template <class R>
using range_element_t = std::remove_reference_t<std::ranges::range_reference_t<R>>;

template <class C>
inline constexpr bool is_char_v =
    std::is_same_v<C, char> || std::is_same_v<C, wchar_t> || std::is_same_v<C, char8_t> ||
    std::is_same_v<C, char16_t> || std::is_same_v<C, char32_t>;

/// A const character array: what a string literal is (and it ends with a NUL).
template <class R>
concept const_char_array = std::is_bounded_array_v<std::remove_reference_t<R>> &&
                           std::is_const_v<std::remove_extent_t<std::remove_reference_t<R>>> &&
                           is_char_v<std::remove_cv_t<std::remove_extent_t<std::remove_reference_t<R>>>>;

/// A buffer a request can carry: contiguous, sized, trivially copyable elements, and alive
/// after the call (an lvalue, or a borrowed view such as std::span or std::string_view).
/// Ranges of iovec are left to make_preadv()/make_pwritev().
template <class R>
concept io_buffer = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                    std::ranges::borrowed_range<R> && std::is_trivially_copyable_v<range_element_t<R>> &&
                    !std::is_same_v<std::remove_cv_t<range_element_t<R>>, ::iovec>;

/// An io_buffer whose elements can be written: what a read fills.
template <class R>
concept writable_io_buffer = io_buffer<R> && !std::is_const_v<range_element_t<R>>;

/// A contiguous range that owns its elements, passed as an rvalue: a temporary whose
/// memory is gone before the kernel uses it.
template <class R>
concept temporary_owner = std::ranges::contiguous_range<R> && !std::ranges::borrowed_range<R>;

template <class R>
inline constexpr bool nothrow_buffer_v = noexcept(std::ranges::data(std::declval<R&>())) &&
                                         noexcept(std::ranges::size(std::declval<R&>()));

template <class R>
[[nodiscard]] constexpr std::uint64_t byte_size(R& r) noexcept(nothrow_buffer_v<R>) {
  return static_cast<std::uint64_t>(std::ranges::size(r)) * sizeof(std::ranges::range_value_t<R>);
}
}  // namespace detail

// ---- Builders ----------------------------------------------------------------------------

/// IOCB_CMD_PREAD: read up to buf.size() bytes at `offset` into `buf`.
[[nodiscard]] inline iocb make_pread(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PREAD, fd, buf.data(), buf.size(), offset);
}

/// IOCB_CMD_PREAD into any writable contiguous buffer: std::string, std::vector<T>,
/// std::array, a C array, std::span<T>, aio::AlignedBuffer... The byte count is
/// size() * sizeof(element).
/// Notes: the elements must be trivially copyable and not const. A range of iovec is
/// refused (that is make_preadv()), and so is an owning container passed as an rvalue.
template <detail::writable_io_buffer R>
[[nodiscard]] inline iocb make_pread(int fd, R&& buf, std::int64_t offset) noexcept(detail::nothrow_buffer_v<R>) {
  return detail::make_rw(IOCB_CMD_PREAD, fd, std::ranges::data(buf), detail::byte_size(buf), offset);
}

/// Refused: a temporary owning container (e.g. `make_pread(fd, std::string(n, 0), 0)`) is
/// destroyed before the kernel fills it.
template <detail::temporary_owner R>
iocb make_pread(int fd, R&& temporary_would_dangle, std::int64_t offset) = delete;

/// IOCB_CMD_PREAD of `len` bytes into `buf`, for C-style callers.
[[nodiscard]] inline iocb make_pread(int fd, void* buf, std::size_t len, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PREAD, fd, buf, len, offset);
}

/// IOCB_CMD_PWRITE: write `buf` at `offset`.
[[nodiscard]] inline iocb make_pwrite(int fd, std::span<const std::byte> buf, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PWRITE, fd, buf.data(), buf.size(), offset);
}

/// IOCB_CMD_PWRITE of any contiguous buffer of trivially copyable elements, const or not
/// (the forms make_pread() takes, plus std::string_view and const ranges); the byte count
/// is size() * sizeof(element).
/// Notes: std::string_view("text") writes the characters only; a string literal itself, a
/// range of iovec and an owning container passed as an rvalue are refused.
template <detail::io_buffer R>
  requires(!detail::const_char_array<R>)
[[nodiscard]] inline iocb make_pwrite(int fd, R&& buf, std::int64_t offset) noexcept(detail::nothrow_buffer_v<R>) {
  return detail::make_rw(IOCB_CMD_PWRITE, fd, std::ranges::data(buf), detail::byte_size(buf), offset);
}

/// Refused: a string literal, or any const character array, would write its terminating
/// NUL too. Write std::string_view("text") (the characters only) or a std::span.
template <class R>
  requires detail::const_char_array<R>
iocb make_pwrite(int fd, R&& string_literal_would_write_its_nul, std::int64_t offset) = delete;

/// Refused: a temporary owning container is destroyed before the kernel reads it.
template <detail::temporary_owner R>
iocb make_pwrite(int fd, R&& temporary_would_dangle, std::int64_t offset) = delete;

/// IOCB_CMD_PWRITE of `len` bytes from `buf`, for C-style callers.
[[nodiscard]] inline iocb make_pwrite(int fd, const void* buf, std::size_t len, std::int64_t offset) noexcept {
  return detail::make_rw(IOCB_CMD_PWRITE, fd, buf, len, offset);
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
[[nodiscard]] inline iocb make_fsync(int fd) noexcept { return detail::make_rw(IOCB_CMD_FSYNC, fd, nullptr, 0, 0); }

/// IOCB_CMD_FDSYNC: fdatasync(fd) asynchronously.
[[nodiscard]] inline iocb make_fdsync(int fd) noexcept { return detail::make_rw(IOCB_CMD_FDSYNC, fd, nullptr, 0, 0); }

/// IOCB_CMD_POLL (Linux >= 4.18): one-shot poll of `fd` for `events`.
/// Notes: the kernel always adds POLLERR|POLLHUP; the completion's res is the ready mask
/// (poll_events()). A poll is the only request io_cancel can cancel.
[[nodiscard]] inline iocb make_poll(int fd, PollEvents events) noexcept {
  iocb cb{};
  cb.aio_lio_opcode = IOCB_CMD_POLL;
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_buf = static_cast<std::uint16_t>(events);
  return cb;
}

/// IOCB_CMD_POLL with a raw POLL* mask, for C-style callers (the typed form is
/// make_poll(int, PollEvents)).
/// Notes: only the low 16 bits are used, without sign extension.
[[nodiscard]] inline iocb make_poll(int fd, short events) noexcept {
  return make_poll(fd, static_cast<PollEvents>(static_cast<std::uint16_t>(events)));
}

// ---- Modifiers (return the iocb so they chain: set_eventfd(set_user_data(cb, 7), efd)) ----

/// Sets the opaque 64-bit value the completion returns in io_event::data.
inline iocb& set_user_data(iocb& cb, std::uint64_t data) noexcept {
  cb.aio_data = data;
  return cb;
}

/// Stores a pointer as the user data; read it back with user_ptr<T>().
/// Notes: const is not recorded: read a `const T*` back as user_ptr<const T>().
inline iocb& set_user_ptr(iocb& cb, const void* ptr) noexcept {
  cb.aio_data = detail::to_u64(ptr);
  return cb;
}

/// Stores a function pointer as the user data; read it back with user_fn<F>().
/// Notes: a capture-less lambda converts with a unary + (`set_user_fn(cb, +[](int) {})`)
/// or with F named (`set_user_fn<void(int)>(cb, lambda)`).
template <class F>
  requires std::is_function_v<F>
inline iocb& set_user_fn(iocb& cb, F* fn) noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): function pointers fit in u64 on Linux
  cb.aio_data = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(fn));
  return cb;
}

/// IOCB_FLAG_RESFD: the kernel adds 1 to eventfd `efd` for each completion of this request,
/// so completions can be waited for with poll/epoll (the event is still reaped from the
/// context).
/// Notes: an `efd` that is not an eventfd makes the submit fail with invalid_argument.
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

/// Replaces the request's RWF_* flags with `f` (see Rwf for what the kernel refuses).
inline iocb& set_rw_flags(iocb& cb, Rwf f) noexcept {
  cb.aio_rw_flags = static_cast<int>(f);
  return cb;
}

/// Replaces the request's RWF_* flags with raw RWF_* bits, for C-style callers (the typed
/// form is set_rw_flags(iocb&, Rwf)).
inline iocb& set_rw_flags(iocb& cb, int rwf) noexcept {
  cb.aio_rw_flags = rwf;
  return cb;
}

/// Adds `f` to the request's RWF_* flags, keeping the others.
inline iocb& add_rw_flags(iocb& cb, Rwf f) noexcept {
  cb.aio_rw_flags |= static_cast<int>(f);
  return cb;
}

/// I/O priority classes (the kernel's IOPRIO_CLASS_*).
enum class IoprioClass : std::uint16_t { none = 0, realtime = 1, best_effort = 2, idle = 3 };

/// Returns: the kernel's IOPRIO_PRIO_VALUE(cls, level): the class in the top 3 of 16 bits.
[[nodiscard]] constexpr std::uint16_t ioprio_value(IoprioClass cls, unsigned level) noexcept {
  return static_cast<std::uint16_t>((static_cast<unsigned>(cls) << 13U) | (level & 0x1fffU));
}

/// IOCB_FLAG_IOPRIO: per-request I/O priority (Linux >= 4.18); levels run 0 (highest) to 7.
/// Notes: the realtime class needs CAP_SYS_ADMIN or CAP_SYS_NICE, else the submit fails
/// with operation_not_permitted.
inline iocb& set_priority(iocb& cb, IoprioClass cls, unsigned level) noexcept {
  cb.aio_flags |= IOCB_FLAG_IOPRIO;
  cb.aio_reqprio = static_cast<std::int16_t>(ioprio_value(cls, level));
  return cb;
}

// ---- Reading a request back ---------------------------------------------------------------

/// The kernel's IOCB_CMD_* request kinds.
enum class Opcode : std::uint16_t {
  pread = IOCB_CMD_PREAD,
  pwrite = IOCB_CMD_PWRITE,
  fsync = IOCB_CMD_FSYNC,
  fdsync = IOCB_CMD_FDSYNC,
  poll = IOCB_CMD_POLL,
  noop = IOCB_CMD_NOOP,
  preadv = IOCB_CMD_PREADV,
  pwritev = IOCB_CMD_PWRITEV,
};

/// Returns: the request's kind (aio_lio_opcode; not range-checked).
[[nodiscard]] constexpr Opcode opcode_of(const iocb& cb) noexcept { return static_cast<Opcode>(cb.aio_lio_opcode); }

/// Returns: the request's file descriptor (aio_fildes).
[[nodiscard]] constexpr int fd_of(const iocb& cb) noexcept { return static_cast<int>(cb.aio_fildes); }

/// Returns: the request's file offset (aio_offset).
[[nodiscard]] constexpr std::int64_t offset_of(const iocb& cb) noexcept { return cb.aio_offset; }

/// Returns: the data buffer of a PREAD or PWRITE (aio_buf, aio_nbytes bytes); an empty
/// span for every other request (PREADV/PWRITEV: see iovecs_of()) or a null aio_buf.
/// Notes: the iocb does not record constness: do not write through the buffer of a
/// PWRITE built from const data.
[[nodiscard]] inline std::span<std::byte> buffer_of(const iocb& cb) noexcept {
  const bool rw = cb.aio_lio_opcode == IOCB_CMD_PREAD || cb.aio_lio_opcode == IOCB_CMD_PWRITE;
  if (!rw || cb.aio_buf == 0) return {};
  return {detail::from_u64<std::byte>(cb.aio_buf), static_cast<std::size_t>(cb.aio_nbytes)};
}

/// Returns: the iovec array of a PREADV or PWRITEV (aio_buf, aio_nbytes entries); an empty
/// span for every other request or a null aio_buf.
[[nodiscard]] inline std::span<const iovec> iovecs_of(const iocb& cb) noexcept {
  const bool rwv = cb.aio_lio_opcode == IOCB_CMD_PREADV || cb.aio_lio_opcode == IOCB_CMD_PWRITEV;
  if (!rwv || cb.aio_buf == 0) return {};
  return {detail::from_u64<const iovec>(cb.aio_buf), static_cast<std::size_t>(cb.aio_nbytes)};
}

/// Returns: the request's RWF_* flags.
[[nodiscard]] constexpr Rwf rw_flags(const iocb& cb) noexcept { return static_cast<Rwf>(cb.aio_rw_flags); }

/// Returns: the request's user data (aio_data), as set by set_user_data().
[[nodiscard]] constexpr std::uint64_t user_data(const iocb& cb) noexcept { return cb.aio_data; }

/// Returns: the request's user data as the pointer set_user_ptr() stored.
/// Notes: T may be const (`user_ptr<const Foo>(cb)`); use user_fn() for function pointers.
template <class T>
  requires(!std::is_function_v<T>)
[[nodiscard]] inline T* user_ptr(const iocb& cb) noexcept {
  return detail::from_u64<T>(cb.aio_data);
}

/// Returns: the request's user data as the function pointer set_user_fn() stored.
template <class F>
  requires std::is_function_v<F>
[[nodiscard]] inline F* user_fn(const iocb& cb) noexcept {
  return detail::from_u64<F>(cb.aio_data);
}

// ---- From a completion back to its request -------------------------------------------------

/// Returns: res >= 0: the byte count (for a poll, the ready mask); res < 0: that errno as
/// the error (a value outside 1..4095, which the kernel never reports, gives EIO).
[[nodiscard]] inline Result<std::size_t> result(const io_event& ev) noexcept {
  if (ev.res >= 0) return static_cast<std::size_t>(ev.res);
  const int err = ev.res >= -4095 ? static_cast<int>(-ev.res) : EIO;
  return fail(err);
}

/// Returns: the iocb this completion belongs to (io_event::obj: the address passed to submit).
[[nodiscard]] inline iocb* request_of(const io_event& ev) noexcept { return detail::from_u64<iocb>(ev.obj); }

/// Returns: the request's user data, as set by set_user_data().
[[nodiscard]] constexpr std::uint64_t user_data(const io_event& ev) noexcept { return ev.data; }

/// Returns: the request's user data as the pointer set_user_ptr() stored.
/// Notes: T may be const (`user_ptr<const Foo>(ev)`); use user_fn() for function pointers.
template <class T>
  requires(!std::is_function_v<T>)
[[nodiscard]] inline T* user_ptr(const io_event& ev) noexcept {
  return detail::from_u64<T>(ev.data);
}

/// Returns: the request's user data as the function pointer set_user_fn() stored.
template <class F>
  requires std::is_function_v<F>
[[nodiscard]] inline F* user_fn(const io_event& ev) noexcept {
  return detail::from_u64<F>(ev.data);
}

/// Returns: the ready mask of a completed poll (io_event::res); PollEvents::none for a
/// failed poll (res < 0) and for a cancelled one (it completes with an empty mask).
[[nodiscard]] constexpr PollEvents poll_events(const io_event& ev) noexcept {
  if (ev.res < 0) return PollEvents::none;
  return static_cast<PollEvents>(static_cast<std::uint16_t>(static_cast<std::uint64_t>(ev.res) & 0xffffU));
}

}  // namespace aio
