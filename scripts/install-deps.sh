#!/usr/bin/env bash
# The one list of Debian packages ringlet needs to build, test and benchmark.
# Both README commands call this; it is idempotent and quiet when all is present.
set -euo pipefail

PACKAGES=(
  # build
  build-essential cmake pkg-config g++ clang libclang-rt-14-dev ccache
  liburing-dev libfmt-dev libcli11-dev libssl-dev
  # tests
  libgtest-dev libgmock-dev python3 curl openssl
  # promtool (check metrics) for the /metrics tests
  prometheus
  # the Python binding (python/): headers to build it, pytest and the peers its tests run against
  python3-dev python3-pytest python3-uvloop python3-aiohttp libpython3.11-testsuite
  # reference peers and real clients for black-box tests
  nginx-light memcached beanstalkd wrk ruby ruby-beaneater python3-pymemcache libmemcached-tools haproxy nutcracker
  # packaging (the Debian package: man pages from --help, its lint; systemd-analyze checks the unit files)
  help2man lintian dpkg-dev fakeroot systemd
  # benchmarks and peers
  libbenchmark-dev libuv1-dev util-linux procps python3-matplotlib linux-perf
  # the python matrix of bench/compare: the httptools HTTP server (bench/python/)
  python3-httptools
)

missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
