// aiopp — version.hpp: the library's version, and the one place to change it (CMakeLists.txt
// reads AIOPP_VERSION_STRING into project(VERSION); tests/test_version.cpp checks the parts).
#pragma once

// NOLINTBEGIN(cppcoreguidelines-macro-usage,modernize-macro-to-enum): macros, so consumers can test them in #if
#define AIOPP_VERSION_MAJOR 0
#define AIOPP_VERSION_MINOR 1
#define AIOPP_VERSION_PATCH 0
#define AIOPP_VERSION_STRING "0.1.0"
// NOLINTEND(cppcoreguidelines-macro-usage,modernize-macro-to-enum)
