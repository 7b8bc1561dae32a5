// aiopp examples — shared command-line helpers: option parsing (with --version for every
// tool), size/number parsing, one-line error reporting, an fd owner, aligned buffers
// (aio::AlignedBuffer), clocks, a syscall-counting wrapper around aio::Context and an
// aio::Engine that shrinks to what fs.aio-max-nr allows.
//
// Error convention of every tool:
//   usage errors   -> "<tool>: <what>" on stderr, exit 2
//   runtime errors -> "<tool>: <what>: <strerror>" on stderr, exit 1
// Errors are raised by throwing cli::Exit after the message is printed, so RAII cleanup
// (temp files, in-flight I/O drained by ~Context) runs on the way out of main.
#pragma once

#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <aio/aio.hpp>
#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace cli {

/// The running tool's name, used as the prefix of every message.
inline const char* prog = "aio";

/// Thrown (after the message has been printed) to leave main with `code`.
struct Exit {
  int code;
};

inline constexpr int exit_runtime = 1;
inline constexpr int exit_usage = 2;

/// "<tool>: <what>" and exit 2.
[[noreturn]] inline void usage_error(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", prog, what.c_str());
  throw Exit{exit_usage};
}

/// "<tool>: <what>: <strerror(err)>" and exit 1.
[[noreturn]] inline void fail(const std::string& what, int err) {
  std::fprintf(stderr, "%s: %s: %s\n", prog, what.c_str(), std::strerror(err));
  throw Exit{exit_runtime};
}

/// "<tool>: <what>: <ec.message()>" and exit 1.
[[noreturn]] inline void fail(const std::string& what, std::error_code ec) {
  std::fprintf(stderr, "%s: %s: %s\n", prog, what.c_str(), ec.message().c_str());
  throw Exit{exit_runtime};
}

/// "<tool>: <what>" and exit 1 (a runtime error with no errno behind it).
[[noreturn]] inline void fail(const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", prog, what.c_str());
  throw Exit{exit_runtime};
}

/// A warning/notice line "<tool>: <what>" on stderr; does not exit.
inline void note(const std::string& what) { std::fprintf(stderr, "%s: %s\n", prog, what.c_str()); }

/// Runs body(argc, argv) and maps Exit / exceptions to exit codes, never crashing.
template <class Body>
int run_main(const char* name, int argc, char** argv, Body body) {
  prog = name;
  try {
    return body(argc, argv);
  } catch (const Exit& e) {
    std::fflush(stdout);
    return e.code;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory\n", prog);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", prog, e.what());
  }
  return exit_runtime;
}

// ---- option parsing ---------------------------------------------------------------------

struct OptSpec {
  const char* long_name;  // without the leading "--"
  char short_name;        // 0: none
  bool takes_value;
  int id;
};

struct Opt {
  int id;
  std::string value;
  std::string spelled;  // "--queue-depth" or "-q", for messages
};

struct ParsedArgs {
  std::vector<Opt> opts;
  std::vector<std::string> positionals;
};

/// "<tool> (aiopp) <version>" on stdout and exit 0.
[[noreturn]] inline void print_version() {
  std::printf("%s (aiopp) %s\n", prog, AIOPP_VERSION_STRING);
  throw Exit{0};
}

/// GNU-style parsing: --name, --name=value, --name value, -x, -xVALUE, -x VALUE, grouped
/// short flags (-ab), "--" ends options, "-" alone is a positional. Unknown options and
/// missing/extra values are usage errors. --version (unless in specs) prints the version
/// and exits 0.
inline ParsedArgs parse_args(int argc, char** argv, std::span<const OptSpec> specs) {
  ParsedArgs out;
  bool only_positionals = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (only_positionals || arg.size() < 2 || arg[0] != '-') {
      out.positionals.push_back(arg);
      continue;
    }
    if (arg == "--") {
      only_positionals = true;
      continue;
    }
    if (arg[1] == '-') {
      const auto eq = arg.find('=');
      const std::string name = arg.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
      const OptSpec* spec = nullptr;
      for (const auto& s : specs)
        if (name == s.long_name) spec = &s;
      if (spec == nullptr && name == "version" && eq == std::string::npos) print_version();
      if (spec == nullptr) usage_error("unrecognized option '--" + name + "' (try --help)");
      Opt o{spec->id, {}, "--" + name};
      if (spec->takes_value) {
        if (eq != std::string::npos) {
          o.value = arg.substr(eq + 1);
        } else if (i + 1 < argc) {
          o.value = argv[++i];
        } else {
          usage_error("option '--" + name + "' requires an argument");
        }
      } else if (eq != std::string::npos) {
        usage_error("option '--" + name + "' doesn't allow an argument");
      }
      out.opts.push_back(std::move(o));
      continue;
    }
    for (std::size_t j = 1; j < arg.size(); ++j) {
      const OptSpec* spec = nullptr;
      for (const auto& s : specs)
        if (s.short_name != 0 && s.short_name == arg[j]) spec = &s;
      if (spec == nullptr) usage_error(std::string("invalid option -- '") + arg[j] + "' (try --help)");
      Opt o{spec->id, {}, std::string("-") + arg[j]};
      if (spec->takes_value) {
        if (j + 1 < arg.size()) {
          o.value = arg.substr(j + 1);
        } else if (i + 1 < argc) {
          o.value = argv[++i];
        } else {
          usage_error(std::string("option requires an argument -- '") + arg[j] + "'");
        }
        out.opts.push_back(std::move(o));
        break;
      }
      out.opts.push_back(std::move(o));
    }
  }
  return out;
}

