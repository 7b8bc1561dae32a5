# The aiopp demo (target `demo`, workflow preset `demo`), run with cmake -P:
#   cmake -DAIO_COPY=... -DAIO_BENCH=... -DWORK_DIR=... -P demo.cmake
# Makes a 64 MiB file of random data, copies it with aio-copy at queue depth 32, checks
# the copy byte for byte, then runs a 3-second aio-bench randread on it.
cmake_minimum_required(VERSION 3.25)
foreach(var AIO_COPY AIO_BENCH WORK_DIR)
  if(NOT DEFINED ${var})
    message(FATAL_ERROR "demo.cmake: -D${var}=... is required")
  endif()
endforeach()

file(MAKE_DIRECTORY "${WORK_DIR}")
set(src "${WORK_DIR}/demo-src.bin")
set(dst "${WORK_DIR}/demo-copy.bin")
set(size 67108864)

set(have_src FALSE)
if(EXISTS "${src}")
  file(SIZE "${src}" existing)
  if(existing EQUAL size)
    set(have_src TRUE)
  endif()
endif()
if(NOT have_src)
  message(STATUS "demo: writing 64 MiB of random data to ${src}")
  execute_process(COMMAND head -c ${size} /dev/urandom
    OUTPUT_FILE "${src}" RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "demo: could not create ${src} (head -c /dev/urandom: ${rc})")
  endif()
endif()
file(REMOVE "${dst}")

message(STATUS "demo: aio-copy -q 32 ${src} ${dst}")
execute_process(COMMAND "${AIO_COPY}" -q 32 "${src}" "${dst}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "demo: aio-copy failed (exit ${rc})")
endif()

execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${src}" "${dst}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "demo: the copy differs from the source")
endif()
message(STATUS "demo: the copy is identical to the source (cmake -E compare_files)")

# O_DIRECT when the build tree's filesystem supports it, else buffered (page-cache) reads.
message(STATUS "demo: aio-bench --rw randread --bs 4K --qd 32 --time 3 --direct")
execute_process(COMMAND "${AIO_BENCH}" --file "${dst}" --rw randread --bs 4K --qd 32 --time 3 --direct
  RESULT_VARIABLE rc ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  string(STRIP "${err}" err)
  message(STATUS "demo: ${err}; running buffered instead")
  execute_process(COMMAND "${AIO_BENCH}" --file "${dst}" --rw randread --bs 4K --qd 32 --time 3
    RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "demo: aio-bench failed (exit ${rc})")
  endif()
endif()
message(STATUS "demo: done")
