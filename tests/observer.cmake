# Per-Context observer: counters, latency histogram, syscall hook.
aiopp_add_test(test_observer test_observer.cpp)
