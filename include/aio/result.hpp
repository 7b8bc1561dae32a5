// aiopp — result.hpp: the one error model of the library.
//
// Every fallible call returns aio::Result<T> = std::expected<T, std::error_code>.
// Errors carry the kernel's errno in std::system_category(), so they compare equal
// to the portable std::errc values:
//
//     if (auto n = ctx.submit(batch); !n) {
//       if (n.error() == std::errc::resource_unavailable_try_again) { /* ring full: reap */ }
//     }
//
// Nothing in the library throws; nothing reads errno outside the private syscall shim.
#pragma once

#include <cerrno>
#include <expected>
#include <system_error>

namespace aio {

/// The return type of every fallible aiopp call.
template <class T = void>
using Result = std::expected<T, std::error_code>;

/// `std::error_code(err, std::system_category())` — the only way aiopp builds an error.
[[nodiscard]] inline std::error_code make_error_code(int err) noexcept {
  return {err, std::system_category()};
}

/// `std::unexpected` holding `make_error_code(err)`; converts to any `Result<T>`.
[[nodiscard]] inline std::unexpected<std::error_code> fail(int err) noexcept {
  return std::unexpected(make_error_code(err));
}

}  // namespace aio
