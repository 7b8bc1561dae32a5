// aiopp — aio::Observer (see include/aio/observer.hpp).
#include "aio/observer.hpp"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <new>

#include "mix64.hpp"

namespace aio {
namespace {

// A raw result is an error only in -4095..-1 (the kernel's errno range): on ILP32 io_setup's
// handle, the ring's address, is a pointer-sized value that may look negative as a long.
constexpr long max_errno = 4095;
[[nodiscard]] constexpr bool is_error(long result) noexcept { return result < 0 && result >= -max_errno; }

using detail::mix64;

// Log-linear bucket: 8 linear steps inside each power of two.
[[nodiscard]] std::size_t latency_bucket(std::uint64_t ns) noexcept {
  if (ns < 8) return static_cast<std::size_t>(ns);
  const auto msb = static_cast<unsigned>(63 - __builtin_clzll(ns));
  const auto minor = static_cast<std::size_t>((ns >> (msb - 3U)) & 7U);
  return std::min<std::size_t>(static_cast<std::size_t>(msb - 2U) * 8U + minor, 64U * 8U - 1U);
}
// The upper edge of a bucket (what a percentile reports).
[[nodiscard]] std::uint64_t bucket_upper(std::size_t b) noexcept {
  if (b < 8) return b;
  const std::size_t msb = b / 8 + 2;
  const std::size_t minor = b % 8;
  return ((8ULL + minor + 1ULL) << (msb - 3U)) - 1ULL;
}

// Raises `max` to `v` if v is larger (concurrent raisers: the largest wins).
void raise_max(std::atomic<std::int64_t>& max, std::uint64_t v) noexcept {
  std::int64_t seen = max.load(std::memory_order_relaxed);
  while (static_cast<std::int64_t>(v) > seen &&
         !max.compare_exchange_weak(seen, static_cast<std::int64_t>(v), std::memory_order_relaxed)) {
  }
}

// Copies the buckets into `counts`; returns their sum.
template <std::size_t N>
[[nodiscard]] std::uint64_t snapshot(const std::array<std::atomic<std::uint64_t>, N>& buckets,
                                     std::array<std::uint64_t, N>& counts) noexcept {
  std::uint64_t total = 0;
  for (std::size_t b = 0; b < N; ++b) {
    counts[b] = buckets[b].load(std::memory_order_relaxed);
    total += counts[b];
  }
  return total;
}

// s.p50/p99/p999 from bucket counts that sum to s.count (> 0); each at most s.max.
template <std::size_t N>
void percentiles(const std::array<std::uint64_t, N>& counts, LatencySummary& s) noexcept {
  auto percentile = [&](double q) {
    // rank <= s.count, the sum of counts: the walk stops inside the array.
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(s.count - 1)) + 1;
    std::size_t b = 0;
    for (std::uint64_t seen = counts[0]; seen < rank; seen += counts[b]) ++b;
    return std::chrono::nanoseconds(static_cast<std::int64_t>(
        std::min<std::uint64_t>(bucket_upper(b), static_cast<std::uint64_t>(s.max.count()))));
  };
  s.p50 = percentile(0.50);
  s.p99 = percentile(0.99);
  s.p999 = percentile(0.999);
}

}  // namespace

const char* to_string(Syscall call) noexcept {
  switch (call) {
    case Syscall::setup: return "io_setup";
    case Syscall::destroy: return "io_destroy";
    case Syscall::submit: return "io_submit";
    case Syscall::cancel: return "io_cancel";
    case Syscall::getevents: return "io_getevents";
    case Syscall::pgetevents: return "io_pgetevents";
  }
  return "io_?";
}

