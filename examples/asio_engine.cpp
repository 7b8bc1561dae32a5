// asio_engine: an aio::Engine inside a standalone Asio io_context.
//
// Reads FILE through the engine (DEPTH requests in flight) and streams each block, in the
// order the reads complete, through a local socket to a reader that sums the bytes, while a
// timer reports progress. Everything runs on Asio's loop: the engine's notify_fd is wrapped
// in an asio::posix::stream_descriptor, and each time it is readable, run_ready() runs the
// completed reads. Prints "<size> bytes, sum <byte sum modulo 2^64>", as read_file does.
//
//   usage: asio_engine [--depth N] [--progress MS] FILE
#include <aio/aio.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <asio.hpp>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace {

constexpr const char* kUsage =
    "usage: asio_engine [--depth 1..1024] [--progress MS] FILE\n"
    "Reads FILE with DEPTH requests in flight through an aio::Engine driven by an Asio\n"
    "io_context, streams the blocks through a local socket to a reader that sums them, and\n"
    "prints the size and byte sum. --progress MS: a progress line on stderr every MS ms.\n";
constexpr std::size_t kBlock = 1 << 16;

struct Options {
  unsigned depth = 8;
  long progress_ms = 0;  // 0: no progress lines
  const char* path = nullptr;
};

int fail(const std::string& what, const std::error_code& ec) {
  std::fprintf(stderr, "asio_engine: %s: %s\n", what.c_str(), ec.message().c_str());
  return 1;
}

class Streamer;

// One read slot: an engine request (op.user points back to the slot) and its buffer.
struct Slot {
  aio::Op op;
  Streamer* owner = nullptr;
  std::vector<unsigned char> buf = std::vector<unsigned char>(kBlock);
  std::size_t filled = 0;
};

class Streamer {
 public:
  Streamer(asio::io_context& io, aio::Engine& engine, int fd, std::int64_t size, unsigned depth)
      : io_(io), engine_(engine), notify_(io, ::dup(engine.notify_fd())), fd_(fd), size_(size), slots_(depth),
        timer_(io) {
    asio::local::connect_pair(out_, in_);
  }

  // Starts the reads, the notify_fd wait, the socket reader and the progress timer.
  void start(long progress_ms) {
    for (Slot& s : slots_) {
      s.op.user = &s;
      s.op.on_complete = &Streamer::read_done;
      s.owner = this;
      start_read(s);
    }
    if (auto f = engine_.flush(); !f) return finish(f.error());
    wait_notify();
    write_next();  // an empty file: closes the socket at once
    read_socket();
    if (progress_ms > 0) tick(std::chrono::milliseconds(progress_ms));
  }

  Streamer(const Streamer&) = delete;
  Streamer& operator=(const Streamer&) = delete;
  // Runs the reads still in flight (after an error) while the slots they complete into live.
  ~Streamer() { (void)engine_.run(); }

  [[nodiscard]] const std::error_code& error() const { return error_; }
  [[nodiscard]] std::uint64_t received() const { return received_; }
  [[nodiscard]] std::uint64_t sum() const { return sum_; }

 private:
  void start_read(Slot& s) {
    if (next_ >= size_ || error_) return;
    s.op.cb = aio::make_pread(fd_, std::span(s.buf), next_);
    next_ += static_cast<std::int64_t>(kBlock);
    engine_.start(s.op);
    ++reading_;
  }

  // The engine runs this from run_ready(), inside the Asio handler below.
  static void read_done(aio::Op& op, aio::Result<std::size_t> n) noexcept {
    auto& slot = *static_cast<Slot*>(op.user);
    auto& self = *slot.owner;
    --self.reading_;
    if (!n) {
      self.finish(n.error());
      return;
    }
    slot.filled = *n;
    self.ready_.push_back(&slot);
    if (!self.writing_) self.write_next();
  }

  // The engine's eventfd is readable: run what completed (run_ready() drains the eventfd and
  // submits what the completions started), then wait again. stop() ends the loop.
  void wait_notify() {
    notify_.async_wait(asio::posix::stream_descriptor::wait_read, [this](const std::error_code& ec) {
      if (ec) return finish(ec);
      auto ran = engine_.run_ready();
      if (!ran) return finish(ran.error());
      wait_notify();
    });
  }

  // Writes the completed blocks one at a time; a written slot reads the next block.
  void write_next() {
    if (ready_.empty() || error_) {
      writing_ = false;
      if (reading_ == 0 && ready_.empty()) out_.close();  // all read and sent: EOF for the reader
      return;
    }
    writing_ = true;
    Slot* s = ready_.front();
    ready_.pop_front();
    asio::async_write(out_, asio::buffer(s->buf.data(), s->filled), [this, s](const std::error_code& ec, std::size_t) {
      if (ec) return finish(ec);
      start_read(*s);
      if (auto f = engine_.flush(); !f) return finish(f.error());
      write_next();
    });
  }

