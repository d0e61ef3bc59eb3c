"""One measured run: a fresh server, the client against it, and what the matrix measures on the server.

run_cell() starts the server pinned to its CPUs on a free port, waits until it answers one
request of its protocol, and then, by the matrix's measure:
  cpu          optionally warms it up (clients without a warm-up option), starts the client pinned
               to the client CPUs and samples the server's CPU time (process, threads, children) at
               the start and end of the client's measured window;
  idle_memory  waits `settle` seconds and reads the server's VmRSS, starts the client pinned to the
               client CPUs, which opens the workload's connections, echoes one byte on each and
               holds them; `settle` seconds after it says "holding", reads VmRSS again. Bytes per
               connection = (after − before) / connections.
Then it stops the server. Every process it starts is stopped before it returns, also when it raises.
"""
from __future__ import annotations

import os
import re
import resource
import selectors
import shlex
import signal
import subprocess
import tempfile
import time
from typing import Any

from .drivers import ClientResult, ParseError, Workload
from .env import Env, restore_priority
from .matrix import Cell, Matrix
from .procstat import Sample, TreeSampler, thread_deltas
from .servers import RunningServer, ServerExited, free_port

CLIENT_GRACE_S = 30.0  # how long past its planned end a client may take before it is killed


class RunFailed(RuntimeError):
    pass


class Client:
    """A load client process, pinned, in its own session; stdout read line by line, stderr kept."""

    live: set["Client"] = set()

    def __init__(self, argv: list[str], cpus: str):
        self.argv = ["taskset", "-c", cpus, *argv]
        self.err = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.err,
                                     start_new_session=True, preexec_fn=restore_priority)
        self.started = time.monotonic()
        Client.live.add(self)

    def stderr(self, limit: int = 3000) -> str:
        self.err.seek(0)
        return self.err.read().decode(errors="replace")[-limit:]

    def kill(self) -> None:
        Client.live.discard(self)
        if self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # not reaped yet: the group id is still ours
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        if self.proc.stdout:
            self.proc.stdout.close()

    @classmethod
    def kill_all(cls) -> None:
        for c in list(cls.live):
            c.kill()


def _run_client_to_end(client: Client, deadline: float, on_line, timers: list[tuple[float, Any]],
                       on_eof=None) -> str:
    """Reads the client's stdout until EOF, calling on_line(line) per line, each timer's action when its time
    comes (timers sorted by time) and on_eof() at EOF. Returns the whole stdout. Kills the client at the
    deadline."""
    sel = selectors.DefaultSelector()
    sel.register(client.proc.stdout, selectors.EVENT_READ)
    out, pending = [], b""
    timers = list(timers)
    try:
        while True:
            now = time.monotonic()
            while timers and timers[0][0] <= now:
                timers.pop(0)[1]()
            if now >= deadline:
                raise RunFailed(f"client did not finish in time: {shlex.join(client.argv)}")
            wait = deadline - now
            if timers:
                wait = min(wait, max(0.0, timers[0][0] - now))
            if not sel.select(timeout=wait):
                continue
            chunk = os.read(client.proc.stdout.fileno(), 65536)
            if not chunk:
                if on_eof is not None:
                    on_eof()
                break
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                text = line.decode(errors="replace")
                out.append(text)
                on_line(text)
        if pending:
            out.append(pending.decode(errors="replace"))
        if timers:
            raise RunFailed(f"client ended before its measured window was over (exit status {client.proc.wait()}): "
                            f"{shlex.join(client.argv)}\n  stdout: {' | '.join(out)[-2000:]}\n"
                            f"  stderr: {client.stderr()}")
        client.proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        return "\n".join(out)
    finally:
        sel.close()


def _run_quietly(argv: list[str], cpus: str, limit_s: float) -> str:
    """Runs a client to its end (a warm-up or calibration run) and returns its stdout."""
    client = Client(argv, cpus)
    try:
        return _run_client_to_end(client, time.monotonic() + limit_s, lambda line: None, [])
    finally:
        client.kill()


