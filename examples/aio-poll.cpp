// aio-poll — wait for input on FIFOs, sockets and stdin with IOCB_CMD_POLL and print it.
//
// One coroutine per source on aio::Engine: co_await a poll, read what is ready, print
// every complete line as "name: text", poll again. The stop signals (a self-pipe their
// handler writes to; a signalfd cannot be polled with IOCB_CMD_POLL: the kernel re-checks
// its readiness from a worker thread, which has no signals pending) and the timeout (a
// timerfd) are polled by coroutines of their own; whichever ends the run asks a
// std::stop_source to stop, and the stop token cancels (io_cancel) every poll still armed.
// A summary goes to stderr at the end.
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <optional>
#include <stop_token>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-poll [OPTIONS] [PATH...]\n"
    "Wait for input on FIFOs, UNIX sockets or stdin (no PATH, or '-') with IOCB_CMD_POLL and\n"
    "print each line that arrives as 'NAME: TEXT' on stdout (NAME is the PATH, or 'stdin').\n"
    "\n"
    "  -t, --timeout SECONDS  stop after this long (fractions allowed; default: no timeout)\n"
    "  -h, --help             show this help and exit\n"
    "      --version          show the version and exit\n"
    "\n"
    "A terminal, a regular file or a device that is always ready cannot be waited on with\n"
    "IOCB_CMD_POLL and is refused: pipe it in instead ('cmd | aio-poll').\n"
    "FIFOs are opened O_RDONLY|O_NONBLOCK, so opening never waits for a writer. A FIFO stays\n"
    "silent until a writer connects; it reaches EOF when its writers have all closed it after\n"
    "at least one connected (a read returning 0). A path naming a UNIX stream socket is\n"
    "connected to. aio-poll stops on SIGINT/SIGTERM (their handler writes to a pipe that is polled too), on the timeout, or when every source\n"
    "is at EOF, then prints a summary (events and bytes per source) on stderr and exits 0.\n"
    "Exit status: 0 ok, 1 runtime error (e.g. a PATH that cannot be opened), 2 usage error.\n";

enum OptId { kTimeout, kHelp, kVersion };
constexpr cli::OptSpec specs[] = {
    {"timeout", 't', true, kTimeout}, {"help", 'h', false, kHelp}, {"version", 0, false, kVersion}};

struct Source {
  std::string name;
  std::string path;  // empty for stdin
  cli::Fd fd;        // not owning for stdin (released before close)
  bool is_stdin = false;
  bool is_fifo = false;
  bool eof = false;
  std::string partial;  // an incomplete last line
  std::uint64_t events = 0;
  std::uint64_t bytes = 0;
  std::uint64_t lines = 0;
};

int open_source(const std::string& path, bool& is_fifo) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) cli::fail(path, errno);
  is_fifo = S_ISFIFO(st.st_mode);
  if (S_ISDIR(st.st_mode)) cli::fail(path, EISDIR);
  if (S_ISSOCK(st.st_mode)) {
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    if (path.size() >= sizeof addr.sun_path) cli::fail(path, ENAMETOOLONG);
    std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
    cli::Fd s(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
    if (!s.valid()) cli::fail(path, errno);
    if (::connect(s.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) cli::fail(path, errno);
    return s.release();
  }
  const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) cli::fail(path, errno);
  return fd;
}

/// Exits with "NAME: cannot be polled with IOCB_CMD_POLL (why): hint" when IOCB_CMD_POLL
/// cannot wait on the source (aio::probe_fd): a terminal, a regular file or a device that
/// is always ready. A FIFO opened read-only and a socket can always be waited on: they are
/// not probed (a probe costs an io_setup and an io_destroy).
void check_pollable(const Source& s) {
  const int fd = s.fd.get();
  struct stat st {};
  if (::fstat(fd, &st) != 0) cli::fail(s.name, errno);
  const int fl = ::fcntl(fd, F_GETFL);
  if (S_ISSOCK(st.st_mode) || (S_ISFIFO(st.st_mode) && fl >= 0 && (fl & O_ACCMODE) == O_RDONLY)) return;
  auto fc = aio::probe_fd(fd);
  if (!fc) cli::fail(s.name, fc.error());
  // No AIO context for the probe: creating the tool's own fails next, and says why.
  if (fc->setup || fc->supports(aio::FdCapability::poll)) return;
  const std::string what = s.name + ": cannot be polled with IOCB_CMD_POLL";
  const std::string pipe_in = "pipe the input in, e.g. 'cmd | aio-poll'";
  if (::isatty(fd) == 1) cli::fail(what + " (a terminal): " + pipe_in);
  if (fc->poll_always_ready) {
    const char* kind = S_ISREG(st.st_mode) ? "a regular file" : S_ISDIR(st.st_mode) ? "a directory" : "a device";
    if (S_ISREG(st.st_mode) && !s.is_stdin)
      cli::fail(what + " (a regular file is always ready): pipe it in, e.g. 'tail -f " + s.path + " | aio-poll'");
    cli::fail(what + " (" + kind + " is always ready): " + pipe_in);
  }
  cli::fail(what, fc->poll);
}

