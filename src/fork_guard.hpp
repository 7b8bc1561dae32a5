// aiopp — private: which process incarnation is running (changes in every forked child).
#pragma once

#include <atomic>
#include <cstdint>

namespace aio::detail {

struct Incarnation {
  std::atomic<std::uint64_t> id{0};
};
// The id lives in a page the kernel wipes in a child: it must be the value itself, never a
// lock beside it (ILP32 targets too: i686 has cmpxchg8b, ARMv7 ldrexd/strexd).
static_assert(std::atomic<std::uint64_t>::is_always_lock_free);

/// The page holding the current incarnation id, once mapped (see fork_guard.cpp).
/// Hidden: one RIP-relative load, no GOT indirection, in position-independent code.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the fork detector is process-wide
extern std::atomic<Incarnation*> g_incarnation __attribute__((visibility("hidden")));

/// First use in this process (or in a forked child): maps the page if needed and claims a
/// fresh id.
[[nodiscard]] std::uint64_t claim_incarnation() noexcept;

/// A non-zero id for the calling process. A child created by fork() (or _Fork(), or clone()
/// without CLONE_VM) gets a different id from its parent's, and never one the parent handed
/// out: the id lives in a MADV_WIPEONFORK page (zeroed in the child by the kernel, Linux >=
/// 4.14) and is also zeroed by a pthread_atfork child handler; a zeroed page makes the
/// child claim the next value of a counter inherited from the parent.
/// Cost on the hot path: two dependent loads, inlined.
[[nodiscard]] inline std::uint64_t process_incarnation() noexcept {
  if (const Incarnation* inc = g_incarnation.load(std::memory_order_acquire); inc != nullptr) [[likely]] {
    const std::uint64_t id = inc->id.load(std::memory_order_relaxed);
    if (id != 0) [[likely]]
      return id;
  }
  return claim_incarnation();
}

}  // namespace aio::detail
