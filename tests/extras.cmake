# Beyond the syscalls: probe, batch submit, deadline waits, aio-max-nr, RWF_NOWAIT, flags.
aiopp_add_test(test_flags test_flags.cpp)
aiopp_add_test(test_nowait test_nowait.cpp)
aiopp_add_test(test_batch test_batch.cpp)
aiopp_add_test(test_batch_fi FI test_batch_fi.cpp)
aiopp_add_test(test_wait test_wait.cpp)
aiopp_add_test(test_wait_fi FI test_wait_fi.cpp)
