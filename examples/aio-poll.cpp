// aio-poll — wait for input on FIFOs, sockets and stdin with IOCB_CMD_POLL and print it.
//
// One one-shot poll per source is kept armed; when it completes the source is read once
// and every complete line is printed as "name: text", then the poll is re-armed.
// SIGINT/SIGTERM are blocked in the thread at start and unblocked only while waiting in
// io_pgetevents() (atomically, like ppoll), so a signal can never slip in between "check
// the flag" and "go to sleep". On a signal, a timeout or when every source is at EOF, the
// outstanding polls are cancelled (io_cancel), their completions reaped (-ECANCELED, or on
// current kernels res == 0: an empty ready mask), and a summary goes to stderr.
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <optional>

#include "common.hpp"

namespace {

constexpr const char* usage_text =
    "Usage: aio-poll [OPTIONS] [PATH...]\n"
    "Wait for input on FIFOs, UNIX sockets or stdin (no PATH, or '-') with IOCB_CMD_POLL and\n"
    "print each line that arrives as 'NAME: TEXT' on stdout (NAME is the PATH, or 'stdin').\n"
    "\n"
    "  -t, --timeout SECONDS  stop after this long (fractions allowed; default: no timeout)\n"
    "  -h, --help             show this help and exit\n"
    "\n"
    "A terminal, a regular file or a device that is always ready cannot be waited on with\n"
    "IOCB_CMD_POLL and is refused: pipe it in instead ('cmd | aio-poll').\n"
    "FIFOs are opened O_RDONLY|O_NONBLOCK, so opening never waits for a writer. A FIFO stays\n"
    "silent until a writer connects; it reaches EOF when its writers have all closed it after\n"
    "at least one connected (a read returning 0). A path naming a UNIX stream socket is\n"
    "connected to. aio-poll stops on SIGINT/SIGTERM, on the timeout, or when every source\n"
    "is at EOF, then prints a summary (events and bytes per source) on stderr and exits 0.\n"
    "Exit status: 0 ok, 1 runtime error (e.g. a PATH that cannot be opened), 2 usage error.\n";

enum OptId { kTimeout, kHelp };
constexpr cli::OptSpec specs[] = {{"timeout", 't', true, kTimeout}, {"help", 'h', false, kHelp}};

volatile sig_atomic_t g_signal = 0;
extern "C" void on_signal(int sig) { g_signal = sig; }

struct Source {
  std::string name;
  std::string path;  // empty for stdin
  cli::Fd fd;        // not owning for stdin (released before close)
  bool is_stdin = false;
  bool is_fifo = false;
  bool armed = false;
  bool eof = false;
  iocb cb{};
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

int run(int argc, char** argv) {
  const auto args = cli::parse_args(argc, argv, specs);
  std::optional<double> timeout;
  for (const auto& o : args.opts) {
    if (o.id == kHelp) {
      std::fputs(usage_text, stdout);
      return 0;
    }
    if (o.id == kTimeout) timeout = cli::parse_seconds(o.value, "timeout");
  }
  std::vector<std::string> paths = args.positionals;
  if (paths.empty()) paths.emplace_back("-");
  if (paths.size() > 65536) cli::usage_error("too many sources (max 65536)");

  // Block the stop signals first thing, before anything can arrive unnoticed; they are
  // unblocked only inside io_pgetevents() via wait_mask.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  sigset_t wait_mask;
  if (int e = ::pthread_sigmask(SIG_BLOCK, &stop_signals, &wait_mask); e != 0) cli::fail("pthread_sigmask", e);
  sigdelset(&wait_mask, SIGINT);
  sigdelset(&wait_mask, SIGTERM);
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
  ::signal(SIGPIPE, SIG_IGN);

  std::vector<Source> sources(paths.size());
  bool stdin_used = false;
  for (std::size_t i = 0; i < paths.size(); ++i) {
    Source& s = sources[i];
    if (paths[i].empty()) cli::usage_error("empty path operand");
    if (paths[i] == "-") {
      if (stdin_used) cli::usage_error("stdin ('-') given more than once");
      stdin_used = true;
      s.name = "stdin";
      s.is_stdin = true;
      s.fd.reset(STDIN_FILENO);
      struct stat st {};
      if (::fstat(STDIN_FILENO, &st) != 0) {
        (void)s.fd.release();
        cli::fail("stdin", errno);
      }
      s.is_fifo = S_ISFIFO(st.st_mode);
    } else {
      s.name = paths[i];
      s.path = paths[i];
      s.fd.reset(open_source(paths[i], s.is_fifo));
    }
  }
  struct StdinGuard {  // never close fd 0 through the Fd owner
    std::vector<Source>& v;
    ~StdinGuard() {
      for (auto& s : v)
        if (s.is_stdin) (void)s.fd.release();
    }
  } stdin_guard{sources};
  for (const auto& s : sources) check_pollable(s);

  // Sources are declared before the Context: ~Context waits for in-flight polls first.
  cli::CountingContext ctx = cli::make_context(static_cast<unsigned>(sources.size()));
  std::vector<io_event> events(sources.size());
  std::vector<iocb*> batch;
  batch.reserve(sources.size());
  int status = 0;
  std::uint64_t total_events = 0;

  const auto arm = [&](Source& s) {
    s.cb = aio::make_poll(s.fd.get(), aio::PollEvents::in);
    aio::set_user_ptr(s.cb, &s);
    batch.push_back(&s.cb);
  };
  const auto submit_batch = [&]() {
    std::size_t sent = 0;
    while (sent < batch.size()) {
      auto n = ctx.submit(std::span<iocb* const>(batch).subspan(sent));
      if (!n) {
        if (n.error() == std::errc::interrupted) continue;
        auto* s = reinterpret_cast<Source*>(static_cast<std::uintptr_t>(batch[sent]->aio_data));
        cli::note(s->name + ": poll: " + n.error().message());
        s->eof = true;  // drop this source, keep the others
        status = 1;
        ++sent;
        continue;
      }
      for (std::size_t k = sent; k < sent + *n; ++k)
        reinterpret_cast<Source*>(static_cast<std::uintptr_t>(batch[k]->aio_data))->armed = true;
      sent += *n;
    }
    batch.clear();
  };
  // Reads once from a source the poll said is ready; returns false at EOF/error.
  const auto drain = [&](Source& s, aio::PollEvents mask) {
    char buf[65536];
    const ssize_t n = ::read(s.fd.get(), buf, sizeof buf);
    if (n > 0) {
      s.bytes += static_cast<std::uint64_t>(n);
      emit(s, buf, static_cast<std::size_t>(n));
      return true;
    }
    if (n == 0) return false;  // EOF
    if (errno == EAGAIN || errno == EINTR) {
      if (aio::any(mask & aio::PollEvents::hup) && s.is_fifo && !s.is_stdin) {
        // HUP with nothing to read: the kernel reports a hang-up that would fire forever.
        // Reopen so the FIFO waits for the next writer instead of spinning.
        bool fifo = false;
        s.fd.reset(open_source(s.path, fifo));
      }
      return true;
    }
    cli::note(s.name + ": read: " + std::strerror(errno));
    status = 1;
    return false;
  };
  const auto handle = [&](const io_event& ev, bool rearm) {
    Source& s = *aio::user_ptr<Source>(ev);
    s.armed = false;
    auto res = aio::result(ev);
    if (!res) {
      if (res.error() != std::errc::operation_canceled) {
        cli::note(s.name + ": poll: " + res.error().message());
        s.eof = true;
        status = 1;
      }
      return;
    }
    const aio::PollEvents ready = aio::poll_events(ev);
    if (!aio::any(ready)) return;  // an empty ready mask: a cancelled poll (Linux reports res 0, not -ECANCELED)
    ++s.events;
    ++total_events;
    if (!drain(s, ready)) {
      s.eof = true;
      flush_partial(s);
    } else if (rearm) {
      arm(s);
    }
  };

  for (auto& s : sources) arm(s);
  submit_batch();

  const std::uint64_t deadline =
      timeout ? cli::now_ns() + static_cast<std::uint64_t>(*timeout * 1e9) : std::numeric_limits<std::uint64_t>::max();
  std::string reason;
  for (;;) {
    std::size_t armed = 0;
    for (const auto& s : sources) armed += s.armed ? 1 : 0;
    if (armed == 0) {
      reason = "every source at EOF";
      break;
    }
    if (g_signal != 0) {
      reason = g_signal == SIGINT ? "interrupted (SIGINT)" : "terminated (SIGTERM)";
      break;
    }
    aio::Timeout wait;
    if (timeout) {
      const std::uint64_t now = cli::now_ns();
      if (now >= deadline) {
        reason = "timeout";
        break;
      }
      wait = std::chrono::nanoseconds(deadline - now);
    }
    std::fflush(stdout);
    auto got = ctx.pgetevents(1, events, wait, &wait_mask);
    if (!got) {
      if (got.error() == std::errc::interrupted) continue;  // the handler set g_signal
      cli::fail("io_pgetevents", got.error());
    }
    for (std::size_t i = 0; i < *got; ++i) handle(events[i], true);
    submit_batch();
  }

  // Cancel what is still armed and reap it: cancelled polls complete with -ECANCELED;
  // one that completed meanwhile is reaped (and its data read) as a normal event.
  std::size_t outstanding = 0;
  for (auto& s : sources) {
    if (!s.armed) continue;
    ++outstanding;
    (void)ctx.cancel(s.cb);  // invalid_argument: it completed already, its event is waiting
  }
  std::uint64_t cancelled = 0;
  if (outstanding > 0) {
    // One deadline for all of them; wait_for retries EINTR (a second Ctrl-C) with the time left.
    auto got = aio::wait_for(ctx.raw(), outstanding, std::span<io_event>(events).first(outstanding), std::chrono::seconds(2));
    if (!got) cli::fail("io_getevents", got.error());
    for (std::size_t i = 0; i < *got; ++i) {
      if (events[i].res == -ECANCELED || events[i].res == 0) ++cancelled;
      handle(events[i], false);
    }
    if (*got < outstanding)  // should not happen: every poll was cancelled
      cli::note(std::to_string(outstanding - *got) + " cancelled polls did not complete within 2 s");
  }
  for (auto& s : sources) flush_partial(s);
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    cli::note(std::string("stdout: ") + std::strerror(errno != 0 ? errno : EIO));
    status = 1;
  }

  std::fprintf(stderr, "aio-poll: %s; %llu events, %llu polls cancelled, %llu syscalls\n", reason.c_str(),
               static_cast<unsigned long long>(total_events), static_cast<unsigned long long>(cancelled),
               static_cast<unsigned long long>(ctx.calls()));
  for (const auto& s : sources)
    std::fprintf(stderr, "aio-poll:   %s: %llu events, %llu bytes, %llu lines%s\n", s.name.c_str(),
                 static_cast<unsigned long long>(s.events), static_cast<unsigned long long>(s.bytes),
                 static_cast<unsigned long long>(s.lines), s.eof ? ", EOF" : "");
  return status;
}

}  // namespace

int main(int argc, char** argv) { return cli::run_main("aio-poll", argc, argv, run); }
