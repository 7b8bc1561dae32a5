# Reliability: the soak test (label "soak", its own CI budget) and the limits stress tests.
# Both read or fill the system-wide fs.aio-nr / aio-max-nr and count the process's fds and
# [aio] mappings, so every test they contain runs alone (RUN_SERIAL).

# aiopp_soak_add_test(<name> <timeout> <labels> SOURCES...): like aiopp_add_test(), with
# RUN_SERIAL, the given ctest TIMEOUT and LABELS on every discovered test.
function(aiopp_soak_add_test name timeout labels)
  add_executable(${name} ${ARGN})
  target_link_libraries(${name} PRIVATE aiopp::aiopp GTest::gtest GTest::gtest_main Threads::Threads)
  target_include_directories(${name} PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
  aiopp_set_warnings(${name})
  gtest_discover_tests(${name} DISCOVERY_TIMEOUT 30
                       PROPERTIES LABELS "${labels}" RUN_SERIAL TRUE TIMEOUT ${timeout})
endfunction()

# Three submitter threads and one reaper on one Context: 2,000,000 requests or 100 s,
# whichever comes first (~25-35 s on 2 busy cores), at least 1,000,000 (AIOPP_SOAK_SECONDS,
# AIOPP_SOAK_OPS, AIOPP_SOAK_MIN_OPS; see the top of test_soak.cpp).
aiopp_soak_add_test(test_soak 300 soak test_soak.cpp)
# Quota exhaustion with many contexts, full rings, destroy and fork with I/O in flight.
aiopp_soak_add_test(test_limits_stress 120 limits test_limits_stress.cpp)
