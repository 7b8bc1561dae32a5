// Tests linked with aiopp_fi: the fault-injection harness. ScopedHook routes every syscall of
// the shim through a function for the life of a scope; Recorder is a ScopedHook that also
// keeps a copy of each call's arguments.
#pragma once

#include <signal.h>

#include <cstddef>
#include <functional>
#include <utility>
#include <vector>

#include "syscall_testing.hpp"

namespace aiotest {

namespace fi = aio::sys::testing;

/// Routes every syscall of the shim through `fn` (which may call fi::passthrough) until the
/// object goes out of scope.
struct ScopedHook {
  std::function<long(fi::Args&)> fn;
  explicit ScopedHook(std::function<long(fi::Args&)> f) : fn(std::move(f)) {
    fi::set_hook([](fi::Args& a, void* u) -> long { return (*static_cast<ScopedHook*>(u)).fn(a); }, this);
  }
  ScopedHook(const ScopedHook&) = delete;
  ScopedHook& operator=(const ScopedHook&) = delete;
  ~ScopedHook() { fi::set_hook(nullptr, nullptr); }
};

/// One syscall as the hook saw it, copied (the pointers in fi::Args point into the library's
/// stack frame).
struct SeenCall {
  aio::sys::Call call;
  aio_context_t ctx;
  long nr;
  long min_nr;
  iocb* const* iocbs;
  iocb* cb;
  bool has_timeout;
  aio::sys::KernelTimespec timeout;
  bool has_sig;
  const sigset_t* sigmask;
  std::size_t sigsetsize;
};

/// Records every syscall of the shim, then answers it with `answer` (empty: the real kernel),
/// until the object goes out of scope. Single-threaded: `calls` is not synchronised.
struct Recorder {
  std::vector<SeenCall> calls;
  std::function<long(fi::Args&)> answer;

  /// How many recorded calls are of kind `c`.
  [[nodiscard]] std::size_t count(aio::sys::Call c) const {
    std::size_t n = 0;
    for (const SeenCall& s : calls) n += s.call == c;
    return n;
  }
  /// From now on every call of kind `which` fails with `err`; the others reach the kernel.
  void fail(aio::sys::Call which, int err) {
    answer = [which, err](fi::Args& a) -> long { return a.call == which ? -err : fi::passthrough(a); };
  }

 private:
  long record(fi::Args& a) {
    SeenCall s{a.call, a.ctx, a.nr, a.min_nr, a.iocbs, a.cb, a.timeout != nullptr, {}, a.sig != nullptr, nullptr, 0};
    if (a.timeout != nullptr) s.timeout = *a.timeout;
    if (a.sig != nullptr) {
      s.sigmask = a.sig->sigmask;
      s.sigsetsize = a.sig->sigsetsize;
    }
    calls.push_back(s);
    return answer ? answer(a) : fi::passthrough(a);
  }
  ScopedHook hook_{[this](fi::Args& a) { return record(a); }};  // last: installed after the rest
};

}  // namespace aiotest
