#!/usr/bin/env python3
"""Echo throughput and server CPU cost: ringlet against the hand-written epoll loop and libuv.

For each workload row, each repetition runs every server once in turn (A B C D, A B C D, ...)
so slow drift of the machine spreads over all servers instead of favouring one. One run:
start the server pinned to --server-cpu, wait until it accepts, run bench/loadgen/echo_load
pinned to --client-cpu, and sample the server's CPU time (utime + stime from /proc/PID/stat)
when the client prints "window_start" and "window_end" — the instants at which it snapshots
its message count — so CPU time and message count cover the same window. Then stop the server.

CPU time in /proc/PID/stat has clock-tick resolution (1/SC_CLK_TCK s, usually 10 ms): at most
one tick per sample, well under 1% of a 3 s window at full load.

The report is a Markdown table: messages/s and server CPU µs per message as median (min–max)
over the repetitions, and each server's CPU per message relative to epoll-c in the same row.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import selectors
import shlex
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLK_TCK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Row:
    name: str
    size: int
    connections: int
    depth: int


ROWS = [
    Row("echo_64b_50conn", 64, 50, 1),
    Row("echo_64b_50conn_depth16", 64, 50, 16),
    Row("echo_16k_10conn", 16384, 10, 1),
    Row("echo_64b_1conn", 64, 1, 1),
]

SERVER_NAMES = ["ringlet-uring", "ringlet-epoll", "epoll-c", "libuv"]
REFERENCE = "epoll-c"


def server_command(name: str, args: argparse.Namespace, port: int) -> list[str]:
    """The argv that starts server `name` on 127.0.0.1:port."""
    if name in ("ringlet-uring", "ringlet-epoll"):
        backend = name.split("-", 1)[1]
        return [str(args.ringlet), "echo", "--listen", f"127.0.0.1:{port}", "--backend", backend]
    if name == "epoll-c":
        return [str(Path(args.peers_dir) / "epoll_echo"), str(port)]
    if name == "libuv":
        return [str(Path(args.peers_dir) / "libuv_echo"), str(port)]
    raise ValueError(f"unknown server {name}")


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """Options shared with idle_memory.py."""
    parser.add_argument("--ringlet", default=str(REPO / "build/release/ringlet"),
                        help="ringlet binary (default: %(default)s)")
    parser.add_argument("--peers-dir", default=str(REPO / "build/release/bench/peers"),
                        help="directory holding epoll_echo and libuv_echo (default: %(default)s)")
    parser.add_argument("--servers", default=",".join(SERVER_NAMES),
                        help="comma-separated subset of " + ",".join(SERVER_NAMES))
    parser.add_argument("--server-cpu", default="1", help="CPU the server is pinned to (taskset -c)")
    parser.add_argument("--markdown-out", help="also write the report to this file")


def selected_servers(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[str]:
    names = [s for s in args.servers.split(",") if s]
    unknown = [s for s in names if s not in SERVER_NAMES]
    if unknown:
        parser.error(f"unknown server(s) {', '.join(unknown)}; choose from {', '.join(SERVER_NAMES)}")
    missing = [(n, server_command(n, args, 0)[0]) for n in names
               if not os.access(server_command(n, args, 0)[0], os.X_OK)]
    if missing:
        lines = "\n".join(f"  {n}: {path}" for n, path in missing)
        parser.error(f"server binaries not found:\n{lines}\n"
                     "build them, point --ringlet/--peers-dir at them, or pick others with --servers")
    return names


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        stat = f.read()
    # The command name (field 2) may contain spaces; fields after it start at field 3 (state).
    fields = stat[stat.rindex(")") + 2:].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / CLK_TCK


class Server:
    """One server process on 127.0.0.1:port, pinned with taskset; stderr kept in a temp file."""

    def __init__(self, name: str, argv: list[str], cpu: str, port: int):
        self.name, self.port = name, port
        self.log = tempfile.TemporaryFile()
        self.argv = ["taskset", "-c", cpu, *argv]
        # taskset execs the server, so this pid is the server's own.
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-4000:]

    def fail(self, why: str) -> None:
        self.stop()
        raise RuntimeError(f"{self.name}: {why}\ncommand: {shlex.join(self.argv)}\n"
                           f"server output:\n{self.output()}")

    def wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.fail(f"exited with status {self.proc.returncode} before accepting")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.02)
        self.fail(f"not accepting on 127.0.0.1:{self.port} after {timeout} s")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def read_lines(proc: subprocess.Popen, deadline: float):
    """Yields stdout lines of proc until EOF; kills it if the deadline passes."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    pending = b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(timeout=left):
                proc.kill()
                raise RuntimeError("load client did not finish in time")
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                if pending:
                    yield pending.decode()
                return
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                yield line.decode()
    finally:
        sel.close()


