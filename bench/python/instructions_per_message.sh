#!/usr/bin/env bash
# instructions_per_message.sh — user-space instructions per message of a Python echo server, counted by callgrind:
# a figure that does not move with the machine's load (this VM has no hardware counters for perf stat). The server
# runs under `valgrind --tool=callgrind`, echo_load warms it up for 2 s, the counts are zeroed, echo_load runs 5 s,
# the counts are dumped; the dump's total Ir divided by the messages echo_load reported is printed.
# Under callgrind the server is the slow side, so each loop turn carries many messages: per-turn costs (the
# kernel entry) weigh less than in a real run. Compare two builds with this, then measure CPU with bench/compare.
#   usage: bench/python/instructions_per_message.sh RINGLET_PATH [SIZE [BACKEND [STYLE [LOOP]]]]
#   e.g.   bench/python/instructions_per_message.sh build/release/python 1024 uring protocol ringlet
set -euo pipefail
cd "$(dirname "$0")/../.."
ringlet_path=$1 size=${2:-1024} backend=${3:-uring} style=${4:-protocol} loop=${5:-ringlet}
source bench/python/echo_under_load.sh
start_echo_server valgrind --tool=callgrind --callgrind-out-file="$out/cg.%p"
run_load 2 >/dev/null
callgrind_control -z "$server" >/dev/null 2>&1
messages=$(run_load 5 | python3 -c 'import json, sys; print(json.load(sys.stdin)["messages"])')
callgrind_control -d "$server" >/dev/null 2>&1
ir=$(awk '/^summary:/ {print $2; exit}' "$out"/cg.*.1)
echo "loop=$loop style=$style backend=$backend size=$size messages=$messages instructions_per_message=$((ir / messages))"
