#!/usr/bin/env bash
# Writes man pages for `ringlet` and each server subcommand, generated from their --help by help2man (Debian's
# help2man package), into OUT_DIR as ringlet.1.gz, ringlet-echo.1.gz, ... The package (cmake/packaging.cmake)
# runs this at install time on the binary it installs.
# Usage: scripts/make-man-pages.sh /path/to/ringlet OUT_DIR VERSION
set -euo pipefail
binary=$1
out=$2
version=$3
if ! command -v help2man >/dev/null; then
  echo "make-man-pages: help2man is not installed (bash scripts/install-deps.sh); no man pages" >&2
  exit 0
fi
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# help2man runs a program with --help: a subcommand gets a two-line wrapper named like its page.
page() {  # name, description, subcommand...
  local name=$1 description=$2
  shift 2
  printf '#!/bin/sh\nexec "%s" %s "$@"\n' "$binary" "$*" >"$work/$name"
  chmod +x "$work/$name"
  help2man --no-info --no-discard-stderr --section 1 --source "ringlet $version" --version-string "$version" \
    --name "$description" "$work/$name" | gzip -9n >"$out/$name.1.gz"
}
page ringlet "network servers on a completion-oriented runtime (io_uring or epoll)"
page ringlet-echo "echo server, the tutorial and baseline benchmark" echo
page ringlet-http "HTTP/1.1 static-file server" http
page ringlet-proxy "TCP proxy and load balancer" proxy
page ringlet-cache "memcached-compatible cache" cache
page ringlet-queue "beanstalkd-compatible work queue with a durable binlog" queue
page ringlet-bench "load generator for ringlet's servers and their peers" bench
