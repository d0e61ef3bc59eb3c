#!/usr/bin/env bash
# The one command a Python user runs: builds `import ringlet` (python/) and installs it for Debian's python3, in
# /usr/local/lib/python3.11/dist-packages (no package index, no build isolation: Debian's archive only).
#   PYTHON=/path/to/python3.12 scripts/install-python.sh    builds and installs it for another interpreter.
# Then: python3 -c 'import ringlet; ringlet.run(main())'   (docs/python.md)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh

python=${PYTHON:-/usr/bin/python3}
build=build/python-$("$python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DRINGLET_BUILD_TESTS=OFF -DRINGLET_BUILD_BENCH=OFF \
  -DPython3_EXECUTABLE="$python" >/dev/null
cmake --build "$build" -j"$(nproc)" --target ringlet_python
SUDO=""
[[ $(id -u) -ne 0 && -z "${DESTDIR:-}" ]] && SUDO="sudo"
$SUDO cmake --install "$build" --component python
if [[ -z "${DESTDIR:-}" ]]; then
  (cd / && "$python" -c 'import ringlet; print("ringlet installed:", ringlet.__file__, "backend:", ringlet.new_event_loop().backend)')
fi