Observer::Observer(std::size_t latency_capacity) noexcept {
  if (latency_capacity == 0) return;
  // 2^43 slots of 16 bytes fill the whole 47-bit user address space (on ILP32 2^26 slots
  // are 1 GiB; 2^27 would pass PTRDIFF_MAX bytes): a larger table can never be allocated,
  // and bounding n keeps n * sizeof(Slot) from overflowing (new[] then throws
  // bad_array_new_length even with nothrow, i.e. std::terminate here) and n * 2 from
  // wrapping to 0 (an endless loop).
  constexpr std::size_t max_slots = std::size_t{1} << (sizeof(std::size_t) == 8 ? 43U : 26U);
  std::size_t n = 16;
  while (n / 2 < latency_capacity && n < max_slots) n *= 2;  // at most half full: short probes
  if (n / 2 < latency_capacity) return;  // more than any table could hold: no tracking
  slots_.reset(new (std::nothrow) Slot[n]);  // NOLINT(cppcoreguidelines-owning-memory): owned by slots_
  if (slots_) slot_mask_ = n - 1;
}

Observer::~Observer() = default;

std::int64_t Observer::now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000LL + ts.tv_nsec;
}

std::uint64_t Observer::total_syscalls() const noexcept {
  std::uint64_t total = 0;
  // cppcheck-suppress useStlAlgorithm ; a plain loop over atomics reads clearer than accumulate + lambda
  for (const auto& c : calls_) total += c.load(std::memory_order_relaxed);
  return total;
}

std::uint64_t Observer::errors(int err) const noexcept {
  if (err < 0) return 0;
  const auto i = static_cast<std::size_t>(err);
  return i < errno_slots ? errors_[i].load(std::memory_order_relaxed) : 0;
}

void Observer::on_syscall(const SyscallInfo& info) noexcept {
  calls_[static_cast<std::size_t>(info.call)].fetch_add(1, std::memory_order_relaxed);
  // cancel's "accepted" is -EINPROGRESS: not an error.
  if (is_error(info.result) && !(info.call == Syscall::cancel && info.result == -EINPROGRESS)) {
    const auto err = static_cast<std::size_t>(-info.result);
    errors_[err < errno_slots ? err : 0].fetch_add(1, std::memory_order_relaxed);
  }
  if (info.call == Syscall::submit && info.nr > 0) {
    const auto bucket = static_cast<std::size_t>(63 - __builtin_clzll(static_cast<unsigned long long>(info.nr)));
    batches_[std::min(bucket, batch_buckets - 1)].fetch_add(1, std::memory_order_relaxed);
  }
  if (info.call == Syscall::submit && info.result > 0)
    submitted_.fetch_add(static_cast<std::uint64_t>(info.result), std::memory_order_relaxed);
  count_tuple(info);
  if (auto* hook = hook_.load(std::memory_order_acquire)) hook(info, hook_user_.load(std::memory_order_relaxed));
}

void Observer::count_tuple(const SyscallInfo& info) noexcept {
  const std::uint64_t tag =
      mix64(static_cast<std::uint64_t>(info.call) * 0x9e3779b97f4a7c15ULL ^
          mix64(static_cast<std::uint64_t>(info.nr)) ^ (mix64(static_cast<std::uint64_t>(info.min_nr)) << 1U) ^
          (mix64(static_cast<std::uint64_t>(info.timeout_ns)) << 2U) ^ (info.sigmask ? 0x5bd1e995ULL : 0)) | 1U;
  for (std::size_t probe = 0; probe < tuple_slots; ++probe) {
    TupleSlot& slot = tuples_[(tag + probe) & (tuple_slots - 1)];
    std::uint64_t seen = slot.tag.load(std::memory_order_acquire);
    if (seen == 0) {
      if (slot.tag.compare_exchange_strong(seen, tag, std::memory_order_acq_rel)) {
        slot.key = CallCount{info.call, info.nr, info.min_nr, info.timeout_ns, info.sigmask, 0};
        slot.ready.store(true, std::memory_order_release);
        slot.count.fetch_add(1, std::memory_order_relaxed);
        return;
      }
    }
    if (seen == tag) {
      slot.count.fetch_add(1, std::memory_order_relaxed);
      return;
    }
  }
  tuple_overflow_.fetch_add(1, std::memory_order_relaxed);
}

