// aiopp — aio::Engine (see include/aio/engine.hpp for the contract).
#include "aio/engine.hpp"

#include <sys/eventfd.h>
#include <ctime>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <new>
#include <utility>

namespace aio {
namespace detail {

void contract_violation(const char* what) noexcept {
  std::fputs("aiopp: contract violation: ", stderr);
  std::fputs(what, stderr);
  std::fputc('\n', stderr);
  std::abort();
}

}  // namespace detail

namespace {

using detail::OpState;

// The io_submit EAGAIN backoff while none of the Engine's own requests is in flight.
constexpr long backoff_first_ns = 50'000;
constexpr long backoff_max_ns = 1'000'000;

// Marks the Engine as running completions for the scope: run_* refuse to nest.
class Running {
 public:
  explicit Running(bool& flag) noexcept : flag_(&flag) { *flag_ = true; }
  Running(const Running&) = delete;
  Running& operator=(const Running&) = delete;
  ~Running() { *flag_ = false; }

 private:
  bool* flag_;
};

[[nodiscard]] Op& op_of(std::uint64_t data) noexcept {
  // aio_data holds the Op's address (set by start()).
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  return *reinterpret_cast<Op*>(static_cast<std::uintptr_t>(data));
}

[[nodiscard]] bool is_poll(const Op& op) noexcept { return op.cb.aio_lio_opcode == IOCB_CMD_POLL; }

}  // namespace

Result<Engine> Engine::create(EngineOptions options) noexcept {
  if (options.queue_depth == 0) return fail(EINVAL);
  auto ctx = Context::create(options.queue_depth, options.reap, options.observer);
  if (!ctx) return std::unexpected(ctx.error());
  Engine e;
  // NOLINTBEGIN(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays,cppcoreguidelines-owning-memory): unique_ptr<T[]> owners, see engine.hpp
  e.batch_.reset(new (std::nothrow) iocb*[options.queue_depth]);
  e.events_.reset(new (std::nothrow) io_event[options.queue_depth]);
  // NOLINTEND(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays,cppcoreguidelines-owning-memory)
  if (!e.batch_ || !e.events_) return fail(ENOMEM);
  if (options.notify_fd) {
    e.efd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (e.efd_ < 0) {
      const int err = errno;
      e.batch_.reset();  // an empty Engine: its destructor does nothing
      return fail(err);
    }
  }
  e.ctx_ = std::move(*ctx);
  e.depth_ = options.queue_depth;
  return e;
}

Engine::Engine(Engine&& other) noexcept
    : ctx_(std::move(other.ctx_)),
      batch_(std::move(other.batch_)),
      events_(std::move(other.events_)),
      queue_(std::exchange(other.queue_, {})),
      inflight_(std::exchange(other.inflight_, {})),
      done_(std::exchange(other.done_, {})),
      depth_(std::exchange(other.depth_, 0U)),
      efd_(std::exchange(other.efd_, -1)),
      backoff_ns_(std::exchange(other.backoff_ns_, 0)),
      shutting_down_(std::exchange(other.shutting_down_, false)),
      running_(std::exchange(other.running_, false)),
      cancel_requests_seen_(std::exchange(other.cancel_requests_seen_, 0)),
      cancel_requests_(other.cancel_requests_.exchange(0, std::memory_order_relaxed)) {
  // Started requests' awaiters and stop callbacks point at the old address.
  if (!idle()) [[unlikely]]
    detail::contract_violation("aio::Engine moved while requests were started");
}

Engine& Engine::operator=(Engine&& other) noexcept {
  if (this != &other) {
    if (!other.idle()) [[unlikely]]
      detail::contract_violation("aio::Engine moved while requests were started");
    shutdown();
    ctx_ = std::move(other.ctx_);
    batch_ = std::move(other.batch_);
    events_ = std::move(other.events_);
    queue_ = std::exchange(other.queue_, {});
    inflight_ = std::exchange(other.inflight_, {});
    done_ = std::exchange(other.done_, {});
    depth_ = std::exchange(other.depth_, 0U);
    efd_ = std::exchange(other.efd_, -1);
    backoff_ns_ = std::exchange(other.backoff_ns_, 0);
    shutting_down_ = std::exchange(other.shutting_down_, false);
    running_ = std::exchange(other.running_, false);
    cancel_requests_seen_ = std::exchange(other.cancel_requests_seen_, 0);
    cancel_requests_.store(other.cancel_requests_.exchange(0, std::memory_order_relaxed), std::memory_order_relaxed);
  }
  return *this;
}

Engine::~Engine() { shutdown(); }

// ---- Completion delivery -------------------------------------------------------------------

void Engine::complete_later(Op& op, std::int64_t res) noexcept {
  op.state_.phase_ = OpState::completing;
  op.state_.res_ = res;
  done_.push_back(op);
}

// Inline (deliver_done() and deliver_events() only): it runs once per completion.
inline void Engine::deliver(Op& op, std::int64_t res) noexcept {
  // We asked the kernel to cancel this poll: its empty mask means "cancelled".
  if (res == 0 && is_poll(op) && op.state_.cancel_.load(std::memory_order_relaxed)) [[unlikely]]
    res = -ECANCELED;
  op.state_.phase_ = OpState::idle;
  if (op.on_complete == nullptr) return;
  if (res >= 0) [[likely]] {
    op.on_complete(op, static_cast<std::size_t>(res));
  } else {
    // The kernel only ever reports -errno (1..4095); anything else is not an errno.
    op.on_complete(op, fail(res >= -4095 ? static_cast<int>(-res) : EIO));
  }
  // op may be gone (destroyed, or started again).
}

std::size_t Engine::deliver_done() noexcept {
  // Only what is due now: completions made while these run wait for the next call.
  detail::OpList due = std::exchange(done_, {});
  std::size_t ran = 0;
  while (Op* op = due.pop_front()) {
    deliver(*op, op->state_.res_);
    ++ran;
  }
  return ran;
}

std::size_t Engine::deliver_events(std::size_t n) noexcept {
  std::size_t ran = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const io_event& ev = events_[i];
    if (ev.data != ev.obj) [[unlikely]]
      continue;  // a request submitted to context() directly: not ours
    Op& op = op_of(ev.data);
    inflight_.remove(op);
    deliver(op, ev.res);
    ++ran;
  }
  return ran;
}

