// aiopp — buffer.hpp: aio::AlignedBuffer, owned zero-filled memory aligned for O_DIRECT.
//
//     auto caps = aio::probe_fd(fd);                       // aio/probe.hpp
//     std::size_t align = 4096;                            // the page size when unknown
//     if (caps && caps->dio_mem_align) align = *caps->dio_mem_align;
//     auto buf = aio::AlignedBuffer::create(1 << 20, align);
//     if (!buf) return std::unexpected(buf.error());
//     iocb cb = aio::make_pread(fd, *buf, 0);              // it is a contiguous range
//
// Errors: create() reports invalid_argument and not_enough_memory; nothing throws.
// Thread safety: like a std::vector: distinct buffers may be used from any threads; one
// buffer's memory is the caller's to synchronise (the kernel writes it during a read).
// Notes: O_DIRECT needs the memory aligned to probe_fd(fd)->dio_mem_align (std::nullopt:
// unknown, use the page size, sysconf(_SC_PAGESIZE); 0: the file cannot do O_DIRECT), and
// file offsets and lengths that are multiples of dio_offset_align. Free a buffer only after
// the completions of the requests using it have been reaped.
#pragma once

#include <cstddef>
#include <span>
#include <utility>

#include "aio/result.hpp"

namespace aio {

/// A move-only owner of zero-filled memory whose address is a multiple of alignment().
class AlignedBuffer {
 public:
  /// An empty buffer: data() == nullptr, size() == 0, alignment() == 0.
  AlignedBuffer() noexcept = default;

  /// Allocates `size` zero-filled bytes aligned to `alignment`. The allocation is rounded
  /// up to a multiple of `alignment`; size() is `size`.
  /// Returns: the buffer.
  /// Errors: invalid_argument when `size` is 0 or `alignment` is not a power of two (0
  /// included); not_enough_memory when the allocation fails or cannot be represented.
  [[nodiscard]] static Result<AlignedBuffer> create(std::size_t size, std::size_t alignment = 4096) noexcept;

  /// Takes `other`'s memory; `other` is left empty.
  AlignedBuffer(AlignedBuffer&& other) noexcept
      : data_(std::exchange(other.data_, nullptr)),
        size_(std::exchange(other.size_, 0)),
        alignment_(std::exchange(other.alignment_, 0)) {}
  /// Frees this buffer's memory and takes `other`'s; `other` is left empty. A self-move
  /// leaves the buffer unchanged.
  AlignedBuffer& operator=(AlignedBuffer&& other) noexcept {
    if (this != &other) {
      AlignedBuffer old(std::move(*this));
      data_ = std::exchange(other.data_, nullptr);
      size_ = std::exchange(other.size_, 0);
      alignment_ = std::exchange(other.alignment_, 0);
    }
    return *this;
  }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  /// Frees the memory.
  ~AlignedBuffer();

  /// Returns: the first byte; nullptr when empty.
  [[nodiscard]] std::byte* data() noexcept { return data_; }
  [[nodiscard]] const std::byte* data() const noexcept { return data_; }
  /// Returns: the size asked for at create(); 0 when empty.
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  /// Returns: the alignment asked for at create(); 0 when empty.
  [[nodiscard]] std::size_t alignment() const noexcept { return alignment_; }
  /// Returns: true when the buffer owns no memory (default-constructed or moved-from).
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  /// Returns: the whole buffer as a span.
  [[nodiscard]] std::span<std::byte> span() noexcept { return {data_, size_}; }
  [[nodiscard]] std::span<const std::byte> span() const noexcept { return {data_, size_}; }
  /// Returns: span(). A temporary buffer does not convert (the span would dangle).
  operator std::span<std::byte>() & noexcept { return span(); }
  operator std::span<const std::byte>() const& noexcept { return span(); }
  operator std::span<std::byte>() && = delete;
  operator std::span<const std::byte>() const&& = delete;

  /// Returns: the bounds of the bytes, so that the buffer is a contiguous range.
  [[nodiscard]] std::byte* begin() noexcept { return data_; }
  [[nodiscard]] std::byte* end() noexcept { return data_ + size_; }  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): one past the buffer
  [[nodiscard]] const std::byte* begin() const noexcept { return data_; }
  [[nodiscard]] const std::byte* end() const noexcept { return data_ + size_; }  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): one past the buffer

 private:
  // NOLINTNEXTLINE(bugprone-easily-swappable-parameters): private, called once by create()
  AlignedBuffer(std::byte* data, std::size_t size, std::size_t alignment) noexcept
      : data_(data), size_(size), alignment_(alignment) {}

  std::byte* data_ = nullptr;
  std::size_t size_ = 0;
  std::size_t alignment_ = 0;
};

}  // namespace aio
