// aiopp — engine.hpp: aio::Engine, a completion engine over one Context: requests with
// completion callbacks, backpressure by queueing, event-loop integration, and awaitables
// for C++20 coroutines (aio/task.hpp).
//
//     void on_read(aio::Op& op, aio::Result<std::size_t> n) noexcept { ... }
//
//     auto engine = aio::Engine::create({.queue_depth = 64});
//     aio::Op op{.cb = aio::make_pread(fd, buf, 0), .on_complete = &on_read};
//     engine->start(op);                 // queued: no syscall
//     (void)engine->run();               // one io_submit, reap, on_read(op, bytes)
//
// Requests
//   An Op is one request: its iocb (built with make_*), a completion function and a user
//   pointer. The caller owns it (stack, member, array, coroutine frame); the engine links it
//   into intrusive lists and never allocates per request. From start() until its
//   on_complete runs, an Op is *started*: it must stay alive and unchanged.
//   The engine owns cb.aio_data (the Op's address) and, in notify mode, IOCB_FLAG_RESFD.
//
// Exactly once
//   Every started Op's on_complete runs exactly once, on the owner thread, from run_ready(),
//   run_once(), run() or the destructor — never from start(), flush() or cancel(). The Op is
//   no longer started when it runs, so on_complete may start it again, start others, cancel,
//   flush, or destroy the Op.
//
// Backpressure
//   At most queue_depth requests are in flight. More stay queued, in FIFO order, and go in
//   as completions free slots; a kernel ring that is full (io_submit EAGAIN, e.g. because
//   of requests submitted to context() directly) leaves them queued too. Never an error,
//   never an assert. When the kernel refuses request k of a batch, request k completes with
//   that error and the others go on. (If the ring is full of requests submitted elsewhere
//   and none of the engine's own is in flight, their submitter must reap them; run_once()
//   meanwhile waits a bounded backoff.)
//
// Threads
//   One owner thread: every call but request_cancel() is made from the thread that uses the
//   Engine (one Engine per thread). request_cancel() — and so a std::stop_token given to
//   poll() — may be used from any thread.
//
// Shutdown
//   The destructor cancels the in-flight polls, waits for every in-flight request, runs
//   every remaining completion (queued requests: operation_canceled; ops started from those
//   completions: operation_canceled) and then io_destroy()s the context.
//
// Requests submitted to context() directly share its completion ring: the engine reaps
// their completions too and drops them (it recognises its own by io_event::obj ==
// io_event::data, which such requests must not set up).
#pragma once

#include <linux/aio_abi.h>
#include <sys/uio.h>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <stop_token>
#include <utility>

#include "aio/context.hpp"
#include "aio/flags.hpp"
#include "aio/iocb.hpp"
#include "aio/result.hpp"

namespace aio {

struct Op;
class Engine;

namespace detail {

/// The engine's bookkeeping inside an Op (link, phase, cancellation flag). Not API.
/// Copying yields an idle state: a copy of an Op is a new, not started request.
class OpState {
 public:
  OpState() noexcept = default;
  // A copy is idle, whatever the source's state: nothing is copied, on purpose.
  // NOLINTNEXTLINE(modernize-use-equals-default): copying the link and phase would corrupt the engine's lists
  OpState(const OpState& /*other*/) noexcept {}
  // NOLINTNEXTLINE(bugprone-unhandled-self-assignment): assigning leaves the target's own state, so self-assignment is a no-op
  OpState& operator=(const OpState& /*other*/) noexcept {  // cppcheck-suppress operatorEqVarError ; the target keeps its own state
    return *this;
  }
  // NOLINTNEXTLINE(modernize-use-equals-default): as the copy, a moved-to state is idle
  OpState(OpState&& /*other*/) noexcept {}
  OpState& operator=(OpState&& /*other*/) noexcept {  // cppcheck-suppress operatorEqVarError ; the target keeps its own state
    return *this;
  }
  ~OpState() = default;

 private:
  friend struct ::aio::Op;
  friend class ::aio::Engine;
  friend struct OpList;

  enum Phase : std::uint8_t { idle, queued, in_flight, completing };

  Op* next_ = nullptr;
  Op* prev_ = nullptr;
  std::int64_t res_ = 0;             // the result of an engine-made completion (-errno)
  std::atomic<bool> cancel_{false};  // cancellation asked (any thread)
  Phase phase_ = idle;
};

/// An intrusive doubly-linked FIFO of Ops. Not API.
struct OpList {
  Op* head = nullptr;
  Op* tail = nullptr;
  std::size_t size = 0;

