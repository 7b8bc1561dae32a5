// A program that makes its AIO syscalls through glibc's syscall() (no libaio), with a known
// number of each, for aio-trace's exact-count test. Prints what it got as key=value lines.
//
//   raw_aio DIR          the main sequence (see main), in DIR
//   raw_aio DIR threads  then 4 threads on one new context, 200 rounds each of io_submit of
//                        one read and io_getevents(1, 1) (which may reap another thread's)
//   raw_aio DIR fork     then a forked child: 1 io_setup, 1 io_submit of 2 reads and one
//                        poll that never completes, 1 io_getevents; leaves through _exit()
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr std::size_t block = 4096;

// NOLINTBEGIN(cppcoreguidelines-pro-type-vararg): syscall() is variadic; every argument a long
long sys_setup(aio_context_t* ctx) { return ::syscall(SYS_io_setup, 64L, reinterpret_cast<long>(ctx)); }
long sys_destroy(aio_context_t ctx) { return ::syscall(SYS_io_destroy, static_cast<long>(ctx)); }
long sys_submit(aio_context_t ctx, long n, iocb** cbs) {
  return ::syscall(SYS_io_submit, static_cast<long>(ctx), n, reinterpret_cast<long>(cbs));
}
long sys_getevents(aio_context_t ctx, long min_nr, long nr, io_event* ev) {
  return ::syscall(SYS_io_getevents, static_cast<long>(ctx), min_nr, nr, reinterpret_cast<long>(ev), 0L);
}
long sys_pgetevents(aio_context_t ctx, long min_nr, long nr, io_event* ev) {
  sigset_t mask;
  sigemptyset(&mask);
  struct {
    const sigset_t* sigmask;
    std::size_t size;
  } sig{&mask, _NSIG / 8};
  return ::syscall(SYS_io_pgetevents, static_cast<long>(ctx), min_nr, nr, reinterpret_cast<long>(ev), 0L,
                   reinterpret_cast<long>(&sig));
}
long sys_cancel(aio_context_t ctx, iocb* cb, io_event* ev) {
  return ::syscall(SYS_io_cancel, static_cast<long>(ctx), reinterpret_cast<long>(cb), reinterpret_cast<long>(ev));
}
// NOLINTEND(cppcoreguidelines-pro-type-vararg)

[[noreturn]] void die(const char* what) {
  std::fprintf(stderr, "raw_aio: %s: %s\n", what, std::strerror(errno));
  std::exit(1);
}

iocb make(int fd, std::uint16_t op, void* buf, std::size_t len, long long off) {
  iocb cb{};
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_lio_opcode = op;
  cb.aio_buf = reinterpret_cast<std::uint64_t>(buf);
  cb.aio_nbytes = len;
  cb.aio_offset = off;
  return cb;
}

void child(int fd) {
  aio_context_t ctx = 0;
  if (sys_setup(&ctx) != 0) die("child io_setup");
  std::array<int, 2> p{};
  if (::pipe(p.data()) != 0) die("pipe");
  alignas(4096) static std::array<char, 2 * block> buf{};
  std::array<iocb, 3> cbs{make(fd, IOCB_CMD_PREAD, buf.data(), block, 0),
                          make(fd, IOCB_CMD_PREAD, buf.data() + block, block, block),
                          make(p[0], IOCB_CMD_POLL, nullptr, 0, 0)};
  cbs[2].aio_buf = POLLIN;
  std::array<iocb*, 3> ptrs{&cbs[0], &cbs[1], &cbs[2]};
  if (sys_submit(ctx, 3, ptrs.data()) != 3) die("child io_submit");
  std::array<io_event, 2> ev{};
  if (sys_getevents(ctx, 2, 2, ev.data()) != 2) die("child io_getevents");
  ::_exit(0);  // the poll is still in flight; no destructor runs
}

