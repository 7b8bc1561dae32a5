// aiopp benchmarks — the libaio arm (io_submit / io_getevents from libaio). Its own
// translation unit: <libaio.h> redefines struct iocb / io_event of <linux/aio_abi.h>.
#include "arm.hpp"

#ifdef AIOPP_BENCH_HAVE_LIBAIO
#include <libaio.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

namespace bench {
namespace {

constexpr std::size_t max_batch = 128;

class LibaioArm final : public Arm {
 public:
  ~LibaioArm() override { teardown(); }
  [[nodiscard]] const char* name() const noexcept override { return "libaio"; }
  [[nodiscard]] bool supports(const Workload&) const noexcept override { return true; }

  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    for (std::size_t i = 0; i < max_batch; ++i) ptrs_[i] = &cbs_[i];
    ctx_ = nullptr;
    if (const int r = ::io_setup(256, &ctx_); r != 0) return std::strerror(-r);
    live_ = true;
    return {};
  }
  void teardown() noexcept override {
    if (live_) (void)::io_destroy(ctx_);
    live_ = false;
  }

  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) build(i, slot_offset(w_, i));
      if (!submit_all(ptrs_.data(), n)) return false;
      for (std::size_t got = 0; got < n;) {
        const int r = ::io_getevents(ctx_, static_cast<long>(n - got), static_cast<long>(n - got), ev_.data(), nullptr);
        if (r == -EINTR) continue;
        if (r <= 0) return false;
        for (int e = 0; e < r; ++e) {
          const auto res = static_cast<long>(ev_[static_cast<std::size_t>(e)].res);
          if (res < 0) return false;
          sink += static_cast<std::uint64_t>(res);
        }
        got += static_cast<std::size_t>(r);
      }
    }
    return true;
  }

  [[nodiscard]] bool run_qd(std::size_t ops) override {
    const std::size_t qd = std::min<std::size_t>(w_.batch, max_batch);
    const std::size_t first = std::min(qd, ops);
    for (std::size_t i = 0; i < first; ++i) build(i, rng_.block(w_.file_size));
    if (!submit_all(ptrs_.data(), first)) return false;
    std::size_t submitted = first;
    std::size_t completed = 0;
    std::array<struct iocb*, max_batch> again{};
    while (completed < ops) {
      const int r = ::io_getevents(ctx_, 1, static_cast<long>(qd), ev_.data(), nullptr);
      if (r == -EINTR) continue;
      if (r <= 0) return false;
      std::size_t k = 0;
      for (int e = 0; e < r; ++e) {
        const io_event& ev = ev_[static_cast<std::size_t>(e)];
        if (static_cast<long>(ev.res) != 4096) return false;
        sink += ev.res;
        if (submitted < ops) {
          const auto slot = static_cast<std::size_t>(reinterpret_cast<std::uintptr_t>(ev.data));
          build(slot, rng_.block(w_.file_size));
          again[k++] = &cbs_[slot];
          ++submitted;
        }
      }
      completed += static_cast<std::size_t>(r);
      if (!submit_all(again.data(), k)) return false;
    }
    return true;
  }

 private:
  void build(std::size_t i, std::int64_t off) noexcept {
    if (w_.op == Op::poll) {
      ::io_prep_poll(&cbs_[i], w_.fd, POLLIN);
    } else {
      ::io_prep_pread(&cbs_[i], w_.fd, w_.buf + i * w_.size, w_.size, off);
    }
    cbs_[i].data = reinterpret_cast<void*>(i);
  }
  [[nodiscard]] bool submit_all(struct iocb** cbs, std::size_t n) noexcept {
    for (std::size_t done = 0; done < n;) {
      const int r = ::io_submit(ctx_, static_cast<long>(n - done), cbs + done);
      if (r <= 0) return false;
      done += static_cast<std::size_t>(r);
    }
    return true;
  }

  Workload w_{};
  io_context_t ctx_ = nullptr;
  bool live_ = false;
  Rng rng_{};
  std::array<struct iocb, max_batch> cbs_{};
  std::array<struct iocb*, max_batch> ptrs_{};
  std::array<io_event, max_batch> ev_{};
};

}  // namespace

std::unique_ptr<Arm> make_libaio_arm() { return std::make_unique<LibaioArm>(); }

}  // namespace bench

#else

std::unique_ptr<bench::Arm> bench::make_libaio_arm() { return nullptr; }

#endif
