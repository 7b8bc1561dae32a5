// aiopp benchmarks — the interface every implementation ("arm") of a workload provides.
//
// Each arm lives behind this small virtual interface so that arms whose headers clash
// (libaio's <libaio.h> redefines struct iocb / io_event of <linux/aio_abi.h>) can be compiled
// in their own translation units. The virtual call happens once per timed slice, never per
// I/O: the hot loops are entirely inside each arm.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace bench {

enum class Op : std::uint8_t { read, poll };

struct Workload {
  Op op = Op::read;
  unsigned batch = 1;            // requests per submit (batched mode) or queue depth (--direct)
  int fd = -1;                   // the file (read) or the always-readable eventfd (poll)
  std::size_t size = 0;          // bytes per read
  std::byte* buf = nullptr;      // batch * size bytes (4096-aligned), slot i at buf + i * size
  std::uint64_t file_size = 0;   // --direct: random 4 KiB-aligned offsets in [0, file_size)
  bool direct = false;           // queue-depth mode on an O_DIRECT file
};

/// Offset of read slot i in batched mode: consecutive `size` chunks of the cached file.
[[nodiscard]] inline std::int64_t slot_offset(const Workload& w, std::size_t i) noexcept {
  return static_cast<std::int64_t>(i * w.size);
}

/// The same cheap generator for every arm: random 4 KiB block offsets for --direct.
struct Rng {
  std::uint64_t s = 0x9e3779b97f4a7c15ULL;
  [[nodiscard]] std::int64_t block(std::uint64_t file_size) noexcept {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<std::int64_t>((s % (file_size / 4096)) * 4096);
  }
};

class Arm {
 public:
  Arm() = default;
  Arm(const Arm&) = delete;
  Arm& operator=(const Arm&) = delete;
  virtual ~Arm() = default;

  [[nodiscard]] virtual const char* name() const noexcept = 0;
  [[nodiscard]] virtual bool supports(const Workload& w) const noexcept = 0;
  /// Creates the context/ring for this workload; returns "" or an error message.
  [[nodiscard]] virtual std::string setup(const Workload& w) = 0;
  /// Batched mode: `iters` times, submit w.batch requests and reap all of them.
  [[nodiscard]] virtual bool run_batches(std::size_t iters) = 0;
  /// Queue-depth mode (--direct): keep w.batch requests in flight until `ops` completed.
  [[nodiscard]] virtual bool run_qd(std::size_t ops) = 0;
  virtual void teardown() noexcept = 0;

  std::uint64_t sink = 0;  // sum of results: keeps the work observable, checked by the harness
};

// Arms compiled only when CMake found the library (nullptr otherwise).
[[nodiscard]] std::unique_ptr<Arm> make_libaio_arm();
[[nodiscard]] std::unique_ptr<Arm> make_liburing_arm();
// The completion engine (aio::Engine): callbacks, and coroutines (aio::Task).
[[nodiscard]] std::unique_ptr<Arm> make_engine_callback_arm();
[[nodiscard]] std::unique_ptr<Arm> make_engine_coroutine_arm();

}  // namespace bench
