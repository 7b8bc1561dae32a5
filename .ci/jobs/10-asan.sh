#!/usr/bin/env bash
# The whole test suite under ASan + UBSan (-fno-sanitize-recover=all): any report fails the run.
set -euo pipefail
cmake --workflow --preset asan