  void read_socket() {
    in_.async_read_some(asio::buffer(inbuf_), [this](const std::error_code& ec, std::size_t n) {
      for (std::size_t i = 0; i < n; ++i) sum_ += inbuf_[i];
      received_ += n;
      if (ec == asio::error::eof) return stop();
      if (ec) return finish(ec);
      read_socket();
    });
  }

  void tick(std::chrono::milliseconds every) {
    timer_.expires_after(every);
    timer_.async_wait([this, every](const std::error_code& ec) {
      if (ec) return;
      std::fprintf(stderr, "asio_engine: %llu of %lld bytes, %zu reads in flight\n",
                   static_cast<unsigned long long>(received_), static_cast<long long>(size_), engine_.in_flight());
      tick(every);
    });
  }

  void finish(const std::error_code& ec) {
    if (!error_) error_ = ec;
    stop();
  }

  void stop() {
    timer_.cancel();
    io_.stop();
  }

  asio::io_context& io_;
  aio::Engine& engine_;
  asio::posix::stream_descriptor notify_;
  asio::local::stream_protocol::socket out_{io_}, in_{io_};
  int fd_;
  std::int64_t size_, next_ = 0;
  std::vector<Slot> slots_;
  std::deque<Slot*> ready_;
  std::vector<unsigned char> inbuf_ = std::vector<unsigned char>(kBlock);
  asio::steady_timer timer_;
  unsigned reading_ = 0;
  bool writing_ = false;
  std::error_code error_;
  std::uint64_t received_ = 0, sum_ = 0;
};

// Returns 0 and fills opt, or the exit status to leave with.
int parse(int argc, char** argv, Options& opt) {
  for (int i = 1; i < argc; ++i) {
    const std::string_view a = argv[i];
    if (a == "--help" || a == "-h") return std::fputs(kUsage, stdout), -1;
    if (a == "--version") return std::printf("asio_engine (aiopp) %s\n", AIOPP_VERSION_STRING), -1;
    if ((a == "--depth" || a == "--progress") && i + 1 < argc) {
      char* end = nullptr;
      const long v = std::strtol(argv[++i], &end, 10);
      if (*end != '\0' || v < (a == "--depth" ? 1 : 0) || v > (a == "--depth" ? 1024 : 3600000)) {
        std::fprintf(stderr, "asio_engine: %s: invalid value '%s'\n", a.data(), argv[i]);
        return 2;
      }
      if (a == "--depth")
        opt.depth = static_cast<unsigned>(v);
      else
        opt.progress_ms = v;
    } else if (a.starts_with('-') || opt.path != nullptr) {
      std::fprintf(stderr, "asio_engine: unexpected argument '%s' (--help for usage)\n", argv[i]);
      return 2;
    } else {
      opt.path = argv[i];
    }
  }
  if (opt.path == nullptr) return std::fputs("asio_engine: missing FILE (--help for usage)\n", stderr), 2;
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  Options opt;
  if (const int rc = parse(argc, argv, opt); rc != 0) return rc < 0 ? 0 : rc;
  const int fd = ::open(opt.path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  struct stat st{};
  if (fd < 0 || ::fstat(fd, &st) != 0) return fail(opt.path, std::error_code(errno, std::generic_category()));
  if (!S_ISREG(st.st_mode)) return fail(opt.path, std::make_error_code(std::errc::invalid_argument));

  auto engine = aio::Engine::create({.queue_depth = opt.depth, .notify_fd = true});
  if (!engine) return fail("cannot create the engine", engine.error());
  std::error_code ec;
  std::uint64_t bytes = 0, sum = 0;
  {
    asio::io_context io;
    Streamer streamer(io, *engine, fd, st.st_size, opt.depth);
    streamer.start(opt.progress_ms);
    io.run();
    ec = streamer.error();
    bytes = streamer.received();
    sum = streamer.sum();
  }
  ::close(fd);
  if (ec) return fail(opt.path, ec);
  if (bytes != static_cast<std::uint64_t>(st.st_size))
    return fail(opt.path, std::make_error_code(std::errc::io_error));  // the file changed size while read
  std::printf("%llu bytes, sum %llu\n", static_cast<unsigned long long>(bytes), static_cast<unsigned long long>(sum));
  return 0;
}

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::system_error& e) {  // Asio's setup calls throw
    return fail(e.what(), e.code());
  }
}
