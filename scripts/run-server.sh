#!/usr/bin/env bash
# The main job: install what is missing, build the release binary, run `ringlet echo` with its defaults
# (127.0.0.1:7000). Extra arguments go to `ringlet echo`, e.g. scripts/run-server.sh --listen 127.0.0.1:9000
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake --preset release >/dev/null
cmake --build --preset release --target ringlet -j"$(nproc)"
exec build/release/ringlet echo "$@"
