# echo_under_load.sh — sourced by the per-message counting scripts: starts bench/python/echo_server.py pinned to
# CPU 1 and drives it with echo_load on CPU 0 (10 connections, depth 1), as bench/compare runs them.
# Expects ringlet_path, size, loop, style and backend set; sets out (a scratch directory, removed on exit), port
# and server (the server's pid, killed on exit).
load=${ECHO_LOAD:-build/release/bench/loadgen/echo_load}
out=$(mktemp -d)

# start_echo_server [WRAPPER ...]: the server, under WRAPPER if given (e.g. valgrind and its options); returns once
# it accepts connections (at most a minute: a server under valgrind starts slowly).
start_echo_server() {
  # Below the ephemeral port range: a port a client's TIME_WAIT socket holds would refuse the bind.
  port=$((20000 + RANDOM % 12000))
  taskset -c 1 "$@" /usr/bin/python3 bench/python/echo_server.py --loop "$loop" --style "$style" \
    --backend "$backend" --port "$port" --ringlet-path "$ringlet_path" >/dev/null 2>"$out/server.err" &
  server=$!
  trap 'kill -KILL $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$out"' EXIT
  for _ in $(seq 600); do (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null && return; sleep 0.1; done
  echo "the echo server did not start listening on port $port:" >&2
  cat "$out/server.err" >&2
  exit 1
}

# run_load SECONDS: one closed-loop run; prints echo_load's JSON report.
run_load() {
  taskset -c 0 "$load" --port "$port" --connections 10 --depth 1 --size "$size" --duration "$1" --warmup 0 --json
}
