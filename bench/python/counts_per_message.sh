#!/usr/bin/env bash
# counts_per_message.sh — what a Python echo server does per message, counted by perf stat: CPU, sleeps, system
# calls and io_uring events, each divided by the messages echo_load reported. The server runs pinned to CPU 1 and
# echo_load (10 connections, depth 1) to CPU 0, as bench/compare runs them; after a 1 s warm-up load, perf stat
# counts the server for the 3 s of a second load started at the same moment. sched:sched_wakeup counts the wake-ups
# done in the server's context: mostly its replies waking a client asleep in its wait.
# The per-message work (submissions, completions, reads, writes) does not move with the machine's load, as CPU per
# message does; sleeps, wake-ups and kernel entries per message follow how many messages a loop turn finds, and do.
# Compare two builds or two loops with these first (docs/design/python.md, "10 KiB Protocol echo").
#   usage: bench/python/counts_per_message.sh RINGLET_PATH [SIZE [LOOP [STYLE [BACKEND]]]]
#   e.g.   bench/python/counts_per_message.sh build/release/python 10240 uvloop
set -euo pipefail
cd "$(dirname "$0")/../.."
ringlet_path=$1 size=${2:-1024} loop=${3:-ringlet} style=${4:-protocol} backend=${5:-uring}
events=task-clock,context-switches,sched:sched_wakeup,page-faults,io_uring:io_uring_cqring_wait,io_uring:io_uring_submit_req
events+=,io_uring:io_uring_complete,io_uring:io_uring_poll_arm
for call in io_uring_enter epoll_wait poll recvfrom read sendto sendmsg write brk; do events+=,syscalls:sys_enter_$call; done
source bench/python/echo_under_load.sh
start_echo_server
run_load 1 >/dev/null
run_load 3 >"$out/load.json" &
client=$!
perf stat -x, -e "$events" -p "$server" -o "$out/perf.csv" -- sleep 3
wait $client
messages=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["messages"])' "$out/load.json")
echo "loop=$loop style=$style backend=$backend size=$size messages=$messages"
# task-clock is in ms: per message, in µs.
awk -F, -v m="$messages" '$1 ~ /^[0-9.]+$/ {
  if ($3 == "task-clock") printf "  %-40s %10.2f us/message\n", "server CPU", $1 * 1000 / m
  else printf "  %-40s %10.4f /message\n", $3, $1 / m }' "$out/perf.csv"