def _calibrate(env: Env, cell: Cell, port: int, warmup: float, duration: float, cpus: str) -> int:
    """Warm-up runs of a fixed-count client, doubling in size until one lasts at least max(warmup, 0.3 s) (at
    most 8); returns the operations per connection for a measured run of about `duration` seconds."""
    per_connection, rate = 50, 0.0
    target = max(warmup, 0.3)
    for attempt in range(8):
        argv = cell.client.argv_for(env, cell.workload, port, per_connection, attempt == 0)
        started = time.monotonic()
        out = _run_quietly(argv, cpus, CLIENT_GRACE_S + 4 * target)
        elapsed = time.monotonic() - started
        rate = cell.client.parse(out).throughput
        if elapsed >= target:
            break
        per_connection *= 2 if elapsed > target / 4 else 8
    if not rate > 0:
        raise RunFailed(f"{cell.client.name}: calibration measured no throughput")
    return max(1, int(rate * duration / cell.workload.connections))


def _start_server(env: Env, cell: Cell, cpus: str, attempts: int = 3) -> RunningServer:
    """A fresh server that answers its protocol. The free port is picked before the server binds it, so another
    process may take it in between: a server that exits before accepting is started again on another port."""
    for attempt in range(attempts):
        port = free_port()
        run_dir = env.run_dir(cell.server.label)
        server = RunningServer(cell.server.label, cell.server.argv(env, port, run_dir), cpus, port)
        server.run_dir = run_dir
        try:
            server.wait_ready(cell.workload.kind)
            return server
        except ServerExited:
            if attempt + 1 == attempts:
                raise
    raise AssertionError("unreachable")


def run_cell(env: Env, matrix: Matrix, cell: Cell, duration: float, warmup: float,
             server_cpus: str | None = None, client_cpus: str | None = None) -> dict[str, Any]:
    """Runs one cell once; returns its record (see report.py for the fields)."""
    server_cpus = cell.server.cpus or server_cpus or matrix.server_cpus
    client_cpus = client_cpus or matrix.client_cpus
    backend = _start_backend(env, matrix, server_cpus) if matrix.backend is not None else None
    try:
        if matrix.measure == "idle_memory":
            return run_idle_memory_cell(env, cell, server_cpus, client_cpus)
        return _run_cpu_cell(env, cell, duration, warmup, server_cpus, client_cpus)
    finally:
        if backend is not None:
            backend.stop()
            env.backend_port = None


def _start_backend(env: Env, matrix: Matrix, server_cpus: str) -> RunningServer:
    """The matrix's backend server (a proxy's), on its own CPUs when the matrix gives them; its port goes to
    env.backend_port for the server under test. Outside the measured server's process tree, so its CPU is not
    counted as the proxy's."""
    use = matrix.backend
    port = free_port()
    run_dir = env.run_dir("backend")
    backend = RunningServer("backend", use.argv(env, port, run_dir), use.cpus or server_cpus, port)
    backend.wait_ready("echo")
    env.backend_port = port
    return backend


