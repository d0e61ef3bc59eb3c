#!/usr/bin/env bash
# The Python binding on every other CPython present (python3.12, python3.13: on PATH or in pyenv): builds the extension for each
# in build/py<version>/ and runs the binding's own tests; an interpreter that is absent is skipped. Debian's 3.11
# is tested by ctest (python_pytest_*) in the release and ASan stages of scripts/test.sh.
#   RINGLET_PY_FULL=1   also runs CPython's asyncio suite from that interpreter's own test package (~1 min each).
# An interpreter without pytest borrows Debian's (python3-pytest is pure Python).
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_CXX_COMPILER_LAUNCHER=${CMAKE_CXX_COMPILER_LAUNCHER:-ccache}

tests=(python/tests/test_loop.py python/tests/test_io.py python/tests/test_workers.py)
[[ "${RINGLET_PY_FULL:-0}" == 1 ]] && tests=(python/tests)
# The interpreter behind `name`: on PATH if it runs there, else a pyenv installation (pyenv's shims only run the
# versions pyenv has selected).
find_python() {
  local name=$1 exe
  if exe=$("$name" -c 'import sys; print(sys.executable)' 2>/dev/null); then
    echo "$exe"
    return
  fi
  for exe in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/"${name#python}".*/bin/"$name"; do
    [[ -x "$exe" ]] && { echo "$exe"; return; }
  done
  return 1
}

for name in python3.12 python3.13; do
  if ! exe=$(find_python "$name"); then
    echo "--- $name: not present, skipped"
    continue
  fi
  version=${name#python}
  build=build/py$version
  echo "--- $name ($exe)"
  cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRINGLET_BUILD_TESTS=OFF -DRINGLET_BUILD_BENCH=OFF \
    -DPython3_EXECUTABLE="$exe" >/dev/null
  cmake --build "$build" -j"$(nproc)" --target ringlet_python >/dev/null
  path=$build/python
  "$exe" -c 'import pytest' 2>/dev/null || path=$path:/usr/lib/python3/dist-packages
  PYTHONPATH=$path PYTHONDONTWRITEBYTECODE=1 timeout 600 "$exe" -W ignore::DeprecationWarning -m pytest -q \
    -p no:cacheprovider "${tests[@]}"
done
