// aiopp — fork detection (see fork_guard.hpp).
#include "fork_guard.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <new>

namespace aio::detail {

// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the fork detector is process-wide
std::atomic<Incarnation*> g_incarnation{nullptr};

namespace {

// Copied into a child like any memory: every id it holds was handed out by an ancestor.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): process-wide id counter
std::atomic<std::uint64_t> g_last_id{0};
// Used only if the page cannot be mapped; then the pthread_atfork handler alone resets it.
// NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): process-wide fallback
Incarnation g_fallback;

void on_fork_child() noexcept {
  if (Incarnation* inc = g_incarnation.load(std::memory_order_relaxed)) inc->id.store(0, std::memory_order_relaxed);
}

Incarnation* map_incarnation() noexcept {
  const long page_size = ::sysconf(_SC_PAGESIZE);
  const auto len = static_cast<std::size_t>(page_size > 0 ? page_size : 4096);
  Incarnation* inc = &g_fallback;
  // cppcheck-suppress invalidFunctionArg ; MAP_ANONYMOUS takes fd -1 (cppcheck's posix.cfg wants fd >= 0)
  void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p != MAP_FAILED) {
#ifdef MADV_WIPEONFORK
    // Linux >= 4.14: the child sees this page zero-filled. EINVAL on older kernels is fine:
    // the atfork handler below still covers fork().
    (void)::madvise(p, len, MADV_WIPEONFORK);
#endif
    // NOLINTNEXTLINE(cppcoreguidelines-owning-memory): placement into the mapping, kept for the process's life
    inc = new (p) Incarnation{};  // placement into the fresh anonymous page
  }
  (void)::pthread_atfork(nullptr, nullptr, &on_fork_child);
  g_incarnation.store(inc, std::memory_order_release);
  return inc;
}

}  // namespace

std::uint64_t claim_incarnation() noexcept {
  // NOLINTNEXTLINE(cppcoreguidelines-avoid-non-const-global-variables): the process's one incarnation page
  static Incarnation* const inc = map_incarnation();  // once per process image (thread-safe)
  std::uint64_t id = inc->id.load(std::memory_order_acquire);
  if (id != 0) return id;
  const std::uint64_t fresh = g_last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  if (inc->id.compare_exchange_strong(id, fresh, std::memory_order_acq_rel)) return fresh;
  return id;  // another thread claimed one first
}

}  // namespace aio::detail