inline Result<std::size_t> Engine::reap(std::size_t min_nr, Timeout timeout) noexcept {
  auto n = ctx_.getevents(min_nr, std::span<io_event>(events_.get(), depth_), timeout);
  if (!n) return n;
  return deliver_events(*n);
}

// ---- Submission ----------------------------------------------------------------------------

// Marks `count` Ops from `op` on (a batch's requests the kernel did not take) queued again.
void Engine::requeue(Op* op, std::size_t count) noexcept {
  for (std::size_t i = 0; i < count; ++i, op = op->state_.next_) op->state_.phase_ = OpState::queued;
}

Result<std::size_t> Engine::flush() noexcept {
  if (!batch_) return fail(EINVAL);
  std::size_t accepted = 0;
  while (!queue_.empty() && inflight_.size < depth_) {
    const std::size_t room = depth_ - inflight_.size;
    // The batch is the head of queue_ (cancelled ones unlinked), marked in flight already:
    // what the kernel does not accept goes back to queued below, before anything can look.
    std::size_t k = 0;
    Op* last = nullptr;
    bool polls = false;
    for (Op* op = queue_.head; op != nullptr && k < room;) {
      Op* next = op->state_.next_;
      if (op->state_.cancel_.load(std::memory_order_relaxed)) [[unlikely]] {
        queue_.remove(*op);  // request_cancel()ed while queued
        complete_later(*op, -ECANCELED);
      } else {
        op->state_.phase_ = OpState::in_flight;
        polls = polls || is_poll(*op);
        batch_[k++] = &op->cb;
        last = op;
      }
      op = next;
    }
    if (k == 0) break;
    Op* const first = queue_.head;
    auto n = ctx_.submit(std::span<iocb* const>(batch_.get(), k));
    if (!n) {
      requeue(first, k);
      const int err = n.error().value();
      if (err == EAGAIN || err == EINTR) {
        // The kernel ring is full (maybe of requests that are not ours): keep them queued
        // and retry when completions have freed it.
        if (backoff_ns_ == 0) backoff_ns_ = backoff_first_ns;
        break;
      }
      // The first request of the batch was refused: the error is its own.
      if (Op* op = queue_.pop_front(); op != nullptr) complete_later(*op, -static_cast<std::int64_t>(err));
      continue;
    }
    if (*n == 0) [[unlikely]] {
      requeue(first, k);
      break;  // nothing taken and no reason given: as EAGAIN, retry at the next flush
    }
    backoff_ns_ = 0;
    std::size_t taken = k;
    if (*n < k) [[unlikely]] {
      // The kernel stopped at request *n (it never accepts more than it was given).
      taken = *n;
      last = first;
      for (std::size_t i = 1; i < taken; ++i) last = last->state_.next_;
      requeue(last->state_.next_, k - taken);
    }
    // The accepted requests are the first `taken` of queue_: one splice to inflight_.
    queue_.splice_front_to(inflight_, *first, *last, taken);
    accepted += taken;
    if (polls) [[unlikely]]
      recheck_cancelled_polls(*first, taken);
  }
  return accepted;
}