std::size_t Observer::top_calls(std::span<CallCount> out) const noexcept {
  std::size_t n = 0;
  for (const auto& slot : tuples_) {
    if (!slot.ready.load(std::memory_order_acquire)) continue;
    CallCount c = slot.key;
    c.count = slot.count.load(std::memory_order_relaxed);
    // Insertion into the sorted prefix of `out` (at most 64 entries: cheap, no allocation).
    std::size_t pos = n < out.size() ? n : out.size();
    while (pos > 0 && out[pos - 1].count < c.count) {
      if (pos < out.size()) out[pos] = out[pos - 1];
      --pos;
    }
    if (pos < out.size()) {
      out[pos] = c;
      if (n < out.size()) ++n;
    }
  }
  return n;
}

void Observer::on_submitted(std::span<iocb* const> accepted, std::int64_t now) noexcept {
  if (!slots_) return;
  for (iocb* cb : accepted) {
    // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): keyed by address, as io_event::obj reports it
    const auto key = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(cb));
    bool stored = false;
    for (std::size_t probe = 0, i = static_cast<std::size_t>(mix64(key) & slot_mask_); probe <= slot_mask_;
         ++probe, i = (i + 1) & slot_mask_) {
      std::uint64_t k = slots_[i].key.load(std::memory_order_relaxed);
      if ((k == 0 || k == 1) && slots_[i].key.compare_exchange_strong(k, key, std::memory_order_acq_rel)) {
        slots_[i].t0.store(now, std::memory_order_release);
        stored = true;
        break;
      }
    }
    if (!stored) untracked_.fetch_add(1, std::memory_order_relaxed);
  }
}

void Observer::on_reaped(std::span<const io_event> events, bool via_ring, std::int64_t now) noexcept {
  (via_ring ? via_ring_ : via_syscall_).fetch_add(events.size(), std::memory_order_relaxed);
  if (!slots_) return;
  for (const io_event& ev : events) {
    const std::uint64_t key = ev.obj;
    for (std::size_t probe = 0, i = static_cast<std::size_t>(mix64(key) & slot_mask_); probe <= slot_mask_;
         ++probe, i = (i + 1) & slot_mask_) {
      std::uint64_t k = slots_[i].key.load(std::memory_order_acquire);
      if (k == 0) break;  // never stored (submitted before attaching, or table was full)
      if (k == key) {
        const std::int64_t t0 = slots_[i].t0.load(std::memory_order_acquire);
        slots_[i].key.store(1, std::memory_order_release);  // tombstone
        record_latency(now - t0);
        break;
      }
    }
  }
}

void Observer::record_latency(std::int64_t ns) noexcept {
  const auto v = static_cast<std::uint64_t>(ns < 0 ? 0 : ns);
  latency_[latency_bucket(v)].fetch_add(1, std::memory_order_relaxed);
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  raise_max(latency_max_, v);
}

LatencySummary Observer::latency() const noexcept {
  LatencySummary s;
  std::array<std::uint64_t, latency_buckets> counts{};
  s.count = snapshot(latency_, counts);
  s.untracked = untracked_.load(std::memory_order_relaxed);
  s.max = std::chrono::nanoseconds(latency_max_.load(std::memory_order_relaxed));
  if (s.count == 0) return s;
  percentiles(counts, s);
  return s;
}

void Observer::reset() noexcept {
  for (auto& c : calls_) c.store(0, std::memory_order_relaxed);
  for (auto& c : errors_) c.store(0, std::memory_order_relaxed);
  for (auto& c : batches_) c.store(0, std::memory_order_relaxed);
  for (auto& c : latency_) c.store(0, std::memory_order_relaxed);
  for (auto& t : tuples_) {
    t.ready.store(false, std::memory_order_relaxed);
    t.count.store(0, std::memory_order_relaxed);
    t.tag.store(0, std::memory_order_release);
  }
  via_ring_ = 0;
  via_syscall_ = 0;
  submitted_ = 0;
  tuple_overflow_ = 0;
  latency_count_ = 0;
  untracked_ = 0;
  latency_max_ = 0;
}

