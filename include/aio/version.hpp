// aiopp — version.hpp (kept equal to project(VERSION) in CMakeLists.txt; a test checks it).
#pragma once

// NOLINTBEGIN(cppcoreguidelines-macro-usage,modernize-macro-to-enum): macros, so consumers can test them in #if
#define AIOPP_VERSION_MAJOR 0
#define AIOPP_VERSION_MINOR 1
#define AIOPP_VERSION_PATCH 0
#define AIOPP_VERSION_STRING "0.1.0"
// NOLINTEND(cppcoreguidelines-macro-usage,modernize-macro-to-enum)