  [[nodiscard]] bool empty() const noexcept { return head == nullptr; }
  inline void push_back(Op& op) noexcept;
  inline Op* pop_front() noexcept;
  inline void remove(Op& op) noexcept;
  /// Moves this list's first `count` Ops (head == &first .. &last) to the back of `to`.
  inline void splice_front_to(OpList& to, Op& first, Op& last, std::size_t count) noexcept;
};

/// Reports a broken contract (message on stderr) and aborts.
[[noreturn]] void contract_violation(const char* what) noexcept;

class IoAwaiter;
class PlainPollAwaiter;
class PollAwaiter;

}  // namespace detail

/// One request: an iocb, what to run when it completes, and a pointer for the caller.
/// An aggregate: `aio::Op op{.cb = aio::make_pread(fd, buf, 0), .on_complete = &done};`.
/// Notes: owned by the caller, never allocated by the engine. While started (start() until
/// on_complete runs) it must not be moved, copied over, or destroyed.
struct Op {
  /// The request, built with make_*. The engine overwrites aio_data (and in notify mode
  /// sets IOCB_FLAG_RESFD and aio_resfd) at start().
  iocb cb{};
  /// Runs once per start(), on the owner thread, with the byte count (a poll: the ready
  /// mask) or the request's error. May be null.
  void (*on_complete)(Op& op, Result<std::size_t> result) noexcept = nullptr;
  /// For the caller; the engine never touches it.
  void* user = nullptr;
  /// The engine's bookkeeping (its members are private).
  detail::OpState state_{};

  /// True from start() until on_complete runs.
  [[nodiscard]] bool busy() const noexcept { return state_.phase_ != detail::OpState::idle; }
};
static_assert(offsetof(Op, cb) == 0, "the engine recognises its requests by io_event::obj == io_event::data");

/// How Engine::create() sets an Engine up (fields in this order, for designated initialisers).
struct EngineOptions {
  /// Requests in flight at most; the Context is created with max_events = queue_depth.
  unsigned queue_depth = 128;
  /// How completions are reaped (ReapMode::automatic: from the ring, without a syscall).
  ReapMode reap = ReapMode::automatic;
  /// Create an eventfd (notify_fd()) that every request signals on completion, for
  /// epoll/asio/libuv loops.
  bool notify_fd = false;
  /// Attached to the Context from io_setup on (not owned; must outlive the Engine).
  Observer* observer = nullptr;
};

/// A completion engine: queues requests, submits them in batches, reaps and runs their
/// completions. Move-only; one owner thread.
class Engine {
 public:
  /// An empty Engine: every run_* and flush() returns invalid_argument.
  Engine() noexcept = default;

  /// Creates the Context (io_setup(queue_depth)), the submit and reap arrays (the only
  /// allocations the Engine ever makes) and, with options.notify_fd, the eventfd.
  /// Returns: the new Engine.
  /// Errors: invalid_argument (queue_depth 0, or too large for the kernel); those of
  /// Context::create(); not_enough_memory; eventfd()'s errors.
  [[nodiscard]] static Result<Engine> create(EngineOptions options = {}) noexcept;

  /// Takes over other, which must be idle (nothing started; else aborts with a message);
  /// other becomes empty.
  Engine(Engine&& other) noexcept;
  /// Shuts down what *this owned (as the destructor), then takes over other (idle, as for
  /// the move constructor).
  Engine& operator=(Engine&& other) noexcept;
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;
  /// Shutdown (see the top of this header), then io_destroy and close the eventfd.
  ~Engine();

  /// Queues op for the next flush: no syscall, never fails. A later flush()/run_*() submits
  /// it; everything started before one flush goes into one io_submit.
  /// Notes: precondition: op is not started and the Engine is not empty (a debug build
  /// aborts; otherwise the call is ignored). During shutdown, op completes with
  /// operation_canceled at the next run (never inside start()).
  inline void start(Op& op) noexcept;

  /// Submits queued requests, in FIFO order, as far as free slots allow (queue_depth minus
  /// in flight): a clean batch is one io_submit. A request the kernel refuses completes with
  /// the kernel's error (at the next run_*) and submission goes on with the next one; a full
  /// kernel ring (EAGAIN) stops it with the rest still queued.
  /// Returns: how many requests the kernel accepted.
  /// Errors: invalid_argument for an empty Engine.
  /// Notes: runs no completion, so it may be called from on_complete.
  [[nodiscard]] Result<std::size_t> flush() noexcept;

