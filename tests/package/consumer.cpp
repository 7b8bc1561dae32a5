// A consumer of aiopp, built three ways (find_package, add_subdirectory, pkg-config): it must
// compile against the public headers only, link libaiopp.a, and do real I/O.
#include <fcntl.h>
#include <unistd.h>

#include <aio/aio.hpp>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

int main() {
  static_assert(AIOPP_VERSION_MAJOR == 0);
  char path[] = "/tmp/aiopp-consumer-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) return std::perror("mkstemp"), 1;
  ::unlink(path);
  const std::string text = "hello from aiopp";
  if (::write(fd, text.data(), text.size()) != static_cast<ssize_t>(text.size())) return 1;

  auto ctx = aio::Context::create(4);
  if (!ctx) return std::fprintf(stderr, "create: %s\n", ctx.error().message().c_str()), 1;
  std::array<std::byte, 64> buf{};
  iocb cb = aio::make_pread(fd, buf, 0);
  iocb* list[] = {&cb};
  if (auto n = ctx->submit(list); !n || *n != 1) return std::fprintf(stderr, "submit failed\n"), 1;
  std::array<io_event, 1> ev{};
  auto got = ctx->getevents(1, ev);
  if (!got || *got != 1) return std::fprintf(stderr, "getevents failed\n"), 1;
  auto res = aio::result(ev[0]);
  if (!res || *res != text.size() || std::memcmp(buf.data(), text.data(), text.size()) != 0)
    return std::fprintf(stderr, "wrong data\n"), 1;
  if (auto bad = aio::Context{}.submit(list); bad || bad.error() != std::errc::invalid_argument) return 1;
  std::printf("consumer ok: read %zu bytes with aiopp %s\n", *res, AIOPP_VERSION_STRING);
  ::close(fd);
  return 0;
}
