// aiopp — syscall_kind.hpp: the AIO syscalls, named once for the observer and the shim.
#pragma once

#include <cstddef>
#include <cstdint>

namespace aio {

/// One of the six Linux AIO syscalls.
enum class Syscall : std::uint8_t { setup, destroy, submit, cancel, getevents, pgetevents };

/// How many Syscall values there are (for tables indexed by Syscall).
inline constexpr std::size_t syscall_kinds = 6;

/// The syscall's name: "io_setup", "io_destroy", "io_submit", "io_cancel", "io_getevents",
/// "io_pgetevents"; "io_?" for a value outside the enum.
/// Thread safety: any thread.
[[nodiscard]] const char* to_string(Syscall call) noexcept;

}  // namespace aio
