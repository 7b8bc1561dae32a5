// aiopp — system-wide AIO quota (see include/aio/limits.hpp for the contract).
#include "aio/limits.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>

namespace aio {
namespace {

// Reads one decimal number from a small /proc file, without allocating: open(), read() into a
// stack buffer, from_chars() (C interfaces on a raw buffer).
// NOLINTBEGIN(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)
// NOLINTBEGIN(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
// NOLINTBEGIN(cppcoreguidelines-pro-bounds-pointer-arithmetic)
[[nodiscard]] Result<std::uint64_t> read_number(const char* path) noexcept {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return fail(err);
  }
  char buf[32];
  std::size_t len = 0;
  int err = 0;
  while (len < sizeof buf) {
    const ssize_t n = ::read(fd, buf + len, sizeof buf - len);
    if (n < 0) {
      err = errno;
      if (err == EINTR) {
        err = 0;
        continue;
      }
      break;
    }
    if (n == 0) break;
    len += static_cast<std::size_t>(n);
  }
  ::close(fd);
  if (err != 0) return fail(err);
  std::uint64_t value = 0;
  // from_chars fails (invalid_argument) when no digit starts the text: no end check needed.
  if (std::from_chars(buf, buf + len, value).ec != std::errc{}) return fail(EINVAL);
  return value;
}
// NOLINTEND(cppcoreguidelines-pro-bounds-pointer-arithmetic)
// NOLINTEND(cppcoreguidelines-avoid-c-arrays,modernize-avoid-c-arrays)
// NOLINTEND(cppcoreguidelines-pro-type-vararg,cppcoreguidelines-pro-bounds-array-to-pointer-decay)

}  // namespace

Result<SystemLimits> system_limits() noexcept {
  auto nr = read_number("/proc/sys/fs/aio-nr");
  if (!nr) return std::unexpected(nr.error());
  auto max_nr = read_number("/proc/sys/fs/aio-max-nr");
  if (!max_nr) return std::unexpected(max_nr.error());
  return SystemLimits{*nr, *max_nr};
}

Result<Context> create_shrinking(unsigned wanted, unsigned minimum, ReapMode mode, Observer* observer) noexcept {
  if (minimum == 0 || minimum > wanted) return fail(EINVAL);
  unsigned size = wanted;
  // Each round tries what is available or half the last size, so the loop ends quickly;
  // the bound only guards against a quota that other processes keep moving.
  for (int round = 0; round < 64; ++round) {
    auto ctx = Context::create(size, mode, observer);
    if (ctx || ctx.error() != std::errc::resource_unavailable_try_again || size == minimum) return ctx;
    unsigned next = size / 2;  // no /proc, or the quota moved: halve
    if (auto limits = system_limits()) {
      const std::uint64_t avail = limits->available();
      if (avail < size) next = static_cast<unsigned>(avail);  // try exactly what fits now
    }
    size = next < minimum ? minimum : next;
  }
  return fail(EAGAIN);
}

std::string aio_max_nr_advice(unsigned wanted, const SystemLimits& limits) {
  const std::uint64_t charge = aio_nr_charge(wanted);
  std::uint64_t target = limits.nr + charge;
  if (target < limits.max_nr) target = limits.max_nr;
  const std::string w = std::to_string(wanted);
  const std::string t = std::to_string(target);
  return "io_setup(" + w + ") needs " + std::to_string(charge) + " free AIO slots but only " +
         std::to_string(limits.available()) + " of fs.aio-max-nr=" + std::to_string(limits.max_nr) +
         " are free (aio-nr=" + std::to_string(limits.nr) + "); raise fs.aio-max-nr to " + t +
         " (sysctl -w fs.aio-max-nr=" + t + ")";
}

std::string aio_max_nr_advice(unsigned wanted) {
  if (auto limits = system_limits()) return aio_max_nr_advice(wanted, *limits);
  const std::string c = std::to_string(aio_nr_charge(wanted));
  return "io_setup(" + std::to_string(wanted) + ") needs " + c +
         " free AIO slots; raise fs.aio-max-nr by at least " + c + " (/proc/sys/fs/aio-max-nr is unreadable)";
}

}  // namespace aio
