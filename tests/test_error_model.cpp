// Error model: aio::make_error_code() and aio::fail() build std::error_code(errno,
// system_category()); aio::result() turns io_event::res into a value or that errno. What
// each call returns for each errno the kernel gives is in test_fi_errors.
#include <gtest/gtest.h>

#include <climits>
#include <cstdint>
#include <limits>

#include "test_util.hpp"

namespace {

io_event event_with_res(std::int64_t res) {
  io_event ev{};
  ev.res = res;
  return ev;
}

TEST(ErrorModel, MakeErrorCodeAndFailUseSystemCategory) {
  const std::error_code ec = aio::make_error_code(EBADF);
  EXPECT_EQ(&ec.category(), &std::system_category());
  EXPECT_EQ(ec.value(), EBADF);
  EXPECT_EQ(ec, std::errc::bad_file_descriptor);
  aio::Result<int> r = aio::fail(EAGAIN);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error(), std::errc::resource_unavailable_try_again);
  EXPECT_EQ(r.error(), std::error_code(EAGAIN, std::system_category()));
}

TEST(ErrorModel, ResultOfNonNegativeResIsTheValue) {
  for (std::int64_t v : {std::int64_t{0}, std::int64_t{1}, std::int64_t{4096},
                         std::int64_t{1} << 40, std::numeric_limits<std::int64_t>::max()}) {
    auto r = aio::result(event_with_res(v));
    ASSERT_TRUE(r) << v;
    EXPECT_EQ(*r, static_cast<std::size_t>(v));
  }
}

TEST(ErrorModel, ResultOfNegativeResIsThatErrno) {
  struct Case {
    std::int64_t res;
    std::errc expected;
  };
  for (const Case c : {Case{-EBADF, std::errc::bad_file_descriptor}, Case{-EFAULT, std::errc::bad_address},
                       Case{-EINVAL, std::errc::invalid_argument},
                       Case{-ECANCELED, std::errc::operation_canceled},
                       Case{-EAGAIN, std::errc::resource_unavailable_try_again},
                       Case{-EIO, std::errc::io_error}}) {
    auto r = aio::result(event_with_res(c.res));
    ASSERT_FALSE(r) << c.res;
    EXPECT_EQ(r.error(), c.expected) << c.res;
    EXPECT_EQ(&r.error().category(), &std::system_category());
  }
  // The largest errno the kernel can encode (-MAX_ERRNO) is still passed through verbatim.
  auto edge = aio::result(event_with_res(-4095));
  ASSERT_FALSE(edge);
  EXPECT_EQ(edge.error().value(), 4095);
}

TEST(ErrorModel, ResultOfOutOfRangeNegativeResIsEio) {
  for (std::int64_t v : {std::int64_t{-4096}, std::int64_t{-100000}, std::int64_t{INT_MIN},
                         std::numeric_limits<std::int64_t>::min()}) {
    auto r = aio::result(event_with_res(v));
    ASSERT_FALSE(r) << v;
    EXPECT_EQ(r.error(), std::errc::io_error) << v;
  }
}

}  // namespace
