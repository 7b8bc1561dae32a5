#!/usr/bin/env bash
# The whole test suite under ASan + UBSan (-fno-sanitize-recover=all): any report fails the run.
# The system tests too (label system: the AIO quota filled, fs.aio-max-nr lowered), asked for
# with AIOPP_TEST_SYSTEM=1; test_no_alloc skips (ASan owns malloc and operator new).
set -euo pipefail
export AIOPP_TEST_SYSTEM=1
cmake --workflow --preset asan
