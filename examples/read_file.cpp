// read_file: reads FILE with DEPTH requests in flight (one coroutine each); prints its size and byte sum.
#include <aio/aio.hpp>
#include <fcntl.h>
#include <sys/stat.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

constexpr char kUsage[] = "usage: read_file [--depth 1..1024] FILE   (prints its size and byte sum)\n";
constexpr std::int64_t kBlock = 1 << 16;

struct Reader {
  aio::Engine& engine;
  int fd, error = 0;
  std::int64_t size, next = 0;
  std::uint64_t sum = 0;  // modulo 2^64
};

aio::Task<> read_blocks(Reader& r) {  // takes the next block until none is left
  std::vector<unsigned char> buf(kBlock);
  for (std::int64_t off = 0; r.error == 0 && (off = r.next) < r.size;) {
    r.next += kBlock;
    auto n = co_await r.engine.read(r.fd, std::span(buf), off);
    if (!n) r.error = n.error().value();
    for (std::size_t i = 0; n && i < *n; ++i) r.sum += buf[i];
  }
}

int fail(const char* what, int err) { return std::fprintf(stderr, "read_file: %s: %s\n", what, std::strerror(err)), 1; }

int main(int argc, char** argv) {
  const std::string_view a1 = argc > 1 ? argv[1] : "";
  if (a1 == "--help" || a1 == "-h") return std::fputs(kUsage, stdout) < 0;
  if (a1 == "--version") return std::printf("read_file (aiopp) %s\n", AIOPP_VERSION_STRING) < 0;
  const int depth = argc == 4 && a1 == "--depth" ? std::atoi(argv[2]) : argc == 2 && !a1.starts_with('-') ? 8 : 0;
  if (depth < 1 || depth > 1024) return std::fputs(kUsage, stderr), 2;
  struct stat st{};
  const int fd = ::open(argv[argc - 1], O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0 || ::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return fail(argv[argc - 1], fd < 0 ? errno : EINVAL);
  auto engine = aio::Engine::create({.queue_depth = static_cast<unsigned>(depth)});
  if (!engine) return fail("io_setup", engine.error().value());
  Reader r{.engine = *engine, .fd = fd, .size = st.st_size};
  std::vector<aio::Task<>> readers;
  for (int i = 0; i < depth; ++i) readers.push_back(read_blocks(r));
  aio::sync_wait(*engine, aio::when_all(readers));
  if (r.error != 0) return fail(argv[argc - 1], r.error);
  return std::printf("%jd bytes, sum %ju\n", std::intmax_t{r.size}, std::uintmax_t{r.sum}) < 0;
}