  /// flush(), then runs every completion that is ready, without blocking (with ring reaping
  /// no syscall), then submits what those completions started. In notify mode it first
  /// drains the eventfd, and signals it again if a completion is left for the next call.
  /// Returns: how many completions ran.
  /// Errors: invalid_argument (empty Engine; a Context unusable after fork());
  /// resource_deadlock_would_occur when called from inside an on_complete.
  [[nodiscard]] Result<std::size_t> run_ready() noexcept;

  /// flush(), waits until at least one completion is ready or the timeout expires, runs
  /// every ready one, then submits what they started.
  /// Returns: how many completions ran; 0 on timeout, or at once when nothing is queued or
  /// in flight.
  /// Errors: as run_ready(); invalid_argument for a negative timeout; interrupted (a signal
  /// handler ran while waiting; nothing ran, call again).
  /// Notes: completions of requests submitted to context() directly are reaped and dropped;
  /// they neither count nor end the wait. When the kernel refused every queued request with
  /// EAGAIN and none of the Engine's own is in flight (the ring is full of requests submitted
  /// elsewhere), it waits a bounded backoff (50 us doubling to 1 ms, at most the timeout)
  /// before retrying: never a busy loop.
  [[nodiscard]] Result<std::size_t> run_once(Timeout timeout = std::nullopt) noexcept;

  /// run_once() until nothing is queued, in flight or waiting to complete.
  /// Errors: as run_once(), except interrupted, which is retried.
  [[nodiscard]] Result<void> run() noexcept;

  /// Cancels a started op. Queued (not yet submitted): it completes with
  /// operation_canceled at the next run_*. In flight: asks the kernel (io_cancel); success
  /// means it completes with operation_canceled (a poll: the kernel's empty mask is
  /// reported as operation_canceled).
  /// Errors: invalid_argument when the kernel cannot cancel it (file I/O; a request that
  /// already completed) — it then completes normally — or when op is not started or its
  /// completion is already due.
  [[nodiscard]] Result<void> cancel(Op& op) noexcept;

  /// Asks for op's cancellation from any thread: io_cancel if it is in flight, else it
  /// completes with operation_canceled when the owner thread next flushes. The result is
  /// as cancel()'s, but not reported.
  /// Thread safety: any thread, while op is started and stays so for the duration of the
  /// call (the caller synchronises that, e.g. as std::stop_callback's destructor does).
  void request_cancel(Op& op) noexcept;

  /// The eventfd signalled by every completion (EFD_NONBLOCK | EFD_CLOEXEC), -1 unless
  /// options.notify_fd. Wait for it to be readable, then call run_ready().
  /// Notes: while the kernel ring is full of requests submitted elsewhere and none of the
  /// Engine's own is in flight, nothing signals it: such a loop also needs a timer.
  [[nodiscard]] int notify_fd() const noexcept { return efd_; }
  /// Requests started and not yet submitted.
  [[nodiscard]] std::size_t queued() const noexcept { return queue_.size; }
  /// Requests submitted whose completion has not run yet.
  [[nodiscard]] std::size_t in_flight() const noexcept { return inflight_.size; }
  /// True when nothing is queued, in flight or waiting to complete.
  [[nodiscard]] bool idle() const noexcept { return queue_.empty() && inflight_.empty() && done_.empty(); }
  /// The options' queue_depth; 0 when empty.
  [[nodiscard]] unsigned queue_depth() const noexcept { return depth_; }
  /// The Context the Engine submits to.
  /// Notes: submitting to it directly shares the ring with the Engine (see the top).
  [[nodiscard]] Context& context() noexcept { return ctx_; }

  // ---- Awaitables: `co_await` inside a coroutine (aio/task.hpp). The Op lives in the
  // awaiter, in the awaiting coroutine's frame: no allocation. The request is started at
  // the co_await and submitted by the next flush/run_*.

