// aiopp — task.hpp: aio::Task<T>, a lazy coroutine task for the Engine's awaitables,
// sync_wait() and when_all().
//
//     aio::Task<std::size_t> copy_block(aio::Engine& e, int in, int out, std::span<std::byte> buf, std::int64_t off) {
//       auto n = co_await e.read(in, buf, off);
//       if (!n) co_return 0;
//       auto w = co_await e.write(out, buf.first(*n), off);
//       co_return w.value_or(0);
//     }
//     std::size_t n = aio::sync_wait(engine, copy_block(engine, in, out, buf, 0));
//
// A Task starts when it is awaited (or given to sync_wait/when_all) and resumes its
// awaiter when it ends, by symmetric transfer: a chain of tasks that complete at once
// does not grow the stack (in an optimised build; GCC makes no tail call for it at -O0/-O1
// or under sanitizers). Its frame is the only allocation, one per task.
//
// Exceptions: with exceptions enabled, one thrown out of a task's body is rethrown to its
// awaiter (and out of sync_wait()); the library itself never throws. -fno-exceptions
// builds compile too.
// Threads: a Task runs on the thread that resumes it — the Engine's owner thread.
#pragma once

#include <array>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdlib>
#include <exception>
#include <memory>
#include <optional>
#include <ranges>
#include <span>
#include <system_error>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "aio/engine.hpp"

namespace aio {

template <class T = void>
class Task;

namespace detail {

// Counts the tasks of a when_all() still running; the last one resumes the waiter.
struct WhenAllLatch {
  std::size_t count = 0;
  std::coroutine_handle<> waiter;
};

class TaskPromiseBase {
 public:
  struct FinalAwaiter {
    [[nodiscard]] bool await_ready() const noexcept { return false; }
    template <class Promise>
    [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> ended) const noexcept {
      TaskPromiseBase& p = ended.promise();
      if (p.latch_ != nullptr) return --p.latch_->count == 0 ? p.latch_->waiter : std::noop_coroutine();
      return p.continuation_ ? p.continuation_ : std::noop_coroutine();
    }
    void await_resume() const noexcept {}
  };

  [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
  [[nodiscard]] FinalAwaiter final_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept {
#if defined(__cpp_exceptions)
    exception_ = std::current_exception();
#else
    std::abort();  // nothing can be thrown without exceptions
#endif
  }

  void set_continuation(std::coroutine_handle<> h) noexcept { continuation_ = h; }
  void set_latch(WhenAllLatch* latch) noexcept { latch_ = latch; }

 protected:
  void rethrow_if_failed() {
#if defined(__cpp_exceptions)
    if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
#endif
  }

 private:
  std::coroutine_handle<> continuation_;
  WhenAllLatch* latch_ = nullptr;
  std::exception_ptr exception_;  // also without exceptions: one layout for every TU
};

template <class T>
class TaskPromise final : public TaskPromiseBase {
  using Stored = std::conditional_t<std::is_reference_v<T>, std::add_pointer_t<T>, T>;

 public:
  [[nodiscard]] Task<T> get_return_object() noexcept;

  template <class U = T>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<Stored, U&&> || std::is_reference_v<T>) {
    if constexpr (std::is_reference_v<T>) {
      T ref = std::forward<U>(value);
      value_ = std::addressof(ref);
    } else {
      value_.emplace(std::forward<U>(value));
    }
  }

  /// The result (moved out), or the task's exception rethrown.
  T take() {
    rethrow_if_failed();
    if constexpr (std::is_reference_v<T>) {
      return static_cast<T>(**value_);
    } else {
      return std::move(*value_);
    }
  }

 private:
  std::optional<Stored> value_;
};

template <>
class TaskPromise<void> final : public TaskPromiseBase {
 public:
  [[nodiscard]] Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  /// Rethrows the task's exception, if any.
  void take() { rethrow_if_failed(); }
};

struct TaskAccess {
  template <class T>
  [[nodiscard]] static std::coroutine_handle<TaskPromise<T>> handle(const Task<T>& task) noexcept {
    return task.handle_;
  }
};

}  // namespace detail

/// A lazy coroutine task yielding T. Move-only; destroying it destroys the coroutine frame.
/// Notes: await a Task once. Destroying a Task that is suspended in an Engine request
/// breaks the Engine's contract (a debug build aborts with a message).
template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::TaskPromise<T>;
  using value_type = T;

