// aiopp benchmarks — the completion engine's two paths as arms of aiopp-bench-compare:
//
//   engine-cb    Ops with an on_complete function: start() n of them, run_once() until all
//                n completions ran (one io_submit of n, one reap of n from the ring).
//   engine-coro  n coroutines (aio::Task), each looping `co_await e.read(...)` (or poll);
//                one sync_wait(when_all(...)) drives them: every run_once() reaps the n
//                completions, the resumed coroutines start their next request, and the
//                trailing flush submits those n in one io_submit.
//
// Both make exactly the syscalls of the aiopp-ring arm (io_submit of n, ring reaping): the
// difference to it is the engine's own user-space work per request.
#include <poll.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "aio/engine.hpp"
#include "aio/task.hpp"
#include "arm.hpp"

namespace bench {
namespace {

constexpr std::size_t engine_max_batch = 128;
constexpr unsigned engine_depth = 256;  // as the native arms' io_setup size

class EngineArmBase : public Arm {
 public:
  [[nodiscard]] bool supports(const Workload& w) const noexcept override { return w.batch <= engine_max_batch; }
  [[nodiscard]] std::string setup(const Workload& w) override {
    w_ = w;
    auto e = aio::Engine::create({.queue_depth = engine_depth});
    if (!e) return e.error().message();
    engine_ = std::move(*e);
    return {};
  }
  void teardown() noexcept override { engine_ = aio::Engine{}; }

 protected:
  [[nodiscard]] iocb request(std::size_t i) const noexcept {
    if (w_.op == Op::poll) return aio::make_poll(w_.fd, POLLIN);
    return aio::make_pread(w_.fd, std::span<std::byte>(w_.buf + i * w_.size, w_.size), slot_offset(w_, i));
  }

  Workload w_{};
  aio::Engine engine_;
};

// ---- callbacks --------------------------------------------------------------------------------
class EngineCallbackArm final : public EngineArmBase {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "engine-cb"; }

  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    for (std::size_t i = 0; i < n; ++i) {
      ops_[i].on_complete = &completed;
      ops_[i].user = this;
    }
    for (std::size_t it = 0; it < iters; ++it) {
      for (std::size_t i = 0; i < n; ++i) {
        ops_[i].cb = request(i);
        engine_.start(ops_[i]);
      }
      done_ = 0;
      while (done_ < n) {
        auto r = engine_.run_once();
        if (!r) return report(r.error().message());
      }
      if (failed_) return report("a request failed");
    }
    return true;
  }
  [[nodiscard]] bool run_qd(std::size_t) override { return false; }
  [[nodiscard]] bool supports(const Workload& w) const noexcept override {
    return !w.direct && EngineArmBase::supports(w);
  }

 private:
  static void completed(aio::Op& op, aio::Result<std::size_t> r) noexcept {
    auto* self = static_cast<EngineCallbackArm*>(op.user);
    ++self->done_;
    if (r) {
      self->sink += *r;
    } else {
      self->failed_ = true;
    }
  }
  [[nodiscard]] bool report(const std::string& what) const {
    std::fprintf(stderr, "%s: %s\n", name(), what.c_str());
    return false;
  }

  std::array<aio::Op, engine_max_batch> ops_{};
  std::size_t done_ = 0;
  bool failed_ = false;
};

// ---- coroutines -------------------------------------------------------------------------------
class EngineCoroutineArm final : public EngineArmBase {
 public:
  [[nodiscard]] const char* name() const noexcept override { return "engine-coro"; }

  [[nodiscard]] bool run_batches(std::size_t iters) override {
    const std::size_t n = w_.batch;
    tasks_.clear();
    tasks_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) tasks_.push_back(w_.op == Op::poll ? poller(iters) : reader(i, iters));
    failed_ = false;
    aio::sync_wait(engine_, aio::when_all(tasks_));
    tasks_.clear();
    if (failed_) std::fprintf(stderr, "%s: a request failed\n", name());
    return !failed_;
  }
  [[nodiscard]] bool run_qd(std::size_t) override { return false; }
  [[nodiscard]] bool supports(const Workload& w) const noexcept override {
    return !w.direct && EngineArmBase::supports(w);
  }

 private:
  aio::Task<void> reader(std::size_t slot, std::size_t iters) {
    const std::span<std::byte> buf(w_.buf + slot * w_.size, w_.size);
    const std::int64_t off = slot_offset(w_, slot);
    for (std::size_t it = 0; it < iters; ++it) {
      auto r = co_await engine_.read(w_.fd, buf, off);
      if (!r) {
        failed_ = true;
        co_return;
      }
      sink += *r;
    }
  }
  aio::Task<void> poller(std::size_t iters) {
    for (std::size_t it = 0; it < iters; ++it) {
      auto r = co_await engine_.poll(w_.fd, aio::PollEvents::in);
      if (!r) {
        failed_ = true;
        co_return;
      }
      sink += static_cast<std::uint64_t>(*r);
    }
  }

  std::vector<aio::Task<void>> tasks_;
  bool failed_ = false;
};

}  // namespace

std::unique_ptr<Arm> make_engine_callback_arm() { return std::make_unique<EngineCallbackArm>(); }
std::unique_ptr<Arm> make_engine_coroutine_arm() { return std::make_unique<EngineCoroutineArm>(); }

}  // namespace bench
