// aiopp benchmarks — the io_uring arm (liburing: IORING_OP_READ / IORING_OP_POLL_ADD).
// Default ring flags (no SQPOLL, no IOPOLL): one io_uring_enter per batch, like one io_submit.
#include "arm.hpp"

#ifdef AIOPP_BENCH_HAVE_LIBURING
#include <liburing.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace bench {
namespace {

constexpr std::size_t max_batch = 128;

class LiburingArm final : public Arm {
 public:
  ~LiburingArm() override { teardown(); }
  [[nodiscard]] const char* name() const noexcept override { return "liburing"; }
  [[nodiscard]] bool supports(const Workload&) const noexcept override { return true; }

  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    if (const int r = ::io_uring_queue_init(256, &ring_, 0); r != 0) return std::strerror(-r);
    live_ = true;
    return {};
  }
  void teardown() noexcept override {
    if (live_) ::io_uring_queue_exit(&ring_);
    live_ = false;
  }

  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) {
        if (!prep(i, slot_offset(w_, i))) return false;
      }
      if (::io_uring_submit(&ring_) != static_cast<int>(n)) return false;
      for (std::size_t got = 0; got < n;) {
        const unsigned r = reap(n - got);
        if (r == 0) return false;
        got += r;
      }
    }
    return true;
  }

  [[nodiscard]] bool run_qd(std::size_t ops) override {
    const std::size_t qd = std::min<std::size_t>(w_.batch, max_batch);
    const std::size_t first = std::min(qd, ops);
    for (std::size_t i = 0; i < first; ++i)
      if (!prep(i, rng_.block(w_.file_size))) return false;
    if (::io_uring_submit(&ring_) != static_cast<int>(first)) return false;
    std::size_t submitted = first;
    std::size_t completed = 0;
    while (completed < ops) {
      io_uring_cqe* cqe = nullptr;
      if (const int w = ::io_uring_wait_cqe(&ring_, &cqe); w == -EINTR) {
        continue;
      } else if (w != 0) {
        return false;
      }
      const unsigned n = ::io_uring_peek_batch_cqe(&ring_, cqes_.data(), static_cast<unsigned>(qd));
      std::size_t k = 0;
      for (unsigned e = 0; e < n; ++e) {
        if (cqes_[e]->res != 4096) return false;
        sink += static_cast<std::uint64_t>(cqes_[e]->res);
        if (submitted < ops) {
          if (!prep(static_cast<std::size_t>(cqes_[e]->user_data), rng_.block(w_.file_size))) return false;
          ++k;
          ++submitted;
        }
      }
      ::io_uring_cq_advance(&ring_, n);
      completed += n;
      if (k != 0 && ::io_uring_submit(&ring_) != static_cast<int>(k)) return false;
    }
    return true;
  }

 private:
  [[nodiscard]] bool prep(std::size_t i, std::int64_t off) noexcept {
    io_uring_sqe* sqe = ::io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return false;
    if (w_.op == Op::poll) {
      ::io_uring_prep_poll_add(sqe, w_.fd, POLLIN);
    } else {
      ::io_uring_prep_read(sqe, w_.fd, w_.buf + i * w_.size, static_cast<unsigned>(w_.size),
                           static_cast<std::uint64_t>(off));
    }
    ::io_uring_sqe_set_data64(sqe, i);
    return true;
  }
  // Reaps up to `want` completions; waits (io_uring_enter) only if none is ready.
  [[nodiscard]] unsigned reap(std::size_t want) noexcept {
    unsigned n = ::io_uring_peek_batch_cqe(&ring_, cqes_.data(), static_cast<unsigned>(want));
    if (n == 0) {
      io_uring_cqe* cqe = nullptr;
      int w = 0;
      while ((w = ::io_uring_wait_cqe(&ring_, &cqe)) == -EINTR) {
      }
      if (w != 0) return 0;
      n = ::io_uring_peek_batch_cqe(&ring_, cqes_.data(), static_cast<unsigned>(want));
    }
    for (unsigned e = 0; e < n; ++e) {
      if (cqes_[e]->res < 0) return 0;
      sink += static_cast<std::uint64_t>(cqes_[e]->res);
    }
    ::io_uring_cq_advance(&ring_, n);
    return n;
  }

  Workload w_{};
  io_uring ring_{};
  bool live_ = false;
  Rng rng_{};
  std::array<io_uring_cqe*, max_batch> cqes_{};
};

}  // namespace

std::unique_ptr<Arm> make_liburing_arm() { return std::make_unique<LiburingArm>(); }

}  // namespace bench

#else

std::unique_ptr<bench::Arm> bench::make_liburing_arm() { return nullptr; }

#endif
