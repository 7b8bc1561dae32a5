# Core library semantics: one test program per feature (see tests/CMakeLists.txt).
aiopp_add_test(test_error_model test_error_model.cpp)
aiopp_add_test(test_version test_version.cpp)
target_compile_definitions(test_version PRIVATE AIOPP_EXPECTED_VERSION="${PROJECT_VERSION}")
aiopp_add_test(test_context_lifecycle test_context_lifecycle.cpp)
aiopp_add_test(test_submit test_submit.cpp)
aiopp_add_test(test_getevents test_getevents.cpp)
aiopp_add_test(test_cancel test_cancel.cpp)
aiopp_add_test(test_builders test_builders.cpp)
