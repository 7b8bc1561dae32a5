// aiopp tests — shared pieces of the Engine tests: a cached data file and per-Op records.
#pragma once

#include <aio/aio.hpp>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "test_util.hpp"

namespace aiotest {

/// A file of `blocks` x `block` pattern bytes in a fresh temp dir, read back once (cached).
struct DataFile {
  TempDir dir;
  std::string content;
  Fd fd;
  explicit DataFile(std::size_t blocks = 128, std::size_t block = 4096) : content(pattern(blocks * block, 'A')) {
    fd = dir.make_file("data", content, O_RDONLY);
  }
  [[nodiscard]] int get() const noexcept { return fd.get(); }
};

/// What happened to one Op: how often its on_complete ran, the last result, its turn.
struct Rec {
  int calls = 0;
  aio::Result<std::size_t> last{};
  int order = -1;
};

/// A completion log shared by many Ops: each Op's user points at its Rec; `seq` numbers
/// completions in the order they ran.
struct Log {
  std::vector<Rec> recs;
  std::vector<aio::Op> ops;
  int seq = 0;
  aio::Engine* engine = nullptr;
  std::size_t max_in_flight = 0;
  explicit Log(std::size_t n) : recs(n), ops(n) {}

  static void on_complete(aio::Op& op, aio::Result<std::size_t> r) noexcept {
    auto* log = static_cast<Log*>(op.user);
    const auto i = static_cast<std::size_t>(&op - log->ops.data());
    Rec& rec = log->recs[i];
    ++rec.calls;
    rec.last = r;
    rec.order = log->seq++;
    if (log->engine != nullptr && log->engine->in_flight() > log->max_in_flight)
      log->max_in_flight = log->engine->in_flight();
  }
  /// Sets op i up with `cb`, this log's callback and user pointer.
  aio::Op& prepare(std::size_t i, const iocb& cb) {
    ops[i].cb = cb;
    ops[i].on_complete = &Log::on_complete;
    ops[i].user = this;
    return ops[i];
  }
  [[nodiscard]] int total_calls() const {
    int n = 0;
    for (const Rec& r : recs) n += r.calls;
    return n;
  }
};

/// Runs the engine until `log` has seen `n` completions (bounded by `rounds` run_once calls
/// of at most 1 s each); returns whether it got there.
inline bool run_until(aio::Engine& e, const Log& log, int n, int rounds = 1000) {
  for (int i = 0; i < rounds && log.total_calls() < n; ++i) {
    auto r = e.run_once(std::chrono::seconds(1));
    if (!r && r.error() != std::errc::interrupted) return false;
  }
  return log.total_calls() >= n;
}

}  // namespace aiotest
