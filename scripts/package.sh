#!/usr/bin/env bash
# Builds the Debian package from this tree: build/package/ringlet_<version>_<arch>.deb (cmake/packaging.cmake says
# what it holds). A release build of the binary (and the Python module when python3-dev is present) configured for
# /usr, then CPack's DEB generator. Usage: bash scripts/package.sh [extra cmake -D options]
set -euo pipefail
# (The Python directory is passed as a STRING: a relative PATH on the command line would be made absolute against
# the current directory; relative, it installs under the prefix, /usr.)
cd "$(dirname "$0")/.."
export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}
cmake -S . -B build/package -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr -DRINGLET_BUILD_TESTS=OFF \
  -DRINGLET_BUILD_BENCH=OFF -DRINGLET_PYTHON_INSTALL_DIR:STRING=lib/python3/dist-packages "$@" >/dev/null
cmake --build build/package -j"${JOBS:-2}"
(cd build/package && cpack -G DEB)
ls build/package/*.deb