void emit(Source& s, const char* data, std::size_t n) {
  s.partial.append(data, n);
  std::size_t start = 0;
  for (;;) {
    const auto nl = s.partial.find('\n', start);
    if (nl == std::string::npos) break;
    std::printf("%s: %.*s\n", s.name.c_str(), static_cast<int>(nl - start), s.partial.data() + start);
    ++s.lines;
    start = nl + 1;
  }
  s.partial.erase(0, start);
}

void flush_partial(Source& s) {
  if (s.partial.empty()) return;
  std::printf("%s: %s\n", s.name.c_str(), s.partial.c_str());
  ++s.lines;
  s.partial.clear();
}

/// What the coroutines share: the engine, the stop source that ends the run, the outcome.
struct Run {
  aio::Engine& engine;
  std::stop_source stop{};
  std::size_t active = 0;  // sources still watched
  std::string reason{};    // why the run ended (the first reason given)
  int status = 0;
  std::uint64_t events = 0;
  std::uint64_t cancelled = 0;

  void finish(const char* why) {
    if (reason.empty()) reason = why;
    stop.request_stop();  // cancels every armed poll
  }
};

/// Reads once from a source the poll said is ready. Returns: false at EOF or on an error.
bool drain(Run& r, Source& s, aio::PollEvents mask) {
  char buf[65536];
  const ssize_t n = ::read(s.fd.get(), buf, sizeof buf);
  if (n > 0) {
    s.bytes += static_cast<std::uint64_t>(n);
    emit(s, buf, static_cast<std::size_t>(n));
    std::fflush(stdout);
    return true;
  }
  if (n == 0) return false;
  if (errno != EAGAIN && errno != EINTR) {
    cli::note(s.name + ": read: " + std::strerror(errno));
    r.status = 1;
    return false;
  }
  if (aio::any(mask & aio::PollEvents::hup) && s.is_fifo && !s.is_stdin) {
    // HUP with nothing to read would be reported forever: reopen, so the FIFO waits for
    // its next writer instead.
    s.fd.reset(::open(s.path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC));
    if (!s.fd.valid()) {
      cli::note(s.name + ": " + std::strerror(errno));
      r.status = 1;
      return false;
    }
  }
  return true;
}

/// Polls a source and prints what arrives until EOF, an error or the stop request.
aio::Task<> watch(Run& r, Source& s) {
  for (;;) {
    auto ready = co_await r.engine.poll(s.fd.get(), aio::PollEvents::in, r.stop.get_token());
    if (!ready && ready.error() != std::errc::operation_canceled) {
      cli::note(s.name + ": poll: " + ready.error().message());
      r.status = 1;
      s.eof = true;
      break;
    }
    if (!ready) {
      ++r.cancelled;
      break;
    }
    ++s.events;
    ++r.events;
    if (!drain(r, s, *ready)) {
      s.eof = true;
      break;
    }
  }
  flush_partial(s);
  if (--r.active == 0) r.finish("every source at EOF");
}

/// Waits for fd (the signal pipe or a timerfd) to be readable, then ends the run with
/// `why` (the signal pipe: the reason of the signal number read from it).
aio::Task<> watch_stop(Run& r, int fd, const char* why) {
  auto ready = co_await r.engine.poll(fd, aio::PollEvents::in, r.stop.get_token());
  if (!ready) co_return;  // cancelled: the run ended otherwise
  unsigned char sig = 0;
  if (why == nullptr && ::read(fd, &sig, 1) == 1)
    why = sig == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
  r.finish(why != nullptr ? why : "stopped by a signal");
}

int g_signal_pipe = -1;  // the write end: the stop signals' handler writes their number
extern "C" void on_stop_signal(int sig) {
  const int saved = errno;
  const auto byte = static_cast<unsigned char>(sig);
  (void)!::write(g_signal_pipe, &byte, 1);
  errno = saved;
}

