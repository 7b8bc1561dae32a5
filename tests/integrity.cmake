# O_DIRECT data integrity against the real file system (ext4 here): sub-block writes past
# EOF, extending writes and i_size at completion, writes into holes. The program picks a
# directory whose file system accepts O_DIRECT (env AIOPP_TEST_DIRECT_DIR first, then
# TMPDIR, /var/tmp, /tmp and the build directory) and skips only when none does.
aiopp_add_test(test_odirect_integrity test_odirect_integrity.cpp)
