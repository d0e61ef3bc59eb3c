#!/usr/bin/env python3
"""Idle memory per connection: the server's RSS growth for 10,000 idle TCP connections.

For each server: start it (pinned like echo_compare.py), read VmRSS from /proc/PID/status,
open --connections connections from this process, and echo one byte on each, so every
connection is known to be accepted and to have been served once — the state of a kept-alive
connection waiting for its next request. Then wait --settle seconds, read VmRSS again and
report (after - before) / connections. Kernel socket memory is not part of RSS, so this is
the memory the server itself spends per connection.

The bytes are echoed in batches of --batch connections so the servers never hold more than a
batch of read buffers at once; a transient peak would otherwise inflate "idle" RSS.
"""
from __future__ import annotations

import argparse
import os
import platform
import resource
import shlex
import socket
import sys
import time
from pathlib import Path

sys.dont_write_bytecode = True  # importing the sibling script must not litter bench/ with __pycache__
from echo_compare import Server, add_server_options, free_port, selected_servers, server_command


def status_kib(pid: int, field: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} missing from /proc/{pid}/status")


def raise_fd_limit(needed: int) -> None:
    """Soft RLIMIT_NOFILE up to the hard limit; the server inherits it as our child."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"idle_memory.py: need {needed} file descriptors, hard limit is {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def open_idle(port: int, count: int, batch: int) -> list[socket.socket]:
    conns: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            group = [socket.create_connection(("127.0.0.1", port), timeout=10)
                     for _ in range(min(batch, count - start))]
            conns.extend(group)
            for s in group:
                s.sendall(b"x")
            for i, s in enumerate(group):
                if s.recv(1) != b"x":
                    raise RuntimeError(f"connection {start + i} did not echo its byte")
    except BaseException:
        for s in conns:
            s.close()
        raise
    return conns


def measure(name: str, args: argparse.Namespace) -> dict:
    port = free_port()
    server = Server(name, server_command(name, args, port), args.server_cpu, port)
    conns: list[socket.socket] = []
    try:
        server.wait_ready()
        time.sleep(args.settle)
        pid = server.proc.pid
        before = status_kib(pid, "VmRSS")
        try:
            conns = open_idle(port, args.connections, args.batch)
        except (OSError, RuntimeError) as e:
            server.fail(f"while opening idle connections: {e}")
        time.sleep(args.settle)
        if not server.alive():
            server.fail("exited while holding idle connections")
        after = status_kib(pid, "VmRSS")
        return {"before": before, "after": after,
                "per_conn": (after - before) * 1024 / args.connections}
    finally:
        server.stop()
        for s in conns:
            s.close()


def report(servers: list[str], results: dict, args: argparse.Namespace) -> str:
    out = [
        "## Idle memory per connection",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, Linux {platform.release()}. {args.connections:,} idle "
        "connections, one byte echoed on each; server VmRSS before and after.",
        "",
        f"`{shlex.join(['python3', 'bench/idle_memory.py', *sys.argv[1:]])}`",
        "",
        "| server | connections | VmRSS before (KiB) | VmRSS after (KiB) | bytes/conn |",
        "|---|---|---|---|---|",
    ]
    for name in servers:
        r = results[name]
        out.append(f"| {name} | {args.connections:,} | {r['before']:,} | {r['after']:,} "
                   f"| {r['per_conn']:,.0f} |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_options(parser)
    parser.add_argument("--connections", type=int, default=10_000, help="idle connections to open")
    parser.add_argument("--batch", type=int, default=100, help="connections echoed at a time")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds to wait before each reading")
    args = parser.parse_args()
    servers = selected_servers(args, parser)
    if args.connections < 1 or args.batch < 1:
        parser.error("--connections and --batch must be positive")
    raise_fd_limit(args.connections + 64)

    results = {}
    for name in servers:
        try:
            results[name] = measure(name, args)
        except RuntimeError as e:
            print(f"idle_memory.py: {e}", file=sys.stderr)
            return 2
        r = results[name]
        print(f"{name}: VmRSS {r['before']} -> {r['after']} KiB, {r['per_conn']:.0f} B/conn",
              file=sys.stderr, flush=True)
    text = report(servers, results, args)
    print(text)
    if args.markdown_out:
        Path(args.markdown_out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
