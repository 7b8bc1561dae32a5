# Packaging is tested by real consumer projects (run by ctest after the build):
#  - package.install: installs this build into a private prefix
#  - package.find_package: a project using find_package(aiopp CONFIG) -> aiopp::aiopp
#  - package.add_subdirectory: a project embedding the source tree
#  - package.pkg_config: a bare compiler command line from `pkg-config --cflags --libs aiopp`
if(NOT AIOPP_INSTALL)
  return()
endif()

set(pkg_dir ${CMAKE_CURRENT_BINARY_DIR}/package)
set(pkg_prefix ${pkg_dir}/prefix)
# Consumers must be built with the same sanitizer/compile flags as libaiopp.a.
set(pkg_flags
  -DCMAKE_CXX_COMPILER=${CMAKE_CXX_COMPILER}
  "-DCMAKE_CXX_FLAGS=${CMAKE_CXX_FLAGS}"
  "-DCMAKE_EXE_LINKER_FLAGS=${CMAKE_EXE_LINKER_FLAGS}"
  -DCMAKE_BUILD_TYPE=${CMAKE_BUILD_TYPE})

add_test(NAME package.install
  COMMAND ${CMAKE_COMMAND} --install ${PROJECT_BINARY_DIR} --prefix ${pkg_prefix})
set_tests_properties(package.install PROPERTIES FIXTURES_SETUP aiopp_installed LABELS package)

add_test(NAME package.find_package
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/package/find-package ${pkg_dir}/find-package
    --build-generator ${CMAKE_GENERATOR}
    --build-makeprogram ${CMAKE_MAKE_PROGRAM}
    --build-options ${pkg_flags} -DCMAKE_PREFIX_PATH=${pkg_prefix} -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF
    --test-command consumer)
set_tests_properties(package.find_package PROPERTIES
  FIXTURES_REQUIRED aiopp_installed LABELS package PASS_REGULAR_EXPRESSION "consumer ok")

add_test(NAME package.add_subdirectory
  COMMAND ${CMAKE_CTEST_COMMAND}
    --build-and-test ${CMAKE_CURRENT_SOURCE_DIR}/package/add-subdirectory ${pkg_dir}/add-subdirectory
    --build-generator ${CMAKE_GENERATOR}
    --build-makeprogram ${CMAKE_MAKE_PROGRAM}
    --build-options ${pkg_flags} -DAIOPP_SOURCE_DIR=${PROJECT_SOURCE_DIR}
    --test-command consumer)
set_tests_properties(package.add_subdirectory PROPERTIES LABELS package PASS_REGULAR_EXPRESSION "consumer ok")

find_program(AIOPP_PKG_CONFIG pkg-config)
if(AIOPP_PKG_CONFIG)
  separate_arguments(pkg_cxx_flags UNIX_COMMAND "${CMAKE_CXX_FLAGS} ${CMAKE_EXE_LINKER_FLAGS}")
  add_test(NAME package.pkg_config
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/package/pkg-config/build-and-run.sh
      ${pkg_prefix} ${pkg_dir}/pkg-config ${CMAKE_CXX_COMPILER} ${pkg_cxx_flags})
  set_tests_properties(package.pkg_config PROPERTIES
    FIXTURES_REQUIRED aiopp_installed LABELS package PASS_REGULAR_EXPRESSION "consumer ok")
else()
  message(WARNING "pkg-config not found: the pkg-config consumer test is not registered")
endif()
