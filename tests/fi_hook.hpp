// Tests linked with aiopp_fi: installs a fault-injection hook for the life of a scope.
#pragma once

#include <functional>
#include <utility>

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

}  // namespace aiotest
