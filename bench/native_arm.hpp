// aiopp benchmarks — one loop for every arm that speaks the kernel's native AIO ABI through
// <linux/aio_abi.h> (raw syscall(), aiopp syscall path, aiopp ring path). Only the Backend
// differs, so the arms run byte-for-byte the same loop around it.
#pragma once

#include <linux/aio_abi.h>
#include <poll.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "arm.hpp"

namespace bench {

inline constexpr std::size_t max_batch = 128;
inline constexpr unsigned ring_events = 256;  // io_setup size for every native arm

// Backend concept:
//   std::string create(unsigned nr);            "" on success
//   void destroy() noexcept;
//   static void make_pread(iocb&, int fd, std::byte* buf, std::size_t size, std::int64_t off);
//   static void make_poll(iocb&, int fd);
//   long submit(iocb* const* cbs, std::size_t n);            accepted count or < 0
//   long reap(std::size_t min, io_event* ev, std::size_t nr);   reaped count or -errno
template <class Backend>
class NativeArm final : public Arm {
 public:
  explicit NativeArm(const char* name) noexcept : name_(name) {}
  ~NativeArm() override { teardown(); }

  [[nodiscard]] const char* name() const noexcept override { return name_; }
  [[nodiscard]] bool supports(const Workload&) const noexcept override { return true; }

  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    for (std::size_t i = 0; i < max_batch; ++i) ptrs_[i] = &cbs_[i];
    auto err = be_.create(ring_events);
    live_ = err.empty();
    return err;
  }

  void teardown() noexcept override {
    if (live_) be_.destroy();
    live_ = false;
  }

  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) build(i, slot_offset(w_, i));
      if (!submit_all(0, n)) return false;
      if (!reap_exactly(n)) return false;
    }
    return true;
  }

  [[nodiscard]] bool run_qd(std::size_t ops) override {
    const std::size_t qd = std::min<std::size_t>(w_.batch, max_batch);
    std::size_t submitted = 0;
    std::size_t completed = 0;
    const std::size_t first = std::min(qd, ops);
    for (std::size_t i = 0; i < first; ++i) build(i, rng_.block(w_.file_size));
    if (!submit_all(0, first)) return false;
    submitted = first;
    std::array<iocb*, max_batch> again{};
    while (completed < ops) {
      const long r = be_.reap(1, ev_.data(), qd);
      if (r == -EINTR) continue;  // a stop/continue of the process interrupts a blocked wait
      if (r <= 0) return report("getevents", r);
      std::size_t k = 0;
      for (std::size_t e = 0; e < static_cast<std::size_t>(r); ++e) {
        if (ev_[e].res != 4096) return report("completion res", ev_[e].res);
        sink += static_cast<std::uint64_t>(ev_[e].res);
        if (submitted < ops) {
          const auto slot = static_cast<std::size_t>(ev_[e].data);
          build(slot, rng_.block(w_.file_size));
          again[k++] = &cbs_[slot];
          ++submitted;
        }
      }
      completed += static_cast<std::size_t>(r);
      for (std::size_t done = 0; done < k;) {
        const long s = be_.submit(again.data() + done, k - done);
        if (s <= 0) return report("resubmit", s);
        done += static_cast<std::size_t>(s);
      }
    }
    return true;
  }

 private:
  [[nodiscard]] bool report(const char* what, long long v) const noexcept {
    std::fprintf(stderr, "%s: %s returned %lld\n", name_, what, v);
    return false;
  }

  void build(std::size_t i, std::int64_t off) noexcept {
    if (w_.op == Op::poll) {
      Backend::make_poll(cbs_[i], w_.fd);
    } else {
      Backend::make_pread(cbs_[i], w_.fd, w_.buf + i * w_.size, w_.size, off);
    }
    cbs_[i].aio_data = i;
  }

  [[nodiscard]] bool submit_all(std::size_t from, std::size_t n) {
    for (std::size_t done = from; done < n;) {
      const long r = be_.submit(ptrs_.data() + done, n - done);
      if (r <= 0) return false;
      done += static_cast<std::size_t>(r);
    }
    return true;
  }

  [[nodiscard]] bool reap_exactly(std::size_t n) {
    for (std::size_t got = 0; got < n;) {
      const long r = be_.reap(n - got, ev_.data(), n - got);
      if (r == -EINTR) continue;
      if (r <= 0) return false;
      for (std::size_t e = 0; e < static_cast<std::size_t>(r); ++e) {
        if (ev_[e].res < 0) return false;
        sink += static_cast<std::uint64_t>(ev_[e].res);
      }
      got += static_cast<std::size_t>(r);
    }
    return true;
  }

  const char* name_;
  Backend be_{};
  Workload w_{};
  bool live_ = false;
  Rng rng_{};
  alignas(64) std::array<iocb, max_batch> cbs_{};
  std::array<iocb*, max_batch> ptrs_{};
  std::array<io_event, max_batch> ev_{};
};

}  // namespace bench
