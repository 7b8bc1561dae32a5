// aiopp fuzzer — the userspace completion-ring reader (src/ring.hpp) against a synthetic ring.
//
// The ring is one heap allocation of exactly sizeof(RingHeader) + nr * sizeof(io_event)
// bytes, nr (the size fixed at setup, passed to every call) taken from the input, so ASan
// reports any access outside it. The header (id, nr, head, tail, magic, feature words,
// header_length) is filled from the input, each field either the value a good ring has or
// arbitrary bits; then a sequence of ring_ready / ring_reap_at_least calls (min 0 or not) with
// arbitrary min/max (the output array has exactly `max` slots, again so ASan sees overruns),
// interleaved with "kernel" writes of head/tail/header words. Every result is compared with
// a plain model:
//   - a corrupt header (nr 0, bad magic, incompat features, header_length, header nr != nr,
//     head or tail >= nr) gives RingStatus::not_usable and leaves the ring byte-for-byte untouched;
//   - otherwise ready = (tail - head) mod nr; reap_at_least returns RingStatus::too_few (ring
//     untouched) when ready < min, else n = min(ready, max) <= max, the events copied are
//     exactly slots head, head+1, ... (mod nr) in order, head advances by n mod nr and
//     nothing else in the ring changes.
// Any violation calls __builtin_trap(). Input layout: see Input below (a short input is
// padded with zeros, so every input is valid).
#include <linux/aio_abi.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>

#include "ring.hpp"

#include "fuzz_input.hpp"