// A request_cancel() from another thread that found a poll still queued made no io_cancel
// that could work. It set the op's flag and then counted itself in cancel_requests_ before
// its io_cancel, so when that io_cancel came too early, the count is seen here, after our
// io_submit (seq_cst RMW and load; the kernel takes and releases the context's lock in both
// calls), and the cancellation is made now. An unchanged count since the previous look means
// no request_cancel() whose flag this thread has not seen yet: a flag counted at an earlier
// look was visible from then on, so the queued op was completed before its submission.
void Engine::recheck_cancelled_polls(Op& first, std::size_t n) noexcept {
  const std::uint64_t requests = cancel_requests_.load(std::memory_order_seq_cst);
  if (requests == cancel_requests_seen_) [[likely]]
    return;
  cancel_requests_seen_ = requests;
  Op* op = &first;
  for (std::size_t i = 0; i < n; ++i, op = op->state_.next_) {
    if (is_poll(*op) && op->state_.cancel_.load(std::memory_order_seq_cst)) (void)ctx_.cancel(op->cb);
  }
}

// ---- Running -------------------------------------------------------------------------------

void Engine::drain_notify() noexcept {
  std::uint64_t count = 0;
  (void)!::read(efd_, &count, sizeof count);  // resets the counter; EAGAIN when it was 0
}

void Engine::signal_notify() noexcept {
  const std::uint64_t one = 1;
  (void)!::write(efd_, &one, sizeof one);
}

void Engine::backoff(const Timeout& timeout) noexcept {
  long ns = backoff_ns_ != 0 ? backoff_ns_ : backoff_first_ns;
  backoff_ns_ = ns * 2 < backoff_max_ns ? ns * 2 : backoff_max_ns;
  if (timeout && timeout->count() < ns) ns = static_cast<long>(timeout->count());
  if (ns <= 0) return;
  timespec ts{0, ns};
  (void)::nanosleep(&ts, nullptr);  // EINTR: return early, the caller retries
}

Result<std::size_t> Engine::run_ready() noexcept {
  if (!batch_) return fail(EINVAL);
  if (running_) return fail(EDEADLK);
  const Running running(running_);
  // Drained first: a completion after this read signals again, so none is left unseen.
  if (efd_ >= 0) drain_notify();
  (void)flush();  // fails only for an empty Engine, refused above
  std::size_t ran = done_.empty() ? 0 : deliver_done();
  if (!inflight_.empty()) {
    auto n = reap(0, std::chrono::nanoseconds(0));
    if (!n) {
      if (ran == 0) return n;
    } else {
      ran += *n;
    }
  }
  if (!queue_.empty()) (void)flush();  // what the completions started
  if (efd_ >= 0 && !done_.empty()) signal_notify();  // due at the next call
  return ran;
}