void threads(int fd) {
  aio_context_t ctx = 0;
  if (sys_setup(&ctx) != 0) die("io_setup");
  constexpr int nthreads = 4;
  constexpr int rounds = 200;
  std::vector<std::thread> pool;
  for (int t = 0; t < nthreads; ++t) {
    pool.emplace_back([ctx, fd, t] {
      alignas(4096) std::array<char, block> buf{};
      for (int i = 0; i < rounds; ++i) {
        iocb cb = make(fd, IOCB_CMD_PREAD, buf.data(), block, static_cast<long long>((t * rounds + i) % 16) * 4096);
        iocb* p = &cb;
        if (sys_submit(ctx, 1, &p) != 1) die("io_submit");
        io_event ev{};
        if (sys_getevents(ctx, 1, 1, &ev) != 1) die("io_getevents");
      }
    });
  }
  for (auto& th : pool) th.join();
  if (sys_destroy(ctx) != 0) die("io_destroy");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: raw_aio DIR [fork]\n");
    return 2;
  }
  const std::string path = std::string(argv[1]) + "/raw_aio.data";
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) die("open");
  static std::array<char, 16 * block> data{};
  data.fill('x');
  if (::pwrite(fd, data.data(), data.size(), 0) != static_cast<ssize_t>(data.size())) die("pwrite");

  aio_context_t ctx = 0;
  if (sys_setup(&ctx) != 0) die("io_setup");  // io_setup x1
  alignas(4096) static std::array<char, 16 * block> buf{};
  std::array<iocb, 4> cbs{};
  std::array<iocb*, 4> ptrs{};
  std::array<io_event, 4> ev{};
  for (int round = 0; round < 3; ++round) {  // io_submit x3 (4 requests each), io_getevents x3
    for (std::size_t i = 0; i < 4; ++i) {
      const std::size_t k = static_cast<std::size_t>(round) * 4 + i;
      cbs[i] = make(fd, IOCB_CMD_PREAD, buf.data() + k * block, block, static_cast<long long>(k * block));
      ptrs[i] = &cbs[i];
    }
    if (sys_submit(ctx, 4, ptrs.data()) != 4) die("io_submit");
    if (sys_getevents(ctx, 4, 4, ev.data()) != 4) die("io_getevents");
  }
  // io_cancel x1 of a request already reaped: the errno the program gets.
  if (sys_cancel(ctx, &cbs[0], ev.data()) == 0) die("io_cancel succeeded");
  std::printf("cancel_errno=%s\n", strerrorname_np(errno));

  // io_submit x1 on a bad fd: refused as a call.
  iocb bad = make(9999, IOCB_CMD_PREAD, buf.data(), block, 0);
  iocb* badp = &bad;
  if (sys_submit(ctx, 1, &badp) != -1) die("bad-fd io_submit accepted");
  std::printf("submit_errno=%s\n", strerrorname_np(errno));

  // io_submit x1 with a pointer to no iocb at all: the kernel's EFAULT, and no crash.
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr): deliberately unmapped
  iocb* unmapped = reinterpret_cast<iocb*>(std::uintptr_t{8});
  if (sys_submit(ctx, 1, &unmapped) != -1) die("unmapped-iocb io_submit accepted");
  std::printf("efault_errno=%s\n", strerrorname_np(errno));

  // io_submit x1 + io_getevents x1: an O_DIRECT read into a misaligned buffer fails as a request.
  const int dfd = ::open(path.c_str(), O_RDONLY | O_DIRECT);
  if (dfd >= 0) {
    iocb mis = make(dfd, IOCB_CMD_PREAD, buf.data() + 1, block, 0);
    iocb* misp = &mis;
    const long r = sys_submit(ctx, 1, &misp);
    if (r == 1) {
      if (sys_getevents(ctx, 1, 1, ev.data()) != 1) die("io_getevents");
      const auto res = static_cast<long long>(ev[0].res);
      std::printf("request_errno=%s\n", res < 0 ? strerrorname_np(static_cast<int>(-res)) : "none");
    } else {
      std::printf("direct_submit_errno=%s\n", strerrorname_np(errno));
    }
  } else {
    std::printf("request_errno=unsupported\n");
  }

  // io_submit x1 + io_pgetevents x1.
  cbs[0] = make(fd, IOCB_CMD_PREAD, buf.data(), block, 0);
  if (sys_submit(ctx, 1, ptrs.data()) != 1) die("io_submit");
  if (sys_pgetevents(ctx, 1, 1, ev.data()) != 1) die("io_pgetevents");

  if (sys_destroy(ctx) != 0) die("io_destroy");  // io_destroy x1

  if (argc > 2 && std::strcmp(argv[2], "threads") == 0) threads(fd);
  if (argc > 2 && std::strcmp(argv[2], "fork") == 0) {
    std::fflush(stdout);
    const pid_t pid = ::fork();
    if (pid < 0) die("fork");
    if (pid == 0) child(fd);
    int st = 0;
    if (::waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) die("child");
    std::printf("child_pid=%d\n", pid);
  }
  std::printf("pid=%d\n", ::getpid());
  return 0;
}