def _run_cpu_cell(env: Env, cell: Cell, duration: float, warmup: float, server_cpus: str,
                  client_cpus: str) -> dict[str, Any]:
    server = _start_server(env, cell, server_cpus)
    port = server.port
    run_dir = server.run_dir
    client: Client | None = None
    try:
        sampler = TreeSampler(server.proc.pid)
        mode = cell.client.warmup_mode
        if mode == "separate" and warmup > 0:
            _run_quietly(cell.client.argv(env, cell.workload, port, warmup, 0, run_dir), client_cpus,
                         warmup + CLIENT_GRACE_S)
        if mode == "calibrate":
            per_connection = _calibrate(env, cell, port, warmup, duration, client_cpus)
            client_argv = cell.client.argv_for(env, cell.workload, port, per_connection, False)
        else:
            client_argv = cell.client.argv(env, cell.workload, port, duration, warmup, run_dir)
        samples: dict[str, tuple[float, Sample]] = {}

        def take(which: str) -> None:
            if which not in samples:
                samples[which] = (time.monotonic(), sampler.sample())

        def on_line(line: str) -> None:
            if line == "window_start":
                take("start")
            elif line == "window_end":
                take("end")

        sampling = cell.client.sampling(env, cell.workload.kind)
        client = Client(client_argv, client_cpus)
        timers: list[tuple[float, Any]] = []
        lead = warmup if mode == "inline" else 0.0
        deadline = client.started + lead + duration + CLIENT_GRACE_S
        on_eof = None
        if sampling == "timed":
            # Sample inside the measured window, a margin from both ends (process start-up, connection set-up and
            # the client's own end-of-run snapshot are not exactly where the clock says).
            margin = min(0.2, 0.05 * duration)
            timers = [(client.started + lead + margin, lambda: take("start")),
                      (client.started + lead + duration - margin, lambda: take("end"))]
        elif sampling == "lifetime":
            take("start")
            on_eof = lambda: take("end")  # noqa: E731
            deadline += 2 * duration  # a fixed-count run may last longer than its calibration said
        stdout = _run_client_to_end(client, deadline, on_line, timers, on_eof)
        server_alive = server.alive()
        status = client.proc.returncode
        try:
            result: ClientResult = cell.client.parse(stdout)
        except ParseError as e:
            raise RunFailed(f"{cell.client.name} failed (exit status {status}): {e}\n"
                            f"  command: {shlex.join(client.argv)}\n  stdout: {stdout[-2000:]}\n"
                            f"  stderr: {client.stderr()}") from None
        if not result.throughput > 0:
            raise RunFailed(f"{cell.client.name} completed no operations in the measured window (errors "
                            f"{result.errors}): the server or the client stalled\n  command: {shlex.join(client.argv)}\n"
                            f"  stderr: {client.stderr()}")
        if "start" not in samples or "end" not in samples:
            raise RunFailed(f"{cell.client.name}: the CPU window was never closed ({sampling} sampling; no window markers?): "
                            f"{shlex.join(client.argv)}")
        if not server_alive:
            raise server.failure("exited during the run")
        (t0, s0), (t1, s1) = samples["start"], samples["end"]
        wall = t1 - t0
        cpu = s1.total - s0.total
        cpu_rate = cpu / wall if wall > 0 else float("nan")
        warnings = []
        run_name = f"{cell.workload.name} {cell.server.label} ← {cell.client.name}"
        if sampling == "markers" and result.seconds and abs(wall - result.seconds) > 0.01 * result.seconds + 0.005:
            warnings.append(f"{run_name}: CPU samples {wall:.3f} s apart, client window {result.seconds:.3f} s "
                            "(the harness was starved: rerun on a quieter machine)")
        client_cpu = result.raw.get("client_cpu")
        if isinstance(client_cpu, dict) and client_cpu.get("saturated"):
            warnings.append(f"{run_name}: {cell.client.name} reported its own core saturated (it may set the pace)")
        if status not in (0, None) and result.errors == 0:
            warnings.append(f"{run_name}: client exit status {status}")
        # A graceful stop makes a sharded ringlet server log each shard's final counters (connections accepted).
        server.stop()
        shards = shard_connections(server.output(limit=200_000))
        return {
            "shard_accepted": shards,
            "workload": cell.workload.name, "server": cell.server.label, "client": cell.client.name,
            "throughput": result.throughput, "errors": result.errors, "latency_us": result.latency_us,
            "client_ops": result.ops, "client_seconds": result.seconds,
            "server_cpu_s": cpu, "window_s": wall, "sampling": sampling,
            "cpu_pct": 100.0 * cpu_rate,
            "cpu_us_per_op": cpu_rate / result.throughput * 1e6 if result.throughput > 0 else float("nan"),
            "threads": thread_deltas(s0, s1), "processes": len(sampler.pids),
            "server_argv": server.argv, "client_argv": client.argv, "warnings": warnings,
            "client_raw": result.raw,
        }
    finally:
        if client is not None:
            client.kill()
        server.stop()