// ---- number parsing ---------------------------------------------------------------------

/// "4096", "4K", "64k", "1M", "1MiB", "2G", "1T" (binary multiples). Usage error otherwise.
inline std::uint64_t parse_size(const std::string& text, const std::string& what) {
  const auto bad = [&]() { usage_error("invalid " + what + " '" + text + "'"); };
  std::size_t i = 0;
  std::uint64_t value = 0;
  if (text.empty() || text[0] < '0' || text[0] > '9') bad();
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    const auto digit = static_cast<std::uint64_t>(text[i] - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) bad();
    value = value * 10 + digit;
    ++i;
  }
  std::string suffix = text.substr(i);
  for (auto& c : suffix) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  unsigned shift = 0;
  if (!suffix.empty()) {
    switch (suffix[0]) {
      case 'K': shift = 10; break;
      case 'M': shift = 20; break;
      case 'G': shift = 30; break;
      case 'T': shift = 40; break;
      case 'B': if (suffix == "B") return value; bad(); break;
      default: bad();
    }
    const std::string rest = suffix.substr(1);
    if (!rest.empty() && rest != "B" && rest != "IB") bad();
  }
  if (shift != 0 && value > (std::numeric_limits<std::uint64_t>::max() >> shift)) bad();
  return value << shift;
}

/// A decimal integer in [lo, hi]; usage error otherwise.
inline std::uint64_t parse_uint(const std::string& text, const std::string& what, std::uint64_t lo,
                                std::uint64_t hi) {
  std::uint64_t value = 0;
  bool ok = !text.empty();
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    const auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (std::numeric_limits<std::uint64_t>::max() - digit) / 10) {
      ok = false;
      break;
    }
    value = value * 10 + digit;
  }
  if (!ok) usage_error("invalid " + what + " '" + text + "'");
  if (value < lo || value > hi)
    usage_error(what + " must be between " + std::to_string(lo) + " and " + std::to_string(hi) +
                " (got " + text + ")");
  return value;
}

/// A non-negative, finite number of seconds ("5", "0.3"); usage error otherwise.
inline double parse_seconds(const std::string& text, const std::string& what) {
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(text.c_str(), &end);
  if (text.empty() || end == nullptr || *end != '\0' || errno != 0 || !std::isfinite(v) || v < 0 ||
      v > 1e9 || text[0] == ' ' || text[0] == '+' || text[0] == '-')
    usage_error("invalid " + what + " '" + text + "'");
  return v;
}

// ---- formatting ---------------------------------------------------------------------------

inline constexpr double mib = 1024.0 * 1024.0;

/// 1536 -> "1.5 KiB", 1048576 -> "1.0 MiB".
inline std::string human_bytes(std::uint64_t n) {
  static const char* const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(n);
  std::size_t u = 0;
  while (v >= 1024.0 && u + 1 < std::size(units)) {
    v /= 1024.0;
    ++u;
  }
  char buf[48];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(n));
  else
    std::snprintf(buf, sizeof buf, "%.1f %s", v, units[u]);
  return buf;
}

// ---- resources ------------------------------------------------------------------------------

/// Owns one file descriptor.
class Fd {
 public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }

  [[nodiscard]] int get() const noexcept { return fd_; }
  [[nodiscard]] bool valid() const noexcept { return fd_ >= 0; }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_ = -1;
};

/// `size` (> 0) zeroed bytes aligned to `align` (a power of two); else "<tool>: aligned
/// buffer of SIZE: <error>" and exit 1.
inline aio::AlignedBuffer aligned_buffer(std::size_t size, std::size_t align) {
  auto buf = aio::AlignedBuffer::create(size, align);
  if (!buf) fail("aligned buffer of " + human_bytes(size), buf.error());
  return std::move(*buf);
}

// ---- clocks ----------------------------------------------------------------------------------

inline std::uint64_t now_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

inline double now_s() noexcept { return static_cast<double>(now_ns()) / 1e9; }

// ---- a Context that counts its real syscalls ------------------------------------------

