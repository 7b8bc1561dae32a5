# Fault injection, complete (issue "Reliability"): every error branch of the library driven
# deterministically through the syscall seam (aiopp_fi), plus the real-kernel refusals the
# seam stands in for (a seccomp filter on io_pgetevents) and the paths only a fresh or
# resource-starved process takes. Branch coverage of src/: .ci/jobs/40-coverage.sh.
aiopp_add_test(test_fi_errors FI test_fi_errors.cpp)
aiopp_add_test(test_observer_paths test_observer_paths.cpp)
aiopp_add_test(test_seccomp_fi test_seccomp_fi.cpp)
aiopp_add_test(test_fork_guard_fresh test_fork_guard_fresh.cpp)
target_include_directories(test_fork_guard_fresh PRIVATE ${PROJECT_SOURCE_DIR}/src)