def raise_fd_limit(needed: int) -> None:
    """When the soft RLIMIT_NOFILE is below `needed`, raises it to the hard limit, so the servers and clients started
    from here (which inherit it) can hold that many descriptors. Raises RunFailed when the hard limit is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        raise RunFailed(f"{needed} file descriptors needed, the hard limit is {hard}: raise it (ulimit -Hn, "
                        "or LimitNOFILE= for a service) or use fewer connections")
    if soft != resource.RLIM_INFINITY and soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else needed, hard))


def _wait_for_line(client: Client, wanted: str, deadline: float) -> list[str]:
    """The client's stdout lines up to and including `wanted`; RunFailed when it ends first or the deadline
    passes. The client keeps running."""
    sel = selectors.DefaultSelector()
    sel.register(client.proc.stdout, selectors.EVENT_READ)
    lines, pending = [], b""
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RunFailed(f"client did not say {wanted!r} in time: {shlex.join(client.argv)}")
            if not sel.select(timeout=left):
                continue
            chunk = os.read(client.proc.stdout.fileno(), 65536)
            if not chunk:
                raise RunFailed(f"client ended (exit status {client.proc.wait()}) before saying {wanted!r}: "
                                f"{shlex.join(client.argv)}\n  stdout: {' | '.join(lines)[-2000:]}\n"
                                f"  stderr: {client.stderr()}")
            pending += chunk
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                lines.append(line.decode(errors="replace"))
                if lines[-1] == wanted:
                    return lines
    finally:
        sel.close()


# How long a client may take to open one idle connection and echo its byte, on a loaded machine.
IDLE_SETUP_S_PER_CONNECTION = 0.002


def run_idle_memory_cell(env: Env, cell: Cell, server_cpus: str, client_cpus: str) -> dict[str, Any]:
    """Runs one idle-memory cell once: the server's VmRSS before and while the client holds its connections."""
    w = cell.workload
    settle = float(w.params.get("settle", 0.5))
    raise_fd_limit(w.connections + 256)  # before the server starts: it inherits the limit
    server = _start_server(env, cell, server_cpus)
    client: Client | None = None
    try:
        sampler = TreeSampler(server.proc.pid)
        # Let the server finish start-up work (pre-faulting, the probe's connection closing) before "before".
        time.sleep(settle)
        before = sampler.rss_kib()
        client = Client(cell.client.argv(env, w, server.port, 0.0, 0.0, server.run_dir), client_cpus)
        lines = _wait_for_line(client, "holding", time.monotonic() + CLIENT_GRACE_S +
                               IDLE_SETUP_S_PER_CONNECTION * w.connections)
        result = cell.client.parse("\n".join(lines))
        time.sleep(settle)
        if not server.alive():
            raise server.failure("exited while holding idle connections")
        if client.proc.poll() is not None:
            raise RunFailed(f"{cell.client.name} exited (status {client.proc.returncode}) while holding its "
                            f"connections: {shlex.join(client.argv)}\n  stderr: {client.stderr()}")
        after = sampler.rss_kib()
        connections = int(result.ops or 0)
        if connections != w.connections:
            raise RunFailed(f"{cell.client.name} holds {connections} connections, {w.connections} were asked for")
        client.kill()
        server.stop()
        return {
            "measure": "idle_memory",
            "workload": w.name, "server": cell.server.label, "client": cell.client.name,
            "connections": connections, "rss_before_kib": before, "rss_after_kib": after,
            "bytes_per_conn": (after - before) * 1024 / connections, "setup_s": result.seconds, "settle_s": settle,
            "errors": 0, "processes": len(sampler.pids), "server_argv": server.argv, "client_argv": client.argv,
            "warnings": [], "client_raw": result.raw,
        }
    finally:
        if client is not None:
            client.kill()
        server.stop()


def describe(record: dict[str, Any]) -> str:
    """One run's figures for the progress log."""
    if record.get("measure") == "idle_memory":
        return (f"VmRSS {record['rss_before_kib']:,} → {record['rss_after_kib']:,} KiB with "
                f"{record['connections']:,} idle connections: {record['bytes_per_conn']:,.0f} B/conn")
    p99 = record["latency_us"].get("p99")
    return (f"{record['throughput']:,.0f} ops/s, server {record['cpu_us_per_op']:.3f} µs/op at "
            f"{record['cpu_pct']:.0f}% CPU" + (f", p99 {p99:,.0f} µs" if p99 is not None else "") +
            f", errors {record['errors']}" + "".join(f" [{x}]" for x in record["warnings"]))


def planned_seconds(matrix: Matrix, workload: Workload, duration: float, warmup: float) -> float:
    """About how long one run of a cell of this workload takes (for --dry-run's estimate)."""
    if matrix.measure == "idle_memory":
        return 2 * float(workload.params.get("settle", 0.5)) + 1.0 + 0.0002 * workload.connections
    return warmup + duration + 1.0


# The line a sharded ringlet server logs per shard when it stops (src/ringlet/net/sharded_server.cpp,
# log_shard_stats): "shard 1 (cpu 1): 0 open, 501 accepted, ...". The last line per shard wins.
SHARD_LINE = re.compile(r"shard (\d+) \(cpu -?\d+\): \d+ open, (\d+) accepted")


def shard_connections(log_text: str) -> dict[str, int]:
    """{shard id: connections accepted over the whole run} from a ringlet server's log; empty for other servers."""
    found: dict[str, int] = {}
    for m in SHARD_LINE.finditer(log_text):
        found[m.group(1)] = int(m.group(2))
    return found


def stop_everything() -> None:
    """Emergency stop (Ctrl-C, an exception): every client and server this process started."""
    Client.kill_all()
    RunningServer.stop_all()

