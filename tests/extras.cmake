# Beyond the syscalls: probe, batch submit, deadline waits, aio-max-nr, RWF_NOWAIT, flags.
aiopp_add_test(test_flags test_flags.cpp)
aiopp_add_test(test_nowait test_nowait.cpp)
aiopp_add_test(test_batch test_batch.cpp)
aiopp_add_test(test_batch_fi FI test_batch_fi.cpp)
aiopp_add_test(test_wait test_wait.cpp)
aiopp_add_test(test_wait_fi FI test_wait_fi.cpp)
aiopp_add_test(test_limits test_limits.cpp)
aiopp_add_test(test_limits_fi FI test_limits_fi.cpp)
aiopp_add_test(test_probe test_probe.cpp)
aiopp_add_test(test_probe_fi FI test_probe_fi.cpp)

# Tests that fill the system-wide fs.aio-max-nr quota for a moment: never alongside other
# tests (RUN_SERIAL). Like aiopp_add_test(), plus that property on every discovered test.
add_executable(test_limits_serial test_limits_serial.cpp)
target_link_libraries(test_limits_serial PRIVATE aiopp::aiopp GTest::gtest GTest::gtest_main Threads::Threads)
target_include_directories(test_limits_serial PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
aiopp_set_warnings(test_limits_serial)
gtest_discover_tests(test_limits_serial DISCOVERY_TIMEOUT 30 PROPERTIES TIMEOUT 120 RUN_SERIAL TRUE)
