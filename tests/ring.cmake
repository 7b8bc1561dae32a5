# Userspace ring reaping (src/ring.hpp, the ReapMode::automatic path of Context).
aiopp_add_test(test_ring_reader test_ring_reader.cpp)
target_include_directories(test_ring_reader PRIVATE ${PROJECT_SOURCE_DIR}/src)
aiopp_add_test(test_ring_path FI test_ring_path.cpp)