// snprintf into a stack line (GCC 12 has no <format>); called off the I/O path.
// NOLINTBEGIN(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)
// NOLINTBEGIN(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
std::string Observer::summary() const {
  std::string out;
  char line[256];
  auto add = [&](int n) {
    if (n > 0) out.append(line, std::min(static_cast<std::size_t>(n), sizeof line - 1));
  };
  add(std::snprintf(line, sizeof line, "syscalls: %" PRIu64 " total", total_syscalls()));
  for (std::size_t k = 0; k < syscall_kinds; ++k) {
    const auto call = static_cast<Syscall>(k);
    if (syscalls(call) != 0) add(std::snprintf(line, sizeof line, ", %s %" PRIu64, to_string(call), syscalls(call)));
  }
  add(std::snprintf(line, sizeof line, "\nrequests submitted: %" PRIu64 "; events reaped: %" PRIu64
                    " from the ring, %" PRIu64 " by syscall\n",
                    requests_submitted(), events_via_ring(), events_via_syscall()));
  out += "submit batch sizes:";
  bool any = false;
  for (std::size_t b = 0; b < batch_buckets; ++b) {
    if (const auto n = batch_histogram(b); n != 0) {
      add(std::snprintf(line, sizeof line, " [%llu..%llu]x%" PRIu64, 1ULL << b, (2ULL << b) - 1, n));
      any = true;
    }
  }
  out += any ? "\n" : " none\n";
  any = false;
  for (std::size_t e = 0; e < errno_slots; ++e) {
    if (const auto n = errors_[e].load(std::memory_order_relaxed); n != 0) {
      if (!any) out += "errors:";
      add(std::snprintf(line, sizeof line, " errno %zu x%" PRIu64, e, n));
      any = true;
    }
  }
  if (any) out += "\n";
  if (const auto lat = latency(); lat.count != 0) {
    add(std::snprintf(line, sizeof line,
                      "latency (submit->reap, %" PRIu64 " requests): p50 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us\n",
                      lat.count, static_cast<double>(lat.p50.count()) / 1e3, static_cast<double>(lat.p99.count()) / 1e3,
                      static_cast<double>(lat.p999.count()) / 1e3, static_cast<double>(lat.max.count()) / 1e3));
  }
  std::array<CallCount, 5> top{};
  const std::size_t n = top_calls(top);
  if (n != 0) out += "most repeated calls:\n";
  for (std::size_t i = 0; i < n; ++i) {
    const CallCount& c = top[i];
    add(std::snprintf(line, sizeof line, "  %8" PRIu64 "x %s(nr=%ld", c.count, to_string(c.call), c.nr));
    if (c.call == Syscall::getevents || c.call == Syscall::pgetevents) {
      add(std::snprintf(line, sizeof line, ", min_nr=%ld, timeout=", c.min_nr));
      if (c.timeout_ns < 0) {
        out += "none";
      } else {
        add(std::snprintf(line, sizeof line, "%lldns", c.timeout_ns));
      }
      if (c.sigmask) out += ", sigmask";
    }
    out += ")\n";
  }
  return out;
}
// NOLINTEND(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
// NOLINTEND(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)

void LatencyHistogram::record_ns(std::int64_t ns) noexcept {
  const auto v = static_cast<std::uint64_t>(ns < 0 ? 0 : ns);
  counts_[latency_bucket(v)].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  total_ns_.fetch_add(v, std::memory_order_relaxed);
  raise_max(max_, v);
}

LatencySummary LatencyHistogram::summary() const noexcept {
  LatencySummary s;
  std::array<std::uint64_t, buckets> counts{};
  s.count = snapshot(counts_, counts);
  s.max = std::chrono::nanoseconds(max_.load(std::memory_order_relaxed));
  if (s.count == 0) return s;
  percentiles(counts, s);
  return s;
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t b = 0; b < buckets; ++b)
    counts_[b].fetch_add(other.counts_[b].load(std::memory_order_relaxed), std::memory_order_relaxed);
  count_.fetch_add(other.count_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  total_ns_.fetch_add(other.total_ns_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  raise_max(max_, static_cast<std::uint64_t>(other.max_.load(std::memory_order_relaxed)));
}

void LatencyHistogram::reset() noexcept {
  for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  count_.store(0, std::memory_order_relaxed);
  total_ns_.store(0, std::memory_order_relaxed);
  max_.store(0, std::memory_order_relaxed);
}

}  // namespace aio