  /// An empty Task (valid() is false); awaiting it breaks the contract.
  Task() noexcept = default;
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      if (handle_) handle_.destroy();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() {
    if (handle_) handle_.destroy();
  }

  /// True when the Task owns a coroutine.
  [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(handle_); }
  /// True when the coroutine has run to its end.
  [[nodiscard]] bool done() const noexcept { return handle_ && handle_.done(); }

  /// Starts the task (symmetric transfer) and resumes the awaiter when it ends; yields its
  /// value, or rethrows its exception.
  [[nodiscard]] auto operator co_await() const& noexcept { return Awaiter{handle_}; }
  [[nodiscard]] auto operator co_await() const&& noexcept { return Awaiter{handle_}; }

 private:
  friend class detail::TaskPromise<T>;
  friend struct detail::TaskAccess;

  struct Awaiter {
    std::coroutine_handle<promise_type> task;
    [[nodiscard]] bool await_ready() const noexcept {
      if (!task) detail::contract_violation("co_await of an empty aio::Task");
      return task.done();
    }
    [[nodiscard]] std::coroutine_handle<> await_suspend(std::coroutine_handle<> waiter) const noexcept {
      task.promise().set_continuation(waiter);
      return task;
    }
    decltype(auto) await_resume() const { return task.promise().take(); }
  };

  explicit Task(std::coroutine_handle<promise_type> handle) noexcept : handle_(handle) {}

  std::coroutine_handle<promise_type> handle_;
};

namespace detail {

template <class T>
Task<T> TaskPromise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<TaskPromise<T>>::from_promise(*this));
}
inline Task<void> TaskPromise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<TaskPromise<void>>::from_promise(*this));
}

// Starts every task (each runs to its first suspension) and resumes the waiter when the
// last one has ended.
class WhenAllAwaiter {
 public:
  using Start = void (*)(void* task, WhenAllLatch* latch) noexcept;
  // NOLINTNEXTLINE(bugprone-easily-swappable-parameters): internal; count of tasks, then the size of one
  WhenAllAwaiter(void* tasks, std::size_t count, std::size_t stride, Start start) noexcept
      : tasks_(tasks), count_(count), stride_(stride), start_(start) {}

  [[nodiscard]] bool await_ready() const noexcept { return count_ == 0; }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> waiter) noexcept {
    latch_.count = count_ + 1;  // +1: a task ending inside this loop never resumes the waiter
    latch_.waiter = waiter;
    auto* base = static_cast<unsigned char*>(tasks_);
    // NOLINTNEXTLINE(cppcoreguidelines-pro-bounds-pointer-arithmetic): tasks of one type, `stride` bytes apart
    for (std::size_t i = 0; i < count_; ++i) start_(base + i * stride_, &latch_);
    return --latch_.count != 0;  // false: all ended already, continue without suspending
  }
  void await_resume() const noexcept {}

 private:
  void* tasks_;
  std::size_t count_;
  std::size_t stride_;
  Start start_;
  WhenAllLatch latch_;
};

template <class T>
void when_all_start(void* task, WhenAllLatch* latch) noexcept {
  auto h = TaskAccess::handle(*static_cast<Task<T>*>(task));
  if (!h || h.done()) contract_violation("aio::when_all of an empty or finished Task");
  h.promise().set_latch(latch);
  h.resume();
}

template <class T>
using WhenAllValue = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
WhenAllValue<T> when_all_take(const Task<T>& task) {
  if constexpr (std::is_void_v<T>) {
    TaskAccess::handle(task).promise().take();
    return {};
  } else {
    return TaskAccess::handle(task).promise().take();
  }
}

// The fixed set of a variadic when_all(): Task<A>, Task<B>, ... of different types.
template <class... Ts>
class WhenAllSet {
 public:
  explicit WhenAllSet(std::tuple<Task<Ts>...>& tasks) noexcept : tasks_(tasks) {}
  [[nodiscard]] bool await_ready() const noexcept { return sizeof...(Ts) == 0; }
  [[nodiscard]] bool await_suspend(std::coroutine_handle<> waiter) noexcept {
    latch_.count = sizeof...(Ts) + 1;
    latch_.waiter = waiter;
    std::apply([this](Task<Ts>&... t) noexcept { (when_all_start<Ts>(std::addressof(t), &latch_), ...); }, tasks_);
    return --latch_.count != 0;
  }
  void await_resume() const noexcept {}

