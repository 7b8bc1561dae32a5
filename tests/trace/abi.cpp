// libaiopp-trace.so's libaio ABI, symbol version by symbol version (dlvsym), against the
// kernel: results, the -errno convention with errno left alone, io_context_t as the ring's
// address, io_queue_run's callbacks, and syscall() passing other numbers through.
//   trace_abi LIB FILE     LIB: the interposer; FILE: any readable file of >= 4 KiB
// Prints "abi ok" and exits 0, or one line per failed check and exits 1.
#include <dlfcn.h>
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

struct io_context;
using ctx_t = io_context*;
using callback_t = void (*)(ctx_t, iocb*, long, long);

int failures = 0;
void check(bool ok, const char* what) {
  if (!ok) {
    std::printf("FAIL: %s\n", what);
    ++failures;
  }
}

void* handle = nullptr;
template <class F>
F sym(const char* name, const char* version) {
  void* p = ::dlvsym(handle, name, version);
  if (p == nullptr) {
    std::printf("FAIL: no %s@%s\n", name, version);
    ++failures;
  }
  return reinterpret_cast<F>(p);  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
}

int callbacks = 0;
long callback_res = 0;
void on_done(ctx_t /*ctx*/, iocb* /*cb*/, long res, long /*res2*/) {
  ++callbacks;
  callback_res = res;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: trace_abi LIB FILE\n");
    return 2;
  }
  handle = ::dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (handle == nullptr) {
    std::printf("FAIL: dlopen: %s\n", ::dlerror());
    return 1;
  }
  const int fd = ::open(argv[2], O_RDONLY);
  if (fd < 0) return 2;

  auto setup = sym<int (*)(int, ctx_t*)>("io_setup", "LIBAIO_0.4");
  auto destroy = sym<int (*)(ctx_t)>("io_destroy", "LIBAIO_0.4");
  auto queue_init = sym<int (*)(int, ctx_t*)>("io_queue_init", "LIBAIO_0.1");
  auto queue_release = sym<int (*)(ctx_t)>("io_queue_release", "LIBAIO_0.1");
  auto queue_run = sym<int (*)(ctx_t)>("io_queue_run", "LIBAIO_0.1");
  auto submit = sym<int (*)(ctx_t, long, iocb**)>("io_submit", "LIBAIO_0.1");
  auto getevents4 = sym<int (*)(ctx_t, long, long, io_event*, timespec*)>("io_getevents", "LIBAIO_0.4");
  auto getevents1 = sym<int (*)(ctx_t, long, io_event*, const timespec*)>("io_getevents", "LIBAIO_0.1");
  auto cancel4 = sym<int (*)(ctx_t, iocb*, io_event*)>("io_cancel", "LIBAIO_0.4");
  auto cancel1 = sym<int (*)(ctx_t, iocb*)>("io_cancel", "LIBAIO_0.1");
  auto wait4 = sym<int (*)(ctx_t, timespec*)>("io_queue_wait", "LIBAIO_0.4");
  auto wait1 = sym<int (*)(ctx_t, const timespec*)>("io_queue_wait", "LIBAIO_0.1");
  auto pgetevents = sym<int (*)(ctx_t, long, long, io_event*, timespec*, sigset_t*)>("io_pgetevents", "LIBAIO_0.5");
  auto sys = reinterpret_cast<long (*)(long, ...)>(::dlsym(handle, "syscall"));  // NOLINT
  if (failures != 0 || sys == nullptr) return 1;

  // -errno, errno untouched.
  ctx_t ctx = nullptr;
  errno = 4242;
  check(setup(-1, &ctx) == -EINVAL, "io_setup(-1) is -EINVAL");
  check(errno == 4242, "io_setup leaves errno alone");
  check(setup(64, &ctx) == 0 && ctx != nullptr, "io_setup(64)");
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the ring header's magic
  check(reinterpret_cast<const std::uint32_t*>(ctx)[4] == 0xa10a10a1U, "io_context_t is the ring (magic)");

  alignas(4096) static std::array<char, 4096> buf{};
  iocb cb{};
  cb.aio_fildes = static_cast<std::uint32_t>(fd);
  cb.aio_lio_opcode = IOCB_CMD_PREAD;
  cb.aio_buf = reinterpret_cast<std::uint64_t>(buf.data());  // NOLINT
  cb.aio_nbytes = 512;
  cb.aio_data = reinterpret_cast<std::uint64_t>(&on_done);  // NOLINT: libaio's io_set_callback
  iocb* cbp = &cb;
  timespec zero{0, 0};
  std::array<io_event, 4> ev{};

  // io_queue_run: the callback of each ready event, then 0.
  check(submit(ctx, 1, &cbp) == 1, "io_submit");
  timespec sec{1, 0};
  check(wait4(ctx, &sec) == 0 && wait1(ctx, &sec) == 0, "io_queue_wait (0.4 and 0.1) with nothing asked is 0");
  for (int i = 0; i < 100 && callbacks == 0; ++i) {
    check(queue_run(ctx) == 0, "io_queue_run ends with 0");
    if (callbacks == 0) ::usleep(1000);
  }
  check(callbacks == 1 && callback_res == 512, "io_queue_run called the callback with res 512");
  check(getevents4(ctx, 0, 4, ev.data(), &zero) == 0, "io_getevents@0.4, zero timeout, empty ring: 0");

  // LIBAIO_0.1's io_getevents(ctx, nr, events, timeout): at least one.
  check(submit(ctx, 1, &cbp) == 1, "io_submit");
  check(getevents1(ctx, 4, ev.data(), &sec) == 1 && ev[0].res == 512, "io_getevents@0.1 reaps one");
  errno = 4242;
  check(cancel4(ctx, &cb, ev.data()) == -EINVAL, "io_cancel@0.4 of a finished request is -EINVAL");
  check(cancel1(ctx, &cb) == -EINVAL, "io_cancel@0.1 of a finished request is -EINVAL");
  check(errno == 4242, "io_cancel leaves errno alone");

  check(submit(ctx, 1, &cbp) == 1, "io_submit");
  sigset_t mask;
  sigemptyset(&mask);
  check(pgetevents(ctx, 1, 4, ev.data(), &sec, &mask) == 1, "io_pgetevents@0.5 reaps one");
  check(submit(ctx, -1, &cbp) == -EINVAL, "io_submit(nr -1) is -EINVAL");
  iocb bad = cb;
  bad.aio_fildes = 9999;  // not open: the tracer's name lookup fails too, and must not show
  iocb* badp = &bad;
  errno = 4242;
  check(submit(ctx, 1, &badp) == -EBADF, "io_submit on a bad fd is -EBADF");
  check(errno == 4242, "io_submit leaves errno alone");
  check(destroy(ctx) == 0, "io_destroy");
  check(destroy(ctx) == -EINVAL, "io_destroy twice is -EINVAL");

  ctx_t q = nullptr;
  check(queue_init(8, &q) == 0 && q != nullptr, "io_queue_init");
  check(queue_release(q) == 0, "io_queue_release");

  // syscall(): other numbers through, all six arguments; io_* numbers in glibc's convention.
  check(sys(SYS_getpid) == ::getpid(), "syscall(SYS_getpid)");
  std::array<char, 8> got{};
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg): pread64 with a 64-bit offset as the 4th argument
  check(sys(SYS_pread64, static_cast<long>(fd), reinterpret_cast<long>(got.data()), 8L, 1L) == 8 &&
            got[0] == buf[1] && got[7] == buf[8],
        "syscall(SYS_pread64) passes four arguments");
  // mmap's sixth argument is the offset: page 1 of a file whose two pages differ.
  std::array<char, 32> tmpl{"/tmp/trace_abi.XXXXXX"};
  const int tfd = ::mkstemp(tmpl.data());
  std::array<char, 8192> pages{};
  std::memset(pages.data(), 'a', 4096);
  std::memset(pages.data() + 4096, 'b', 4096);
  const bool written = tfd >= 0 && ::write(tfd, pages.data(), pages.size()) == static_cast<ssize_t>(pages.size());
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg)
  const long m = written ? sys(SYS_mmap, 0L, 4096L, static_cast<long>(PROT_READ), static_cast<long>(MAP_PRIVATE),
                               static_cast<long>(tfd), 4096L)
                         : -1;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  check(m != -1 && std::memcmp(reinterpret_cast<const void*>(m), pages.data() + 4096, 4096) == 0,
        "syscall(SYS_mmap) passes six arguments");
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast,performance-no-int-to-ptr)
  if (m != -1) ::munmap(reinterpret_cast<void*>(m), 4096);
  if (tfd >= 0) {
    ::close(tfd);
    ::unlink(tmpl.data());
  }
  errno = 0;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg)
  check(sys(SYS_io_destroy, 0L) == -1 && errno == EINVAL, "syscall(SYS_io_destroy, 0) is -1/EINVAL");
  errno = 0;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-vararg)
  check(sys(SYS_close, -1L) == -1 && errno == EBADF, "syscall(SYS_close, -1) is -1/EBADF");
  if (failures == 0) std::printf("abi ok\n");
  return failures == 0 ? 0 : 1;
}
