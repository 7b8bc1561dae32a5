// aiopp — fork detection (see fork_guard.hpp).
#include "fork_guard.hpp"

#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <new>

namespace aio::detail {
namespace {

struct Incarnation {
  std::atomic<std::uint64_t> id{0};
};

// Copied into a child like any memory: every id it holds was handed out by an ancestor.
std::atomic<std::uint64_t> g_last_id{0};
// Used only if the page cannot be mapped; then the pthread_atfork handler alone resets it.
Incarnation g_fallback;

Incarnation* g_current = nullptr;

void on_fork_child() noexcept { g_current->id.store(0, std::memory_order_relaxed); }

Incarnation* map_incarnation() noexcept {
  const long page = ::sysconf(_SC_PAGESIZE);
  void* p = ::mmap(nullptr, static_cast<std::size_t>(page > 0 ? page : 4096), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    g_current = &g_fallback;
  } else {
#ifdef MADV_WIPEONFORK
    // Linux >= 4.14: the child sees this page zero-filled. EINVAL on older kernels is fine:
    // the atfork handler below still covers fork().
    (void)::madvise(p, static_cast<std::size_t>(page > 0 ? page : 4096), MADV_WIPEONFORK);
#endif
    g_current = new (p) Incarnation{};  // placement into the fresh anonymous page
  }
  (void)::pthread_atfork(nullptr, nullptr, &on_fork_child);
  return g_current;
}

}  // namespace

std::uint64_t process_incarnation() noexcept {
  static Incarnation* const inc = map_incarnation();
  std::uint64_t id = inc->id.load(std::memory_order_acquire);
  if (id != 0) [[likely]]
    return id;
  // First use in this process (or in this child): claim a fresh id.
  const std::uint64_t fresh = g_last_id.fetch_add(1, std::memory_order_relaxed) + 1;
  if (inc->id.compare_exchange_strong(id, fresh, std::memory_order_acq_rel)) return fresh;
  return id;  // another thread claimed one first
}

}  // namespace aio::detail
