// aiopp — private: which process incarnation is running (changes in every forked child).
#pragma once

#include <cstdint>

namespace aio::detail {

/// A non-zero id for the calling process. A child created by fork() (or _Fork(), or clone()
/// without CLONE_VM) gets a different id from its parent's, and never one the parent handed
/// out: the id lives in a MADV_WIPEONFORK page (zeroed in the child by the kernel, Linux >=
/// 4.14) and is also zeroed by a pthread_atfork child handler; a zeroed page makes the
/// child claim the next value of a counter inherited from the parent.
/// Cost: one guarded static and one load.
[[nodiscard]] std::uint64_t process_incarnation() noexcept;

}  // namespace aio::detail