 private:
  std::tuple<Task<Ts>...>& tasks_;  // NOLINT(cppcoreguidelines-avoid-const-or-ref-data-members): lives only inside co_await
  WhenAllLatch latch_;
};

template <class R>
concept task_range = std::ranges::contiguous_range<R> && std::ranges::sized_range<R> &&
                     requires { typename std::ranges::range_value_t<R>::promise_type; } &&
                     std::same_as<std::ranges::range_value_t<R>,
                                  Task<typename std::ranges::range_value_t<R>::value_type>>;

}  // namespace detail

/// Runs `task` on the calling thread, driving `engine` (run_once) until the task ends.
/// Returns: the task's value; rethrows its exception.
/// Notes: breaking the contract aborts with a message: an empty Task; called from inside a
/// completion (nested run); the engine failing to wait (unusable after fork()); the task
/// waiting for something the engine does not run. interrupted (a signal) is retried.
template <class T>
T sync_wait(Engine& engine, Task<T> task) {
  const auto h = detail::TaskAccess::handle(task);
  if (!h) detail::contract_violation("aio::sync_wait of an empty Task");
  if (!h.done()) h.resume();  // runs to its first suspension
  while (!h.done()) {
    auto n = engine.run_once();
    if (!n) {
      if (n.error() == std::errc::interrupted) continue;
      detail::contract_violation(n.error() == std::errc::resource_deadlock_would_occur
                                     ? "aio::sync_wait called from inside a completion"
                                     : "aio::sync_wait: the Engine cannot run (empty, or unusable after fork())");
    }
    if (*n == 0 && engine.idle() && !h.done())
      detail::contract_violation("aio::sync_wait: the task waits for something the Engine does not run");
  }
  return h.promise().take();
}

/// Runs the tasks concurrently (each starts, in order, and runs to its first suspension)
/// and ends when all have ended.
/// Returns: a Task yielding std::tuple of their values, std::monostate for a Task<void>;
/// the first exception (in argument order) is rethrown once all have ended.
template <class... Ts>
Task<std::tuple<detail::WhenAllValue<Ts>...>> when_all(Task<Ts>... tasks) {
  std::tuple<Task<Ts>...> set(std::move(tasks)...);
  co_await detail::WhenAllSet<Ts...>(set);
  co_return std::apply(
      // cppcheck-suppress constParameter ; when_all_take() moves the results out of the tasks
      [](Task<Ts>&... t) { return std::tuple<detail::WhenAllValue<Ts>...>{detail::when_all_take(t)...}; }, set);
}

/// Runs the Task<void>s of `tasks` concurrently and ends when all have ended; the first
/// exception (in range order) is rethrown then. The tasks must outlive the returned Task.
template <class T>
  requires std::is_void_v<T>
Task<void> when_all(std::span<Task<T>> tasks) {
  co_await detail::WhenAllAwaiter(tasks.data(), tasks.size(), sizeof(Task<T>), &detail::when_all_start<T>);
  // cppcheck-suppress constVariable ; when_all_take() moves the result out of the task
  for (Task<T>& t : tasks) detail::when_all_take(t);
}

/// when_all() of Task<T>s with a value: yields a std::vector of their values, in range
/// order (one allocation, for the vector).
template <class T>
  requires(!std::is_void_v<T>)
Task<std::vector<T>> when_all(std::span<Task<T>> tasks) {
  co_await detail::WhenAllAwaiter(tasks.data(), tasks.size(), sizeof(Task<T>), &detail::when_all_start<T>);
  std::vector<T> values;
  values.reserve(tasks.size());
  // cppcheck-suppress [constVariable, useStlAlgorithm] ; when_all_take() moves the result out of the task
  for (Task<T>& t : tasks) values.push_back(detail::when_all_take(t));
  co_return values;
}

/// when_all() of a contiguous container of Tasks (std::vector<Task<T>>, std::array, ...).
template <detail::task_range R>
auto when_all(R& tasks) {
  return when_all(std::span<std::ranges::range_value_t<R>>(std::ranges::data(tasks), std::ranges::size(tasks)));
}

}  // namespace aio