namespace {

using aio::detail::RingHeader;

using aiofuzz::Input;

using aiofuzz::check;

// Event slot i of a ring: recognisable contents, so a copy from the wrong slot is caught.
io_event slot_event(std::uint32_t i, std::uint64_t salt) noexcept {
  io_event ev{};
  ev.data = (static_cast<std::uint64_t>(i) << 32) ^ salt;
  ev.obj = ~static_cast<std::uint64_t>(i) ^ (salt << 7);
  ev.res = static_cast<std::int64_t>(i) - 7;
  ev.res2 = static_cast<std::int64_t>(salt >> 3) + i;
  return ev;
}

bool same_event(const io_event& a, const io_event& b) noexcept {
  return a.data == b.data && a.obj == b.obj && a.res == b.res && a.res2 == b.res2;
}

// A header word: the good value, or arbitrary bits from the input.
std::uint32_t field(Input& in, std::uint32_t good) noexcept {
  const auto how = in.get<std::uint8_t>();
  if (how % 4 != 0) return good;  // mostly good, so the deep paths are reached
  return in.get<std::uint32_t>();
}

// A position (head or tail): in range mostly, sometimes arbitrary.
std::uint32_t position(Input& in, std::uint32_t nr) noexcept {
  const auto how = in.get<std::uint8_t>();
  const auto v = in.get<std::uint32_t>();
  if (how % 8 == 0 || nr == 0) return v;
  if (how % 8 == 1) return nr - 1 + (v % 3);  // around the end: nr - 1, nr, nr + 1
  return v % nr;
}

struct Ring {
  std::uint32_t nr;  // what setup said: the true number of slots
  std::size_t bytes;
  std::unique_ptr<unsigned char[]> mem;
  RingHeader* header() noexcept { return reinterpret_cast<RingHeader*>(mem.get()); }
  const io_event* events() noexcept {
    return reinterpret_cast<const io_event*>(mem.get() + sizeof(RingHeader));
  }
};

// What the reader must conclude from the ring's bytes right now.
struct Model {
  bool header_ok = false;  // ring_header_ok(): the layout words only
  bool usable = false;     // and head/tail in range
  std::uint32_t head = 0;
  std::size_t ready = 0;
};

Model model_of(Ring& r) noexcept {
  RingHeader h;
  std::memcpy(&h, r.mem.get(), sizeof h);
  Model m;
  m.header_ok = r.nr != 0 && h.magic == aio::detail::ring_magic && h.incompat_features == 0 &&
                h.header_length == sizeof(RingHeader) && h.nr == r.nr;
  m.usable = m.header_ok && h.head < r.nr && h.tail < r.nr;
  if (!m.usable) return m;
  m.head = h.head;
  m.ready = h.tail >= h.head ? h.tail - h.head : std::size_t{r.nr} - h.head + h.tail;
  return m;
}

// A copy of the ring's bytes before a call (static: no allocation churn per call).
constexpr std::size_t max_ring_bytes = sizeof(RingHeader) + 4095 * sizeof(io_event);
unsigned char g_before[max_ring_bytes];

const unsigned char* snapshot(const Ring& r) noexcept {
  std::memcpy(g_before, r.mem.get(), r.bytes);
  return g_before;
}

// The ring must be unchanged, except (when head_may_change) the head word.
void check_untouched(Ring& r, const unsigned char* before, bool head_may_change) {
  constexpr std::size_t head_at = offsetof(RingHeader, head);
  if (!head_may_change) {
    check(std::memcmp(r.mem.get(), before, r.bytes) == 0);
    return;
  }
  check(std::memcmp(r.mem.get(), before, head_at) == 0);
  check(std::memcmp(r.mem.get() + head_at + 4, before + head_at + 4, r.bytes - head_at - 4) == 0);
}

void reap_call(Ring& r, Input& in, bool at_least) {
  const auto max_raw = in.get<std::uint16_t>();
  const auto min_raw = at_least ? in.get<std::uint16_t>() : std::uint16_t{0};
  // max up to 2 * nr + 3 (beyond the ring on purpose), min up to nr + 3 (beyond what can be ready).
  const std::size_t max = max_raw % (2 * std::size_t{r.nr} + 4);
  const std::size_t min = min_raw % (std::size_t{r.nr} + 4);
  // The output array has max + spare slots (spare 0..3 from the input): with spare == 0,
  // writing out[max] is a heap overflow ASan reports; otherwise the spare slots hold a
  // canary that must survive.
  const std::size_t spare = (max_raw >> 14) & 3U;
  std::unique_ptr<io_event[]> out(new io_event[max + spare]);
  const io_event canary = slot_event(0xfeedU, ~std::uint64_t{0});
  for (std::size_t i = max; i < max + spare; ++i) out[i] = canary;
  const Model m = model_of(r);
  const unsigned char* before = snapshot(r);

  const std::size_t want_min = at_least ? min : 0;
  const aio::detail::RingCount res = aio::detail::ring_reap_at_least(r.header(), r.nr, out.get(), max, want_min);
  const std::size_t got = res.count;
  for (std::size_t i = max; i < max + spare; ++i) check(same_event(out[i], canary));
  if (!m.usable) {
    check(res.status == aio::detail::RingStatus::not_usable && got == 0);
    check_untouched(r, before, false);
    return;
  }
  if (m.ready < want_min) {
    check(res.status == aio::detail::RingStatus::too_few && got == 0);
    check_untouched(r, before, false);
    return;
  }
  const std::size_t n = m.ready < max ? m.ready : max;
  check(res.status == aio::detail::RingStatus::ok);
  check(got == n);
  check(got <= max);
  const io_event* ev = reinterpret_cast<const io_event*>(before + sizeof(RingHeader));
  for (std::size_t i = 0; i < n; ++i) check(same_event(out[i], ev[(m.head + i) % r.nr]));
  check_untouched(r, before, true);
  std::uint32_t head_now;
  std::memcpy(&head_now, r.mem.get() + offsetof(RingHeader, head), 4);
  check(head_now == static_cast<std::uint32_t>((m.head + n) % r.nr));
}

void ready_call(Ring& r) {
  const Model m = model_of(r);
  const unsigned char* before = snapshot(r);
  std::uint32_t head = 0xdeadbeefU;
  const aio::detail::RingCount ra = aio::detail::ring_ready(r.header(), r.nr, head);
  const aio::detail::RingCount rb = aio::detail::ring_ready(r.header(), r.nr);
  check(ra.status == rb.status && ra.count == rb.count);
  const std::size_t a = ra.count;
  check(aio::detail::ring_header_ok(r.header(), r.nr) == m.header_ok);
  if (m.usable) {
    check(ra.ok());
    check(a == m.ready);
    check(a < r.nr);
    check(head == m.head);
  } else {
    check(ra.status == aio::detail::RingStatus::not_usable && a == 0);
  }
  check_untouched(r, before, false);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  Input in{data, size};
  // Input: nr (u16, up to 4095 slots), salt (u64), header fields, then operations.
  Ring r;
  r.nr = in.get<std::uint16_t>() % 4096U;
  r.bytes = sizeof(RingHeader) + std::size_t{r.nr} * sizeof(io_event);
  r.mem.reset(new unsigned char[r.bytes]);
  const auto salt = in.get<std::uint64_t>();
  for (std::uint32_t i = 0; i < r.nr; ++i) {
    const io_event ev = slot_event(i, salt);
    std::memcpy(r.mem.get() + sizeof(RingHeader) + i * sizeof(io_event), &ev, sizeof ev);
  }
  RingHeader h{};
  h.id = in.get<std::uint32_t>();
  h.nr = field(in, r.nr);
  h.head = position(in, r.nr);
  h.tail = position(in, r.nr);
  h.magic = field(in, aio::detail::ring_magic);
  h.compat_features = field(in, 1);
  h.incompat_features = field(in, 0);
  h.header_length = field(in, sizeof(RingHeader));
  std::memcpy(r.mem.get(), &h, sizeof h);

  check(!aio::detail::ring_header_ok(nullptr, r.nr));

  // At most 64 operations per input keep every run fast.
  for (int ops = 0; ops < 64 && !in.empty(); ++ops) {
    const auto op = in.get<std::uint8_t>();
    switch (op % 6) {
      case 0:
        ready_call(r);
        break;
      case 1:
        reap_call(r, in, false);
        break;
      case 2:
        reap_call(r, in, true);
        break;
      case 3: {  // the kernel appends completions: tail moves (and the slots get new contents)
        const auto add = in.get<std::uint16_t>();
        if (r.nr == 0) break;
        std::uint32_t tail;
        std::memcpy(&tail, r.mem.get() + offsetof(RingHeader, tail), 4);
        for (std::uint32_t k = 0; k < add % r.nr; ++k) {
          const std::uint32_t slot = (tail + k) % r.nr;
          const io_event ev = slot_event(slot, salt + op + k);
          std::memcpy(r.mem.get() + sizeof(RingHeader) + std::size_t{slot} * sizeof(io_event), &ev, sizeof ev);
        }
        tail = static_cast<std::uint32_t>((std::uint64_t{tail} + add % r.nr) % r.nr);
        std::memcpy(r.mem.get() + offsetof(RingHeader, tail), &tail, 4);
        break;
      }
      case 4: {  // a header word changes under the reader (corruption, or a hostile process)
        const auto which = in.get<std::uint8_t>() % 8;
        const auto value = in.get<std::uint32_t>();
        std::memcpy(r.mem.get() + which * 4, &value, 4);
        break;
      }
      case 5: {  // a position is set back in range (so corrupt rings can become usable again)
        const auto which = in.get<std::uint8_t>() % 2;
        const std::uint32_t v = position(in, r.nr);
        std::memcpy(r.mem.get() + offsetof(RingHeader, head) + which * 4, &v, 4);
        break;
      }
    }
  }
  return 0;
}
