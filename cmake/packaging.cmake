# packaging.cmake — what the Debian package holds beyond the binary and the library (installed in CMakeLists.txt),
# and CPack's DEB settings. Build it with `bash scripts/package.sh` (docs/operations.md): a build configured for
# /usr, the Python module in Debian's dist-packages, then `cpack -G DEB`.

# systemd units (packaging/systemd/). Under /lib, where Debian 12's systemd and dh_installsystemd put them.
set(RINGLET_SYSTEMD_UNIT_DIR "/lib/systemd/system" CACHE PATH "Where the systemd unit files are installed")
file(GLOB RINGLET_UNIT_FILES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/packaging/systemd/*.service
  ${CMAKE_CURRENT_SOURCE_DIR}/packaging/systemd/*.socket)
install(FILES ${RINGLET_UNIT_FILES} DESTINATION ${RINGLET_SYSTEMD_UNIT_DIR})

# Man pages, generated from --help at install time from the binary being installed (so they never go stale).
install(CODE "execute_process(COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/scripts/make-man-pages.sh
  $<TARGET_FILE:ringlet> ${CMAKE_CURRENT_BINARY_DIR}/man ${PROJECT_VERSION} COMMAND_ERROR_IS_FATAL ANY)")
install(DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/man/ DESTINATION ${CMAKE_INSTALL_MANDIR}/man1
  FILES_MATCHING PATTERN "*.1.gz")

# Debian's policy files: the copyright notice and a changelog (changelog.gz: a native package, no Debian revision).
install(FILES ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/copyright
  DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/ringlet)
install(CODE "execute_process(COMMAND gzip -9n -c ${CMAKE_CURRENT_SOURCE_DIR}/packaging/debian/changelog
  OUTPUT_FILE ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz COMMAND_ERROR_IS_FATAL ANY)")
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/changelog.gz DESTINATION ${CMAKE_INSTALL_DATAROOTDIR}/doc/ringlet)

# `cpack` (and `make install`) would otherwise first build every target of the tree, the tests and benchmarks
# included; what is installed is built by `cmake --build` beforehand (scripts/package.sh), and the package test
# must not rebuild the world.
set(CMAKE_SKIP_INSTALL_ALL_DEPENDENCY ON)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME ringlet)
set(CPACK_PACKAGE_VENDOR "ringlet")
set(CPACK_PACKAGE_CONTACT "ringlet maintainers <ringlet@example.org>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "network servers on an io_uring/epoll coroutine runtime")
# The extended description (CPack indents it under the summary); lines within 80 columns.
set(CPACK_PACKAGE_DESCRIPTION "ringlet is one binary with a memcached-compatible cache, a beanstalkd-
compatible work queue, an HTTP/1.1 static-file server, a TCP proxy, an echo
server and a load generator, plus the C++ library they are built on (headers
and CMake package) and, when built, its Python module.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_HOMEPAGE "https://github.com/ringlet/ringlet")
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)  # dpkg-shlibdeps finds liburing2, libstdc++6, ...
# The headers and CMake package are for building against the static library: they need these to compile.
set(CPACK_DEBIAN_PACKAGE_SUGGESTS "liburing-dev, libfmt-dev")
set(CPACK_STRIP_FILES ON)
# The Python module goes in only when it installs under the prefix (scripts/package.sh sets
# RINGLET_PYTHON_INSTALL_DIR=lib/python3/dist-packages); the default /usr/local path is for `cmake --install`.
# (CPACK_COMPONENTS_ALL does not filter a one-package DEB; the install projects, one entry per component, do.)
set(CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_CURRENT_BINARY_DIR};ringlet;Unspecified;/")
if(RINGLET_BUILD_PYTHON AND NOT IS_ABSOLUTE "${RINGLET_PYTHON_INSTALL_DIR}")
  list(APPEND CPACK_INSTALL_CMAKE_PROJECTS "${CMAKE_CURRENT_BINARY_DIR}" ringlet python /)
  # The extension module is built for one interpreter ABI (its file name says cpython-3XY).
  math(EXPR RINGLET_PY_NEXT_MINOR "${Python3_VERSION_MINOR} + 1")
  set(CPACK_DEBIAN_PACKAGE_DEPENDS "python3 (>= ${Python3_VERSION_MAJOR}.${Python3_VERSION_MINOR}), \
python3 (<< ${Python3_VERSION_MAJOR}.${RINGLET_PY_NEXT_MINOR})")
endif()
include(CPack)
