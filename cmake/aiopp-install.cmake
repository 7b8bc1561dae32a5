# Install rules, component Development: headers, libaiopp.a, a CMake package
# (aiopp-config.cmake + version file, target aiopp::aiopp) and a pkg-config file (aiopp.pc).
# The example tools are component Tools (examples/CMakeLists.txt).
include(CMakePackageConfigHelpers)

set(AIOPP_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/aiopp CACHE STRING
    "Where aiopp's CMake package files are installed, relative to the prefix")

install(TARGETS aiopp
  EXPORT aiopp-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development
  FILE_SET HEADERS DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)

install(EXPORT aiopp-targets
  NAMESPACE aiopp::
  FILE aiopp-targets.cmake
  DESTINATION ${AIOPP_CMAKE_DIR}
  COMPONENT Development)

configure_package_config_file(
  ${PROJECT_SOURCE_DIR}/cmake/aiopp-config.cmake.in
  ${PROJECT_BINARY_DIR}/aiopp-config.cmake
  INSTALL_DESTINATION ${AIOPP_CMAKE_DIR})
write_basic_package_version_file(
  ${PROJECT_BINARY_DIR}/aiopp-config-version.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES
  ${PROJECT_BINARY_DIR}/aiopp-config.cmake
  ${PROJECT_BINARY_DIR}/aiopp-config-version.cmake
  DESTINATION ${AIOPP_CMAKE_DIR}
  COMPONENT Development)

# pkg-config: prefix is found relative to the .pc file itself (${pcfiledir}), so the file
# stays right after `cmake --install --prefix <anywhere>` and when the tree is relocated.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  message(FATAL_ERROR "aiopp's pkg-config file needs relative CMAKE_INSTALL_LIBDIR/INCLUDEDIR")
endif()
file(RELATIVE_PATH AIOPP_PC_TO_PREFIX
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
# libaiopp.a's own dependencies (static: they go in Libs, not Libs.private).
set(AIOPP_PC_LIBS "")
if(AIOPP_NEEDS_LIBATOMIC)
  set(AIOPP_PC_LIBS " -latomic")
endif()
configure_file(${PROJECT_SOURCE_DIR}/cmake/aiopp.pc.in ${PROJECT_BINARY_DIR}/aiopp.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/aiopp.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig
  COMPONENT Development)