/// Routes SIGINT/SIGTERM into a pipe. Returns: its read end (non-blocking).
cli::Fd stop_signal_pipe() {
  int fds[2];
  if (::pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) cli::fail("pipe", errno);
  g_signal_pipe = fds[1];  // open until exit: a late signal still has somewhere to go
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  return cli::Fd(fds[0]);
}

/// A timerfd that becomes readable after `seconds`.
cli::Fd timeout_fd(double seconds) {
  cli::Fd fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
  if (!fd.valid()) cli::fail("timerfd_create", errno);
  const auto ns = std::max<long long>(static_cast<long long>(seconds * 1e9), 1);  // 0 would disarm it
  itimerspec its{};
  its.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
  its.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
  if (::timerfd_settime(fd.get(), 0, &its, nullptr) != 0) cli::fail("timerfd_settime", errno);
  return fd;
}

/// Opens every PATH ("-": stdin) and refuses what cannot be polled.
std::vector<Source> open_sources(const std::vector<std::string>& paths) {
  std::vector<Source> sources(paths.size());
  bool stdin_used = false;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    Source& s = sources[i];
    if (paths[i].empty()) cli::usage_error("empty path operand");
    if (paths[i] != "-") {
      s.name = s.path = paths[i];
      s.fd.reset(open_source(paths[i], s.is_fifo));
      continue;
    }
    if (stdin_used) cli::usage_error("stdin ('-') given more than once");
    stdin_used = true;
    s.name = "stdin";
    s.is_stdin = true;
    struct stat st {};
    if (::fstat(STDIN_FILENO, &st) != 0) cli::fail("stdin", errno);
    s.fd.reset(STDIN_FILENO);
    s.is_fifo = S_ISFIFO(st.st_mode);
  }
  return sources;
}

void print_summary(const Run& r, const std::vector<Source>& sources, std::uint64_t syscalls) {
  std::fprintf(stderr, "aio-poll: %s; %llu events, %llu polls cancelled, %llu syscalls\n", r.reason.c_str(),
               static_cast<unsigned long long>(r.events), static_cast<unsigned long long>(r.cancelled),
               static_cast<unsigned long long>(syscalls));
  for (const auto& s : sources)
    std::fprintf(stderr, "aio-poll:   %s: %llu events, %llu bytes, %llu lines%s\n", s.name.c_str(),
                 static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.bytes),
                 static_cast<unsigned long long>(s.lines), s.eof ? ", EOF" : "");
}

int run(int argc, char** argv) {
  const auto args = cli::parse_args(argc, argv, specs);
  std::optional<double> timeout;
  for (const auto& o : args.opts) {
    if (o.id == kHelp) return std::fputs(usage_text, stdout) < 0 ? 1 : 0;
    if (o.id == kVersion) cli::print_version();
    if (o.id == kTimeout) timeout = cli::parse_seconds(o.value, "timeout");
  }
  std::vector<std::string> paths = args.positionals;
  if (paths.empty()) paths.emplace_back("-");
  if (paths.size() > 65536) cli::usage_error("too many sources (max 65536)");

  const cli::Fd signals = stop_signal_pipe();  // first: no stop signal is lost from here on
  ::signal(SIGPIPE, SIG_IGN);
  std::vector<Source> sources = open_sources(paths);
  struct StdinGuard {  // never close fd 0 through the Fd owner
    std::vector<Source>& v;
    ~StdinGuard() {
      for (auto& s : v)
        if (s.is_stdin) (void)s.fd.release();
    }
  } stdin_guard{sources};
  for (const auto& s : sources) check_pollable(s);
  const cli::Fd timer = timeout ? timeout_fd(*timeout) : cli::Fd();

  // Declared after the sources: ~Engine cancels and reaps its polls before they close.
  aio::Observer observer;
  auto engine = aio::Engine::create({.queue_depth = static_cast<unsigned>(sources.size() + 2), .observer = &observer});
  if (!engine) cli::fail_setup(static_cast<unsigned>(sources.size() + 2), engine.error());
  Run r{.engine = *engine, .active = sources.size()};
  std::vector<aio::Task<>> tasks;
  for (auto& s : sources) tasks.push_back(watch(r, s));
  tasks.push_back(watch_stop(r, signals.get(), nullptr));
  if (timer.valid()) tasks.push_back(watch_stop(r, timer.get(), "timeout"));
  aio::sync_wait(*engine, aio::when_all(tasks));

  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    cli::note(std::string("stdout: ") + std::strerror(errno != 0 ? errno : EIO));
    r.status = 1;
  }
  print_summary(r, sources, observer.total_syscalls());
  return r.status;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-poll", argc, argv, run); }
