// aiopp — private: reading the kernel's AIO completion ring from user space.
//
// io_setup() maps a `struct aio_ring` (fs/aio.c) into the process and returns its address
// as the aio_context_t. The kernel appends completions at `tail` (events first, then the
// tail store after a write barrier) and consumes at `head` — which the kernel documents as
// "written to by userland or under ring_lock mutex by aio_read_events_ring". So a single
// reaper may copy events out and advance head itself, with no syscall, as long as no
// io_getevents runs on the same context at the same time (Context guarantees that).
//
// These functions are pure over a ring header and take the event count fixed at setup
// (`nr`) as a parameter: they never trust the in-memory header for bounds, so a corrupt
// or hostile header can make them refuse (RingStatus::not_usable) but never read or write
// outside [ring, ring + header_length + nr * sizeof(io_event)).
#pragma once

#include <linux/aio_abi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace aio::detail {

struct RingHeader {
  std::uint32_t id;
  std::uint32_t nr;  // io_event slots that follow the header
  std::uint32_t head;
  std::uint32_t tail;
  std::uint32_t magic;
  std::uint32_t compat_features;
  std::uint32_t incompat_features;
  std::uint32_t header_length;  // sizeof(struct aio_ring)
};
static_assert(sizeof(RingHeader) == 32);
// struct io_event has 64-bit fields on every ABI (ILP32 too), so the slots that follow the
// header have the same layout everywhere, and the header keeps them 8-byte aligned.
static_assert(sizeof(io_event) == 32 && alignof(io_event) <= 8 && sizeof(RingHeader) % alignof(io_event) == 0);

inline constexpr std::uint32_t ring_magic = 0xa10a10a1U;

[[nodiscard]] inline std::uint32_t ring_load(const std::uint32_t& field, std::memory_order order) noexcept {
  // The ring is shared with the kernel: every access is atomic.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-const-cast): C++23 has no atomic_ref<const T>; this only loads
  return std::atomic_ref<std::uint32_t>(const_cast<std::uint32_t&>(field)).load(order);
}

/// True when the ring at `ring` has the layout this code knows (checked once at setup, and
/// again by every reap): magic, no incompatible features, our header length, `nr` slots.
[[nodiscard]] inline bool ring_header_ok(const RingHeader* ring, std::uint32_t nr) noexcept {
  return ring != nullptr && nr != 0 &&
         ring_load(ring->magic, std::memory_order_relaxed) == ring_magic &&
         ring_load(ring->incompat_features, std::memory_order_relaxed) == 0 &&
         ring_load(ring->header_length, std::memory_order_relaxed) == sizeof(RingHeader) &&
         ring_load(ring->nr, std::memory_order_relaxed) == nr;
}

[[nodiscard]] inline io_event* ring_events(RingHeader* ring) noexcept {
  // The events follow the header (ring ABI), 8-byte aligned: the ring is page-aligned and
  // the header is 32 bytes. Through void*: strict-alignment targets warn on a char* cast.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,cppcoreguidelines-pro-bounds-pointer-arithmetic)
  return static_cast<io_event*>(static_cast<void*>(reinterpret_cast<unsigned char*>(ring) + sizeof(RingHeader)));
}

/// What the ring reader found.
enum class RingStatus : std::uint8_t {
  ok,          ///< count is valid (events ready, or copied)
  too_few,     ///< fewer than min_nr ready: nothing touched
  not_usable,  ///< unexpected header, or head/tail out of range: nothing touched
};

/// A count with the status that says whether it means anything.
struct RingCount {
  std::size_t count = 0;
  RingStatus status = RingStatus::ok;
  [[nodiscard]] bool ok() const noexcept { return status == RingStatus::ok; }
};

/// Completions ready in the ring and the head they start at.
/// Returns: not_usable for an unexpected header or a head/tail out of range.
/// Notes: one header check, a relaxed load of head (only a reaper writes it) and an acquire
/// load of tail (the events before it are written).
[[nodiscard]] inline RingCount ring_ready(const RingHeader* ring, std::uint32_t nr, std::uint32_t& head) noexcept {
  if (!ring_header_ok(ring, nr)) [[unlikely]]
    return {0, RingStatus::not_usable};
  head = ring_load(ring->head, std::memory_order_relaxed);
  const std::uint32_t tail = ring_load(ring->tail, std::memory_order_acquire);
  if (head >= nr || tail >= nr) [[unlikely]]
    return {0, RingStatus::not_usable};
  return {tail >= head ? std::size_t{tail - head} : std::size_t{nr} - head + tail, RingStatus::ok};
}

/// Completions ready in the ring.
[[nodiscard]] inline RingCount ring_ready(const RingHeader* ring, std::uint32_t nr) noexcept {
  std::uint32_t head = 0;
  return ring_ready(ring, nr, head);
}

/// Copies up to `max` ready completions into `out` and advances head past them, if at least
/// `min_nr` are ready.
/// Returns: how many were copied; too_few (nothing touched) when fewer than min_nr are ready;
/// not_usable (nothing touched) for an unexpected header or head/tail.
/// Notes: head is stored with release, so the kernel sees the slots free only after the copies.
/// The caller guarantees it is the only reaper of this ring right now.
// NOLINTBEGIN(bugprone-easily-swappable-parameters): max, then min_nr (io_getevents has min_nr, nr)
[[nodiscard]] inline RingCount ring_reap_at_least(RingHeader* ring, std::uint32_t nr, io_event* out,
                                                  std::size_t max, std::size_t min_nr) noexcept {
  std::uint32_t head = 0;
  const RingCount ready = ring_ready(ring, nr, head);
  if (!ready.ok()) [[unlikely]]
    return ready;
  if (ready.count < min_nr) return {0, RingStatus::too_few};
  const std::size_t n = ready.count < max ? ready.count : max;
  if (n == 0) return {0, RingStatus::ok};
  const io_event* events = ring_events(ring);
  // Copy with wrap at the ring's own size (not the caller's), slot by slot: batches are
  // usually small, and a 32-byte struct copy beats a memcpy call.
  std::uint32_t slot = head;
  for (std::size_t i = 0; i < n; ++i) {
    out[i] = events[slot];  // NOLINT(cppcoreguidelines-pro-bounds-pointer-arithmetic): i < max, slot < nr
    slot = slot + 1 == nr ? 0 : slot + 1;
  }
  std::atomic_ref<std::uint32_t>(ring->head).store(slot, std::memory_order_release);
  return {n, RingStatus::ok};
}
// NOLINTEND(bugprone-easily-swappable-parameters)

}  // namespace aio::detail
