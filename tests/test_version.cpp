// The version macros agree with each other and with project(VERSION), which CMakeLists.txt
// reads from them.
#include <gtest/gtest.h>

#include <string>

#include <aio/version.hpp>

#ifndef AIOPP_EXPECTED_VERSION
#error "tests/CMakeLists.txt must pass AIOPP_EXPECTED_VERSION (the CMake PROJECT_VERSION)"
#endif

TEST(Version, StringMatchesCMakeProjectVersion) {
  EXPECT_STREQ(AIOPP_VERSION_STRING, AIOPP_EXPECTED_VERSION);
}

TEST(Version, ComponentsMatchString) {
  const std::string joined = std::to_string(AIOPP_VERSION_MAJOR) + "." + std::to_string(AIOPP_VERSION_MINOR) +
                             "." + std::to_string(AIOPP_VERSION_PATCH);
  EXPECT_EQ(joined, AIOPP_VERSION_STRING);
}
