// aiopp — aligned buffers (see include/aio/buffer.hpp for the contract).
#include "aio/buffer.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace aio {

Result<AlignedBuffer> AlignedBuffer::create(std::size_t size, std::size_t alignment) noexcept {
  if (size == 0 || alignment == 0 || (alignment & (alignment - 1)) != 0) return fail(EINVAL);
  // aligned_alloc wants a multiple of the alignment; nothing beyond PTRDIFF_MAX can be an
  // object (and sanitizer allocators abort on such requests instead of failing).
  constexpr auto max_bytes = static_cast<std::size_t>(PTRDIFF_MAX);
  if (size > max_bytes - (alignment - 1)) return fail(ENOMEM);
  const std::size_t bytes = (size + alignment - 1) & ~(alignment - 1);
  // NOLINTNEXTLINE(cppcoreguidelines-owning-memory,cppcoreguidelines-no-malloc): the AlignedBuffer below owns it
  void* p = std::aligned_alloc(alignment, bytes);
  if (p == nullptr) return fail(ENOMEM);
  std::memset(p, 0, bytes);
  return AlignedBuffer(static_cast<std::byte*>(p), size, alignment);
}

// NOLINTNEXTLINE(cppcoreguidelines-owning-memory,cppcoreguidelines-no-malloc): the RAII owner of aligned_alloc's memory
AlignedBuffer::~AlignedBuffer() { std::free(data_); }

}  // namespace aio