/// A Context with an aio::Observer attached from io_setup on. calls() is the number of
/// syscalls really made: completions reaped from the shared ring make none, so counting
/// wrapper calls would overstate it.
class CountingContext {
 public:
  aio::Result<std::size_t> submit(std::span<iocb* const> iocbs) noexcept { return ctx_.submit(iocbs); }
  aio::Result<std::size_t> getevents(std::size_t min_nr, std::span<io_event> events,
                                     aio::Timeout timeout = std::nullopt) noexcept {
    return ctx_.getevents(min_nr, events, timeout);
  }
  aio::Result<std::size_t> pgetevents(std::size_t min_nr, std::span<io_event> events, aio::Timeout timeout,
                                      const sigset_t* mask) noexcept {
    return ctx_.pgetevents(min_nr, events, timeout, mask);
  }
  aio::Result<void> cancel(iocb& request) noexcept { return ctx_.cancel(request); }

  [[nodiscard]] std::uint64_t calls() const noexcept { return observer_->total_syscalls(); }
  [[nodiscard]] const aio::Observer& observer() const noexcept { return *observer_; }
  [[nodiscard]] aio::Context& raw() noexcept { return ctx_; }

 private:
  friend CountingContext make_context(unsigned max_events, std::size_t latency_capacity, unsigned shrink_to);
  CountingContext(std::unique_ptr<aio::Observer> observer, aio::Context ctx) noexcept
      : observer_(std::move(observer)), ctx_(std::move(ctx)) {}

  std::unique_ptr<aio::Observer> observer_;  // declared first: outlives the Context it observes
  aio::Context ctx_;
};

/// "<tool>: io_setup(N): <error>" and exit 1; when the system-wide quota is the cause
/// (EAGAIN), the actionable line instead: "<tool>: io_setup(N) needs N free AIO slots but
/// only A of fs.aio-max-nr=M are free (aio-nr=X); raise fs.aio-max-nr to T (sysctl -w ...)".
[[noreturn]] inline void fail_setup(unsigned max_events, std::error_code ec) {
  if (ec == std::errc::resource_unavailable_try_again) fail(aio::aio_max_nr_advice(max_events));
  fail("io_setup(" + std::to_string(max_events) + ")", ec);
}

/// io_setup(max_events) with an observer attached from the first io_setup on (timing up to
/// latency_capacity requests in flight, 0 = no latency tracking). With shrink_to > 0, a
/// context smaller than max_events (down to shrink_to) is accepted when fs.aio-max-nr has
/// no room for the full size, and a note says so: the caller must size its queue by
/// raw().max_events(). Else fail_setup().
inline CountingContext make_context(unsigned max_events, std::size_t latency_capacity = 0, unsigned shrink_to = 0) {
  auto observer = std::make_unique<aio::Observer>(latency_capacity);
  auto ctx = shrink_to > 0 ? aio::create_shrinking(max_events, std::min(shrink_to, max_events),
                                                   aio::ReapMode::automatic, observer.get())
                           : aio::Context::create(max_events, aio::ReapMode::automatic, observer.get());
  if (!ctx) fail_setup(max_events, ctx.error());
  if (ctx->max_events() < max_events) {
    const auto limits = aio::system_limits();
    note("queue depth reduced to " + std::to_string(ctx->max_events()) + ": fs.aio-max-nr has room for " +
         (limits ? std::to_string(limits->available() + ctx->max_events()) : std::string("fewer")) + ", not " +
         std::to_string(max_events) + " (raise it: sysctl -w fs.aio-max-nr=N)");
  }
  return CountingContext(std::move(observer), std::move(*ctx));
}

/// An Engine of queue_depth `wanted` with `observer` attached (may be nullptr). With
/// shrink_to > 0, when fs.aio-max-nr has no room for it, a smaller one (down to shrink_to)
/// with the note make_context() prints: the caller sizes its work by queue_depth().
/// Else fail_setup().
inline aio::Engine make_engine(unsigned wanted, aio::Observer* observer, unsigned shrink_to = 0) {
  const unsigned minimum = shrink_to == 0 ? wanted : std::min(shrink_to, wanted);
  unsigned depth = wanted;
  for (;;) {
    auto engine = aio::Engine::create({.queue_depth = depth, .observer = observer});
    if (engine) {
      if (depth < wanted) {
        const auto limits = aio::system_limits();
        note("queue depth reduced to " + std::to_string(depth) + ": fs.aio-max-nr has room for " +
             (limits ? std::to_string(limits->available() + depth) : std::string("fewer")) + ", not " +
             std::to_string(wanted) + " (raise it: sysctl -w fs.aio-max-nr=N)");
      }
      return std::move(*engine);
    }
    if (engine.error() != std::errc::resource_unavailable_try_again || depth <= minimum) fail_setup(wanted, engine.error());
    const auto limits = aio::system_limits();
    const std::uint64_t room = limits ? limits->available() : 0;
    depth = room > 0 && room < depth ? static_cast<unsigned>(room) : depth / 2;
    depth = std::max(depth, minimum);
  }
}

}  // namespace cli
