// time64_smoke: the library's answers on a machine without Linux AIO (qemu-user answers
// io_setup with ENOSYS), or, where AIO works, one round trip through the kernel.
//   time64_smoke            exit 0 when the library's answers agree with each other
//   time64_smoke --expect-enosys   also require that AIO is unavailable (function_not_supported)
// Prints one line: "aio: unavailable: <error>" or "aio: available: ...". Errors go to stderr
// as `time64_smoke: what: why`, exit status 1.
#include <aio/aio.hpp>
#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <system_error>

namespace {

int fail(const char* what, const char* why) {
  std::fprintf(stderr, "time64_smoke: %s: %s\n", what, why);
  return 1;
}

// AIO missing: every entry point must say so the same way, without crashing.
int check_unavailable(const std::error_code& setup_error, const aio::Capabilities& caps) {
  if (setup_error != std::errc::function_not_supported)
    return fail("io_setup", ("expected function_not_supported, got " + setup_error.message()).c_str());
  if (caps.supports(aio::Capability::setup) || caps.setup != std::errc::function_not_supported)
    return fail("probe", "setup not reported as function_not_supported");
  if (caps.supports(aio::Capability::pgetevents) || caps.supports(aio::Capability::poll) || caps.ring_reaping)
    return fail("probe", "a capability reported without io_setup");
  aio::Context empty;
  std::array<io_event, 1> ev{};
  auto r = empty.getevents(0, ev, std::chrono::nanoseconds(0));
  if (r || r.error() != std::errc::invalid_argument) return fail("getevents", "an empty Context must say invalid_argument");
  std::printf("aio: unavailable: %s\n", setup_error.message().c_str());
  return 0;
}

// AIO present: a poll completion, reaped with a timeout beyond the 32-bit time_t range.
int check_available(aio::Context& ctx, const aio::Capabilities& caps) {
  if (!caps.supports(aio::Capability::setup)) return fail("probe", "setup fails but io_setup worked");
  const int efd = ::eventfd(1, EFD_CLOEXEC);
  if (efd < 0) return fail("eventfd", std::strerror(errno));
  iocb cb = aio::make_poll(efd, aio::PollEvents::in);
  iocb* list[] = {&cb};
  auto n = ctx.submit(list);
  std::array<io_event, 1> ev{};
  auto got = n ? ctx.getevents(1, ev, std::chrono::seconds(std::int64_t{1} << 32)) : aio::Result<std::size_t>{};
  ::close(efd);
  if (!n) return fail("io_submit", n.error().message().c_str());
  if (!got) return fail("io_getevents", got.error().message().c_str());
  if (*got != 1 || aio::request_of(ev[0]) != &cb) return fail("io_getevents", "wrong completion");
  std::printf("aio: available: ring reaping %s\n", caps.ring_reaping ? "yes" : "no");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool expect_enosys = argc > 1 && std::strcmp(argv[1], "--expect-enosys") == 0;
  if (argc > 2 || (argc == 2 && !expect_enosys)) return fail("usage", "time64_smoke [--expect-enosys]");
  const aio::Capabilities caps = aio::probe();
  auto ctx = aio::Context::create(4);
  if (!ctx) return check_unavailable(ctx.error(), caps);
  if (expect_enosys) return fail("io_setup", "succeeded, but AIO was expected to be unavailable");
  return check_available(*ctx, caps);
}