  /// IOCB_CMD_PREAD. Yields Result<std::size_t>: bytes read.
  [[nodiscard]] inline detail::IoAwaiter read(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept;
  /// read() of any buffer make_pread() accepts.
  template <class Buffer>
    requires requires(int fd, Buffer&& b, std::int64_t off) { ::aio::make_pread(fd, std::forward<Buffer>(b), off); }
  [[nodiscard]] detail::IoAwaiter read(int fd, Buffer&& buf, std::int64_t offset)
      noexcept(noexcept(::aio::make_pread(fd, std::forward<Buffer>(buf), offset)));
  /// IOCB_CMD_PWRITE. Yields Result<std::size_t>: bytes written.
  [[nodiscard]] inline detail::IoAwaiter write(int fd, std::span<const std::byte> buf, std::int64_t offset) noexcept;
  /// write() of any buffer make_pwrite() accepts.
  template <class Buffer>
    requires requires(int fd, Buffer&& b, std::int64_t off) { ::aio::make_pwrite(fd, std::forward<Buffer>(b), off); }
  [[nodiscard]] detail::IoAwaiter write(int fd, Buffer&& buf, std::int64_t offset)
      noexcept(noexcept(::aio::make_pwrite(fd, std::forward<Buffer>(buf), offset)));
  /// IOCB_CMD_PREADV (the iovec array must outlive the co_await). Yields bytes read.
  [[nodiscard]] inline detail::IoAwaiter readv(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept;
  /// IOCB_CMD_PWRITEV (the iovec array must outlive the co_await). Yields bytes written.
  [[nodiscard]] inline detail::IoAwaiter writev(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept;
  /// IOCB_CMD_FSYNC. Yields 0.
  [[nodiscard]] inline detail::IoAwaiter fsync(int fd) noexcept;
  /// IOCB_CMD_FDSYNC. Yields 0.
  [[nodiscard]] inline detail::IoAwaiter fdsync(int fd) noexcept;
  /// Any prepared request (flags, priority, ...). Yields Result<std::size_t>: the byte
  /// count, or for a poll the ready mask.
  [[nodiscard]] inline detail::IoAwaiter submit(const iocb& request) noexcept;
  /// IOCB_CMD_POLL. Yields Result<PollEvents>: the ready mask (cancel() / request_cancel()
  /// of the awaiter's Op are not reachable: it runs until the fd is ready or shutdown).
  [[nodiscard]] inline detail::PlainPollAwaiter poll(int fd, PollEvents events) noexcept;
  /// IOCB_CMD_POLL. Yields Result<PollEvents>: the ready mask, or operation_canceled when
  /// `stop` is requested first (from any thread: the in-flight poll is io_cancel()led).
  [[nodiscard]] inline detail::PollAwaiter poll(int fd, PollEvents events, std::stop_token stop) noexcept;

 private:
  void complete_later(Op& op, std::int64_t res) noexcept;
  [[nodiscard]] std::size_t deliver_done() noexcept;
  // reap() and deliver() are inline, defined and used in src/engine.cpp only.
  [[nodiscard]] inline Result<std::size_t> reap(std::size_t min_nr, Timeout timeout) noexcept;
  [[nodiscard]] std::size_t deliver_events(std::size_t n) noexcept;
  inline void deliver(Op& op, std::int64_t res) noexcept;
  void drain_notify() noexcept;
  void signal_notify() noexcept;
  void backoff(const Timeout& timeout) noexcept;
  void shutdown() noexcept;
  void cancel_in_flight_polls() noexcept;
  void recheck_cancelled_polls(Op& first, std::size_t n) noexcept;
  static void requeue(Op* op, std::size_t count) noexcept;

  Context ctx_;
  // NOLINTBEGIN(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays): runtime size, new (nothrow), once
  std::unique_ptr<iocb*[]> batch_;      // the io_submit argument, queue_depth entries
  std::unique_ptr<io_event[]> events_;  // the reap buffer, queue_depth entries
  // NOLINTEND(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
  detail::OpList queue_;     // started, not submitted (FIFO)
  detail::OpList inflight_;  // submitted, completion not run
  detail::OpList done_;      // completed by the engine itself (refused, cancelled), not run
  unsigned depth_ = 0;
  int efd_ = -1;
  long backoff_ns_ = 0;
  bool shutting_down_ = false;
  bool running_ = false;
  std::uint64_t cancel_requests_seen_ = 0;           // cancel_requests_ at flush()'s last look
  std::atomic<std::uint64_t> cancel_requests_{0};  // request_cancel() calls (any thread)
};

// ---- Awaiters -------------------------------------------------------------------------------

namespace detail {

/// The awaiter of Engine::read/write/readv/writev/fsync/fdsync/submit. Not movable: the Op
/// inside is linked into the engine while the coroutine is suspended.
/// Notes: destroying it while its request is started (destroying a suspended coroutine
/// frame) breaks the contract: a debug build (!NDEBUG) aborts with a message.
class IoAwaiter {
 public:
  IoAwaiter(Engine& engine, const iocb& request) noexcept : engine_(&engine) {
    op_.cb = request;
    op_.user = this;
  }
  IoAwaiter(const IoAwaiter&) = delete;
  IoAwaiter& operator=(const IoAwaiter&) = delete;
  // NOLINTNEXTLINE(modernize-use-equals-default): checks the contract in debug builds
  ~IoAwaiter() {
#ifndef NDEBUG
    if (op_.busy())
      contract_violation(op_.cb.aio_lio_opcode == IOCB_CMD_POLL
                             ? "a coroutine suspended in an aio::Engine poll was destroyed"
                             : "a coroutine suspended in an aio::Engine request was destroyed");
#endif
  }

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) noexcept {
    waiter_ = waiter;
    op_.on_complete = &completed;
    engine_->start(op_);
  }
  [[nodiscard]] Result<std::size_t> await_resume() const noexcept { return result_; }

 private:
  static void completed(Op& op, Result<std::size_t> result) noexcept {
    auto* self = static_cast<IoAwaiter*>(op.user);
    self->result_ = result;
    self->waiter_.resume();  // may destroy *self
  }

  Engine* engine_;
  Op op_{};
  std::coroutine_handle<> waiter_;
  Result<std::size_t> result_{};
};

// A ready mask as PollEvents, or the poll's error.
[[nodiscard]] inline Result<PollEvents> to_poll_events(const Result<std::size_t>& result) noexcept {
  if (!result) return std::unexpected(result.error());
  return static_cast<PollEvents>(static_cast<std::uint16_t>(*result & 0xffffU));
}

/// The awaiter of Engine::poll() without a stop token: an IoAwaiter yielding PollEvents.
/// Not movable (as IoAwaiter).
class PlainPollAwaiter {
 public:
  PlainPollAwaiter(Engine& engine, const iocb& request) noexcept : io_(engine, request) {}

  [[nodiscard]] bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> waiter) noexcept { io_.await_suspend(waiter); }
  [[nodiscard]] Result<PollEvents> await_resume() const noexcept { return to_poll_events(io_.await_resume()); }

 private:
  IoAwaiter io_;
};

/// The awaiter of Engine::poll() with a stop token. Not movable (as IoAwaiter).
/// Notes: the stop callback calls Engine::request_cancel() on whichever thread requests
/// stop; it is unregistered on the owner thread before the coroutine resumes.
class PollAwaiter {
 public:
  PollAwaiter(Engine& engine, const iocb& request, std::stop_token stop) noexcept
      : engine_(&engine), token_(std::move(stop)) {
    op_.cb = request;
    op_.user = this;
  }
  PollAwaiter(const PollAwaiter&) = delete;
  PollAwaiter& operator=(const PollAwaiter&) = delete;
  // NOLINTNEXTLINE(modernize-use-equals-default): checks the contract in debug builds
  ~PollAwaiter() {
#ifndef NDEBUG
    if (op_.busy()) contract_violation("a coroutine suspended in an aio::Engine poll was destroyed");
#endif
  }

  [[nodiscard]] bool await_ready() noexcept {
    if (!token_.stop_requested()) return false;
    result_ = fail(ECANCELED);
    return true;
  }
  void await_suspend(std::coroutine_handle<> waiter) noexcept {
    waiter_ = waiter;
    op_.on_complete = &completed;
    engine_->start(op_);
    if (token_.stop_possible()) stop_.emplace(token_, OnStop{this});
  }
  [[nodiscard]] Result<PollEvents> await_resume() const noexcept { return to_poll_events(result_); }

 private:
  struct OnStop {
    PollAwaiter* self;
    void operator()() const noexcept { self->engine_->request_cancel(self->op_); }
  };

  static void completed(Op& op, Result<std::size_t> result) noexcept {
    auto* self = static_cast<PollAwaiter*>(op.user);
    self->stop_.reset();  // waits for a stop callback running on another thread
    self->result_ = result;
    self->waiter_.resume();  // may destroy *self
  }

  Engine* engine_;
  Op op_{};
  std::coroutine_handle<> waiter_;
  Result<std::size_t> result_{};
  std::stop_token token_;
  std::optional<std::stop_callback<OnStop>> stop_;
};

// ---- OpList ---------------------------------------------------------------------------------

inline void OpList::push_back(Op& op) noexcept {
  op.state_.next_ = nullptr;
  op.state_.prev_ = tail;
  if (tail != nullptr)
    tail->state_.next_ = &op;
  else
    head = &op;
  tail = &op;
  ++size;
}

inline Op* OpList::pop_front() noexcept {
  Op* op = head;
  if (op == nullptr) return nullptr;
  head = op->state_.next_;
  if (head != nullptr)
    head->state_.prev_ = nullptr;
  else
    tail = nullptr;
  op->state_.next_ = nullptr;
  --size;
  return op;
}

inline void OpList::remove(Op& op) noexcept {
  if (op.state_.prev_ != nullptr)
    op.state_.prev_->state_.next_ = op.state_.next_;
  else
    head = op.state_.next_;
  if (op.state_.next_ != nullptr)
    op.state_.next_->state_.prev_ = op.state_.prev_;
  else
    tail = op.state_.prev_;
  op.state_.next_ = nullptr;
  op.state_.prev_ = nullptr;
  --size;
}

inline void OpList::splice_front_to(OpList& to, Op& first, Op& last, std::size_t count) noexcept {
  head = last.state_.next_;
  if (head != nullptr)
    head->state_.prev_ = nullptr;
  else
    tail = nullptr;
  size -= count;
  first.state_.prev_ = to.tail;
  if (to.tail != nullptr)
    to.tail->state_.next_ = &first;
  else
    to.head = &first;
  to.tail = &last;
  last.state_.next_ = nullptr;
  to.size += count;
}

}  // namespace detail

// ---- Engine inline members -----------------------------------------------------------------

inline void Engine::start(Op& op) noexcept {
  if (op.state_.phase_ != detail::OpState::idle || !batch_) [[unlikely]] {
#ifndef NDEBUG
    detail::contract_violation(op.busy() ? "aio::Engine::start: the Op is already started"
                                         : "aio::Engine::start: the Engine is empty");
#else
    return;
#endif
  }
  op.cb.aio_data = detail::to_u64(&op);
  if (efd_ >= 0) set_eventfd(op.cb, efd_);
  op.state_.cancel_.store(false, std::memory_order_relaxed);
  if (shutting_down_) [[unlikely]] {
    complete_later(op, -ECANCELED);
    return;
  }
  op.state_.phase_ = detail::OpState::queued;
  queue_.push_back(op);
}

inline detail::IoAwaiter Engine::read(int fd, std::span<std::byte> buf, std::int64_t offset) noexcept {
  return {*this, make_pread(fd, buf, offset)};
}
template <class Buffer>
  requires requires(int fd, Buffer&& b, std::int64_t off) { ::aio::make_pread(fd, std::forward<Buffer>(b), off); }
detail::IoAwaiter Engine::read(int fd, Buffer&& buf, std::int64_t offset)
    noexcept(noexcept(::aio::make_pread(fd, std::forward<Buffer>(buf), offset))) {
  return {*this, make_pread(fd, std::forward<Buffer>(buf), offset)};
}
inline detail::IoAwaiter Engine::write(int fd, std::span<const std::byte> buf, std::int64_t offset) noexcept {
  return {*this, make_pwrite(fd, buf, offset)};
}
template <class Buffer>
  requires requires(int fd, Buffer&& b, std::int64_t off) { ::aio::make_pwrite(fd, std::forward<Buffer>(b), off); }
detail::IoAwaiter Engine::write(int fd, Buffer&& buf, std::int64_t offset)
    noexcept(noexcept(::aio::make_pwrite(fd, std::forward<Buffer>(buf), offset))) {
  return {*this, make_pwrite(fd, std::forward<Buffer>(buf), offset)};
}
inline detail::IoAwaiter Engine::readv(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept {
  return {*this, make_preadv(fd, iov, offset)};
}
inline detail::IoAwaiter Engine::writev(int fd, std::span<const iovec> iov, std::int64_t offset) noexcept {
  return {*this, make_pwritev(fd, iov, offset)};
}
inline detail::IoAwaiter Engine::fsync(int fd) noexcept { return {*this, make_fsync(fd)}; }
inline detail::IoAwaiter Engine::fdsync(int fd) noexcept { return {*this, make_fdsync(fd)}; }
inline detail::IoAwaiter Engine::submit(const iocb& request) noexcept { return {*this, request}; }
inline detail::PlainPollAwaiter Engine::poll(int fd, PollEvents events) noexcept {
  return {*this, make_poll(fd, events)};
}
inline detail::PollAwaiter Engine::poll(int fd, PollEvents events, std::stop_token stop) noexcept {
  return {*this, make_poll(fd, events), std::move(stop)};
}

}  // namespace aio