Result<std::size_t> Engine::run_once(Timeout timeout) noexcept {
  if (!batch_) return fail(EINVAL);
  if (running_) return fail(EDEADLK);
  if (timeout && timeout->count() < 0) return fail(EINVAL);
  const Running running(running_);
  (void)flush();  // fails only for an empty Engine, refused above
  std::size_t ran = done_.empty() ? 0 : deliver_done();
  if (ran == 0 && inflight_.empty() && !queue_.empty()) {
    // Every queued request was refused with EAGAIN and none of ours is in flight: the ring
    // is full of requests submitted elsewhere. Wait a little (bounded), then retry.
    backoff(timeout);
    (void)flush();
    ran = deliver_done();
  }
  if (!inflight_.empty()) {
    if (ran != 0) {
      if (auto n = reap(0, std::chrono::nanoseconds(0)); n) ran += *n;
    } else {
      // Wait for one of ours; completions of requests that are not ours do not count.
      const bool bounded = timeout.has_value() && timeout->count() > 0;
      timespec t0{};
      if (bounded) (void)::clock_gettime(CLOCK_MONOTONIC, &t0);
      Timeout left = timeout;
      for (;;) {
        auto n = reap(1, left);
        if (!n) return n;
        ran = *n;
        if (ran != 0 || inflight_.empty()) break;
        // Only foreign completions were reaped: wait on (without a timeout), or for what is
        // left of it.
        if (!bounded) {
          if (timeout) break;  // zero: one look only
          continue;
        }
        timespec now{};
        (void)::clock_gettime(CLOCK_MONOTONIC, &now);
        const auto spent = std::chrono::seconds(now.tv_sec - t0.tv_sec) + std::chrono::nanoseconds(now.tv_nsec - t0.tv_nsec);
        if (spent >= *timeout) break;
        left = *timeout - spent;
      }
    }
  }
  if (!queue_.empty()) (void)flush();  // what the completions started
  return ran;
}

Result<void> Engine::run() noexcept {
  if (!batch_) return fail(EINVAL);
  if (running_) return fail(EDEADLK);
  while (!idle()) {
    auto n = run_once();
    if (!n && n.error() != std::errc::interrupted) return std::unexpected(n.error());
  }
  return {};
}

// ---- Cancellation --------------------------------------------------------------------------

Result<void> Engine::cancel(Op& op) noexcept {
  switch (op.state_.phase_) {
    case OpState::queued:
      queue_.remove(op);
      complete_later(op, -ECANCELED);
      return {};
    case OpState::in_flight:
      op.state_.cancel_.store(true, std::memory_order_seq_cst);
      return ctx_.cancel(op.cb);
    case OpState::idle:
    case OpState::completing:
      break;
  }
  return fail(EINVAL);
}

void Engine::request_cancel(Op& op) noexcept {
  // The flag first: if the owner thread submits the op concurrently, either our io_cancel
  // finds it in flight, or flush() sees the flag after its io_submit and cancels it.
  op.state_.cancel_.store(true, std::memory_order_seq_cst);
  cancel_requests_.fetch_add(1, std::memory_order_seq_cst);  // see recheck_cancelled_polls()
  (void)ctx_.cancel(op.cb);  // invalid_argument while still queued (flush() completes it)
}

// ---- Shutdown ------------------------------------------------------------------------------

void Engine::cancel_in_flight_polls() noexcept {
  for (Op* op = inflight_.head; op != nullptr; op = op->state_.next_) {
    if (is_poll(*op) && !op->state_.cancel_.exchange(true, std::memory_order_seq_cst)) (void)ctx_.cancel(op->cb);
  }
}

void Engine::shutdown() noexcept {
  if (!batch_) return;
  shutting_down_ = true;
  running_ = true;  // run_* from a completion now: resource_deadlock_would_occur
  while (Op* op = queue_.pop_front()) complete_later(*op, -ECANCELED);
  for (;;) {
    if (!done_.empty()) (void)deliver_done();  // ops started in there complete (operation_canceled) in the next pass
    if (inflight_.empty()) {
      if (done_.empty()) break;
      continue;
    }
    cancel_in_flight_polls();
    auto n = ctx_.getevents(1, std::span<io_event>(events_.get(), depth_));
    if (n) {
      (void)deliver_events(*n);
    } else if (n.error() != std::errc::interrupted) {
      // The Context cannot wait (e.g. inherited across fork()): these will never complete here.
      while (Op* op = inflight_.pop_front()) {
        complete_later(*op, -ECANCELED);
      }
    }
  }
  (void)ctx_.destroy();
  if (efd_ >= 0) ::close(efd_);
  efd_ = -1;
  batch_.reset();
  events_.reset();
  depth_ = 0;
  running_ = false;
  shutting_down_ = false;
}

}  // namespace aio