def run_once(row: Row, name: str, args: argparse.Namespace) -> dict:
    port = free_port()
    server = Server(name, server_command(name, args, port), args.server_cpu, port)
    try:
        server.wait_ready()
        client_argv = ["taskset", "-c", args.client_cpu, str(args.loadgen),
                       "--host", "127.0.0.1", "--port", str(port),
                       "--connections", str(row.connections), "--depth", str(row.depth),
                       "--size", str(row.size), "--duration", str(args.duration),
                       "--warmup", str(args.warmup), "--json", "--markers"]
        client = subprocess.Popen(client_argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        deadline = time.monotonic() + args.warmup + args.duration + 30
        cpu_start = cpu_end = wall_start = wall_end = None
        result = None
        for line in read_lines(client, deadline):
            if line == "window_start":
                cpu_start, wall_start = cpu_seconds(server.proc.pid), time.monotonic()
            elif line == "window_end":
                cpu_end, wall_end = cpu_seconds(server.proc.pid), time.monotonic()
                if not server.alive():
                    server.fail("exited during the measured window")
            elif line.startswith("{"):
                result = json.loads(line)
        client.wait(timeout=10)
        stderr = client.stderr.read().decode(errors="replace")
        client.stderr.close()
        client.stdout.close()
        if result is None or cpu_start is None or cpu_end is None:
            server.fail(f"load client failed (status {client.returncode}): "
                        f"{shlex.join(client_argv)}\n{stderr}")
        # The samples are taken when this process reads the markers; a stall here would shift
        # the CPU window away from the client's, so such a run is rejected rather than reported.
        drift = abs((wall_end - wall_start) - result["seconds"])
        if drift > 0.01 * result["seconds"] + 0.005:
            server.fail(f"CPU samples {wall_end - wall_start:.3f} s apart, client window "
                        f"{result['seconds']:.3f} s: this script was starved, rerun on a quieter machine")
        messages = result["messages"]
        cpu = cpu_end - cpu_start
        return {
            "rate": result["messages_per_sec"],
            "cpu_us_per_msg": cpu / messages * 1e6 if messages else float("nan"),
            "cpu_pct": 100.0 * cpu / (wall_end - wall_start),
            "errors": result["errors"],
        }
    finally:
        server.stop()


def spread(values: list[float], fmt) -> str:
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_us(x: float) -> str:
    return f"{x:.1f}" if x >= 10 else f"{x:.2f}" if x >= 1 else f"{x:.3f}"


def report(rows: list[Row], servers: list[str], results: dict, args: argparse.Namespace) -> str:
    cpu_model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                      if line.startswith("model name")), "unknown CPU")
    out = [
        "## Echo: throughput and server CPU per message",
        "",
        f"{time.strftime('%Y-%m-%d %H:%M')}, Linux {platform.release()}, {cpu_model}, "
        f"{os.cpu_count()} CPUs. Server on CPU {args.server_cpu}, echo_load on CPU {args.client_cpu}; "
        f"{args.reps} repetitions of {args.duration} s after {args.warmup} s warmup, servers alternating.",
        "",
        f"`{shlex.join(['python3', 'bench/echo_compare.py', *sys.argv[1:]])}`",
        "",
        "| workload | server | msgs/s median (min–max) | server CPU µs/msg median (min–max) "
        f"| CPU/msg vs {REFERENCE} | server CPU % | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ref = results.get((row.name, REFERENCE))
        ref_cpu = statistics.median(r["cpu_us_per_msg"] for r in ref) if ref else None
        for name in servers:
            runs = results[(row.name, name)]
            cpu = statistics.median(r["cpu_us_per_msg"] for r in runs)
            ratio = f"{cpu / ref_cpu:.2f}×" if ref_cpu else "n/a"
            out.append(
                f"| {row.name} ({row.size} B × {row.connections} conn × depth {row.depth}) | {name} "
                f"| {spread([r['rate'] for r in runs], fmt_rate)} "
                f"| {spread([r['cpu_us_per_msg'] for r in runs], fmt_us)} | {ratio} "
                f"| {statistics.median(r['cpu_pct'] for r in runs):.0f} "
                f"| {sum(r['errors'] for r in runs)} |")
    return "\n".join(out) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_server_options(parser)
    parser.add_argument("--loadgen", default=str(REPO / "build/release/bench/loadgen/echo_load"),
                        help="echo_load binary (default: %(default)s)")
    parser.add_argument("--client-cpu", default="0", help="CPU echo_load is pinned to (taskset -c)")
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before the measured window")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per row and server (default 3; fewer gives no useful spread)")
    parser.add_argument("--rows", default=",".join(r.name for r in ROWS),
                        help="comma-separated subset of " + ",".join(r.name for r in ROWS))
    args = parser.parse_args()

    servers = selected_servers(args, parser)
    by_name = {r.name: r for r in ROWS}
    unknown = [n for n in args.rows.split(",") if n not in by_name]
    if unknown:
        parser.error(f"unknown row(s) {', '.join(unknown)}")
    rows = [by_name[n] for n in args.rows.split(",")]
    if not os.access(args.loadgen, os.X_OK):
        parser.error(f"load client not found: {args.loadgen} (build target echo_load or pass --loadgen)")
    if args.reps < 1 or args.duration <= 0:
        parser.error("--reps must be >= 1 and --duration > 0")

    results: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        for rep in range(args.reps):
            for name in servers:
                try:
                    r = run_once(row, name, args)
                except RuntimeError as e:
                    print(f"echo_compare.py: {row.name}: {e}", file=sys.stderr)
                    return 2
                results.setdefault((row.name, name), []).append(r)
                print(f"{row.name} rep {rep + 1}/{args.reps} {name}: {r['rate']:,.0f} msgs/s, "
                      f"{r['cpu_us_per_msg']:.3f} µs/msg, server CPU {r['cpu_pct']:.0f}%, "
                      f"errors {r['errors']}", file=sys.stderr, flush=True)

    text = report(rows, servers, results, args)
    print(text)
    if args.markdown_out:
        Path(args.markdown_out).write_text(text)
    return 1 if any(r["errors"] for runs in results.values() for r in runs) else 0


if __name__ == "__main__":
    sys.exit(main())
