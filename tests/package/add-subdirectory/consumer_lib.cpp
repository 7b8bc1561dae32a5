// The consumer's own library: one function over aiopp, so that it really links libaiopp.a.
#include <aio/aio.hpp>

int consumer_lib_probe() {
  auto ctx = aio::Context::create(1);
  return ctx ? 0 : ctx.error().value();
}
