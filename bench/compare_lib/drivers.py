"""Load clients ("drivers"): how to run each one for a workload, and how to read its result.

Every driver turns a Workload (kind + parameters) and a target port into an argv, and its output
into one ClientResult with the fields `ringlet bench --json` promises: throughput (operations/s),
errors (total) and latency_us {p50, p90, p99, p999, max} (empty when the client measures none).

How the server's CPU window is matched to the client's measured window:
  markers  the client prints "window_start" / "window_end" on stdout at the instants it snapshots
           its counters (echo_load --markers, and `ringlet bench --markers` when it has that flag);
           the harness samples /proc at those lines.
  timed    otherwise the harness samples at fixed times after starting the client, inside its
           measured window (a small margin at both ends), and CPU per operation is computed as
           (server CPU / sampled wall time) / throughput, which a slightly shorter window does not bias
           while the load is steady.
  lifetime clients that run a fixed number of operations (the simple C clients): from the client's
           start to its end.
wrk has no warm-up option, so a separate wrk run of --warmup seconds precedes the measured one.

A driver measures one thing ("measure"): "cpu" drivers put load on the server (throughput, latency and the
server's CPU per operation); the "idle_memory" driver (idle-conns) opens connections and holds them idle
while the harness reads the server's resident memory. A matrix uses drivers of its own measure only.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import Env, MissingTool

LATENCY_KEYS = ("p50", "p90", "p99", "p999", "max")


@dataclass
class Workload:
    """One row of a matrix: a protocol (kind) and its parameters."""
    name: str
    kind: str  # echo | http | memcache | beanstalk
    params: dict[str, Any]
    description: str = ""
    extra_args: dict[str, list[str]] = field(default_factory=dict)  # per driver name
    baseline: str | None = None  # overrides the matrix's baseline for this workload
    clients: list[str] | None = None  # only these clients run it (None: every client of its kind)
    floor: str | None = None  # the echo workload whose CPU per message is this row's floor (report.py)

    @property
    def connections(self) -> int:
        return int(self.params.get("connections", 50))

    @property
    def depth(self) -> int:
        return int(self.params.get("depth", 1))

    def summary(self) -> str:
        if self.description:
            return self.description
        p = self.params
        if self.kind == "echo":
            if p.get("reconnect"):
                return f"{p.get('size', 64)} B, a new connection per exchange, {self.connections} conn at a time"
            return f"{p.get('size', 64)} B × {self.connections} conn × depth {self.depth}"
        if self.kind == "http":
            return f"GET {p.get('path')} × {self.connections} conn × depth {self.depth}"
        if self.kind == "memcache":
            gets = float(p.get("get_ratio", 0.9))
            return (f"{gets:.0%} get / {1 - gets:.0%} set, {p.get('value_size', '?')} B values, "
                    f"{p.get('keys', '?')} keys, {self.connections} conn × depth {self.depth}" +
                    (f", {p['multiget']}-key gets" if int(p.get("multiget", 1)) > 1 else "") +
                    (f", {p['protocol']} protocol" if p.get("protocol", "text") != "text" else ""))
        if self.kind == "beanstalk":
            return f"put → reserve → delete, {p.get('body_size', '?')} B bodies, {self.connections} conn × depth {self.depth}"
        return ", ".join(f"{k} {v}" for k, v in p.items())


@dataclass
class ClientResult:
    throughput: float
    errors: int
    latency_us: dict[str, float]
    ops: float | None = None      # operations in the measured window, when the client says
    seconds: float | None = None  # length of the client's measured window, when it says
    raw: dict[str, Any] = field(default_factory=dict)


class ParseError(RuntimeError):
    pass


def last_json_object(text: str) -> dict[str, Any]:
    """The client's JSON result: the whole output if it is one object, else its last line that is one."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
            if isinstance(value, dict):
                return value
        except json.JSONDecodeError:
            pass
    for line in reversed(stripped.splitlines()):
        line = line.strip()
        if line.startswith("{") and line.endswith("}"):
            try:
                value = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(value, dict):
                return value
    raise ParseError("no JSON object in the client's output")


def error_total(value: Any) -> int:
    """`errors` as a number: a count, or an object of counts by kind (summed)."""
    if isinstance(value, bool) or value is None:
        return int(bool(value))
    if isinstance(value, (int, float)):
        return int(value)
    if isinstance(value, dict):
        if "total" in value:
            return error_total(value["total"])
        return sum(error_total(v) for v in value.values())
    raise ParseError(f"cannot read an error count from {value!r}")


class Driver:
    name = ""
    kinds: frozenset[str] = frozenset()
    description = ""
    required = False         # a system package: missing is an error, not a skip
    warmup_mode = "inline"   # "inline": a warm-up option; "separate": run it for --warmup s first; "calibrate"
    measure = "cpu"          # "cpu" or "idle_memory" (see the top of this file)
    build_targets: tuple[str, ...] = ()

    def check(self, env: Env, kind: str) -> str | None:
        """None when this driver can run workloads of `kind` here, else why not."""
        return None

    def sampling(self, env: Env, kind: str) -> str:
        """"markers", "timed" or "lifetime" (see the top of this file)."""
        return "timed"

    def argv(self, env: Env, w: Workload, port: int, duration: float, warmup: float, run_dir: Path) -> list[str]:
        raise NotImplementedError

    def parse(self, stdout: str) -> ClientResult:
        raise NotImplementedError


class EchoLoad(Driver):
    """bench/loadgen/echo_load.c: the independent closed-loop echo client (shares no code with ringlet)."""
    name = "echo_load"
    kinds = frozenset({"echo"})
    description = "bench/loadgen/echo_load.c (closed loop, every byte verified; measures no latency; " \
                  "--reconnect: a new connection per message)"
    build_targets = ("echo_load",)

    def path(self, env: Env) -> Path:
        return env.build_binary("bench/loadgen/echo_load")

    def check(self, env: Env, kind: str) -> str | None:
        if not os.access(self.path(env), os.X_OK):
            return f"{self.path(env)} not built: cmake --build {env.build_dir} --target echo_load"
        return None

    def sampling(self, env: Env, kind: str) -> str:
        return "markers"

    def argv(self, env, w, port, duration, warmup, run_dir):
        return [str(self.path(env)), "--host", "127.0.0.1", "--port", str(port),
                "--connections", str(w.connections), "--depth", str(w.depth),
                "--size", str(w.params.get("size", 64)), "--duration", f"{duration:g}",
                "--warmup", f"{warmup:g}", "--json", "--markers",
                *(["--reconnect"] if w.params.get("reconnect") else []), *w.extra_args.get(self.name, [])]

    def parse(self, stdout):
        obj = last_json_object(stdout)
        try:
            return ClientResult(float(obj["messages_per_sec"]), error_total(obj["errors"]), {},
                                ops=float(obj["messages"]), seconds=float(obj["seconds"]), raw=obj)
        except KeyError as e:
            raise ParseError(f"echo_load JSON lacks {e}") from None


class RingletBench(Driver):
    """`ringlet bench KIND ... --json` (issue 4); one generator thread (the client has one core) unless the
    workload sets client_threads."""
    name = "ringlet-bench"
    kinds = frozenset({"echo", "http", "memcache", "beanstalk"})
    description = "`ringlet bench` (--threads 1)"
    build_targets = ("ringlet",)

    # Workload parameter -> ringlet bench flag, per kind (a true boolean parameter is passed as a bare flag).
    # Parameters not listed here are not passed.
    FLAGS = {
        "echo": {"size": "--size"},
        "http": {},
        "memcache": {"protocol": "--protocol", "keys": "--keys", "key_size": "--key-size",
                     "value_size": "--value-size", "get_ratio": "--get-ratio", "distribution": "--distribution",
                     "multiget": "--multiget", "noreply": "--noreply", "preload": "--preload"},
        "beanstalk": {"body_size": "--body-size", "tubes": "--tubes"},
    }

    @classmethod
    def kind_args(cls, w: Workload) -> list[str]:
        args: list[str] = []
        for param, flag in cls.FLAGS.get(w.kind, {}).items():
            value = w.params.get(param)
            if value is None or value is False:
                continue
            args += [flag] if value is True else [flag, str(value)]
        return args

    def check(self, env, kind):
        return env.ringlet_has(["bench", kind], "--json", "--connections", "--duration")

    def sampling(self, env, kind):
        return "markers" if "--markers" in (env.ringlet_help("bench", kind) or "") else "timed"

    def argv(self, env, w, port, duration, warmup, run_dir):
        args = [str(env.ringlet), "bench", w.kind, "--connections", str(w.connections), "--depth", str(w.depth),
                "--duration", f"{duration:g}", "--warmup", f"{warmup:g}", "--threads", str(w.params.get("client_threads", 1)), "--json"]
        if self.sampling(env, w.kind) == "markers":
            args.append("--markers")
        args += self.kind_args(w) + w.extra_args.get(self.name, [])
        if w.kind == "http":
            args.append(f"http://127.0.0.1:{port}{w.params.get('path', '/')}")
        else:
            args.append(f"127.0.0.1:{port}")
        return args

    def parse(self, stdout):
        obj = last_json_object(stdout)
        try:
            latency = {k: float(v) for k, v in obj.get("latency_us", {}).items() if k in LATENCY_KEYS}
            # Fields per the contract in src/ringlet/loadgen/report.hpp.
            seconds = obj.get("duration_s")
            ops = obj.get("requests")
            return ClientResult(float(obj["throughput"]), error_total(obj["errors"]), latency,
                                ops=float(ops) if isinstance(ops, (int, float)) else None,
                                seconds=float(seconds) if isinstance(seconds, (int, float)) else None, raw=obj)
        except KeyError as e:
            raise ParseError(f"ringlet bench JSON lacks {e}") from None


# wrk script: one request, or `depth` requests sent back to back (pipelining); done() prints the summary as one
# JSON line so nothing is parsed from wrk's human-readable text.
WRK_SCRIPT = """\
local depth = {depth}
local path = "{path}"
local batch
init = function(args)
  local parts = {{}}
  for i = 1, depth do parts[i] = wrk.format("GET", path) end
  batch = table.concat(parts)
end
request = function() return batch end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{{"wrk_requests": %d, "wrk_duration_us": %d, "wrk_bytes": %d, ' ..
    '"errors": {{"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}}, ' ..
    '"latency_us": {{"p50": %d, "p90": %d, "p99": %d, "p999": %d, "max": %d}}}}\\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9),
    latency.max))
end
"""


class Wrk(Driver):
    """wrk from Debian with one thread (-t1), pipelining through a Lua script when depth > 1."""
    name = "wrk"
    kinds = frozenset({"http"})
    description = "wrk -t1 (Debian), depth > 1 pipelines through a Lua script"
    required = True
    warmup_mode = "separate"

    def check(self, env, kind):
        try:
            env.system_binary("wrk")
        except MissingTool as e:
            return str(e)
        return None

    @staticmethod
    def seconds(duration: float) -> int:
        return max(1, int(math.ceil(duration - 1e-9)))  # wrk takes whole seconds

    def argv(self, env, w, port, duration, warmup, run_dir):
        path = str(w.params.get("path", "/"))
        if not all(c.isalnum() or c in "/._-" for c in path):
            raise ValueError(f"unsupported characters in path {path!r}")
        script = run_dir / f"wrk_{w.depth}.lua"
        script.write_text(WRK_SCRIPT.format(depth=w.depth, path=path))
        return [str(env.system_binary("wrk")), "-t1", "-c", str(w.connections), "-d", f"{self.seconds(duration)}s",
                "--timeout", "10s", "-s", str(script), *w.extra_args.get(self.name, []),
                f"http://127.0.0.1:{port}{path}"]

    def parse(self, stdout):
        obj = last_json_object(stdout)
        try:
            seconds = obj["wrk_duration_us"] / 1e6
            requests = obj["wrk_requests"]
            return ClientResult(requests / seconds if seconds > 0 else 0.0, error_total(obj["errors"]),
                                {k: float(v) for k, v in obj["latency_us"].items()},
                                ops=float(requests), seconds=seconds, raw=obj)
        except KeyError as e:
            raise ParseError(f"wrk summary lacks {e}") from None


class SimpleClient(Driver):
    """A minimal blocking C client for one protocol (bench/peers/simple_*_client.c, one thread and connection per
    `connections`, one request at a time): the throughput `ringlet bench` must reach against the same server.

    It runs a fixed number of operations, not for a time, and prints "ops/s: RATE (...)". So the harness
    calibrates: warm-up runs of growing size until one lasts long enough give the rate, and the measured run
    is sized to last about --duration. Its server CPU window is the client's whole life ("lifetime"). The memcache
    client preloads the keys in the first warm-up run only (the server keeps them), with 16-byte keys like
    `ringlet bench memcache --key-size 16`."""
    required = False
    warmup_mode = "calibrate"

    def __init__(self, name: str, kind: str, relative: str, target: str, count_flag: str, ops_per_count: int,
                 flags: dict[str, str]):
        self.name, self.kinds, self.relative, self.target = name, frozenset({kind}), relative, target
        self.count_flag, self.ops_per_count, self.flags = count_flag, ops_per_count, flags
        self.description = f"bench/peers/{Path(relative).name}.c (blocking, one thread per connection)"
        self.build_targets = (target,)

    def check(self, env, kind):
        path = env.build_binary(self.relative)
        if not os.access(path, os.X_OK):
            return f"{path} not built (cmake --build {env.build_dir} --target {self.target})"
        return None

    def sampling(self, env, kind):
        return "lifetime"

    def argv_for(self, env: Env, w: Workload, port: int, ops_per_connection: int, first_run: bool) -> list[str]:
        """A run of about ops_per_connection operations on each of the workload's connections."""
        count = max(1, ops_per_connection // self.ops_per_count)
        args = [str(env.build_binary(self.relative)), "127.0.0.1", str(port), "--threads", str(w.connections),
                self.count_flag, str(count)]
        for param, flag in self.flags.items():
            value = w.params.get(param)
            if value is None or value is False or (param == "preload" and not first_run):
                continue
            args += [flag] if value is True else [flag, str(value)]
        return args + w.extra_args.get(self.name, [])

    def argv(self, env, w, port, duration, warmup, run_dir):
        return self.argv_for(env, w, port, 1000, True)  # for --dry-run; the runner sizes real runs

    def parse(self, stdout):
        m = re.search(r"ops/s: ([0-9.]+)", stdout)
        if not m:
            raise ParseError(f"{self.name} printed no 'ops/s:' line")
        return ClientResult(float(m.group(1)), 0, {}, raw={"output": stdout.strip()[-500:]})


class IdleConnections(Driver):
    """compare_lib/idle_client.py: opens the workload's connections to an echo server, echoes one byte on each (in
    batches of `batch`, default 100) and holds them idle until killed; prints {"connections", "seconds"} and
    "holding" when all are open. The runner reads the server's VmRSS before it starts and while it holds."""
    name = "idle-conns"
    kinds = frozenset({"echo"})
    description = "compare_lib/idle_client.py (holds N idle connections, one byte echoed on each)"
    measure = "idle_memory"
    SCRIPT = Path(__file__).resolve().parent / "idle_client.py"

    def argv(self, env, w, port, duration, warmup, run_dir):
        return [sys.executable, str(self.SCRIPT), "--port", str(port), "--connections", str(w.connections),
                "--batch", str(w.params.get("batch", 100)), *w.extra_args.get(self.name, [])]

    def parse(self, stdout):
        obj = last_json_object(stdout)
        try:
            connections, seconds = int(obj["connections"]), float(obj["seconds"])
        except (KeyError, TypeError, ValueError) as e:
            raise ParseError(f"idle client JSON lacks {e}") from None
        return ClientResult(connections / seconds if seconds > 0 else 0.0, 0, {}, ops=connections,
                            seconds=seconds, raw=obj)


DRIVERS: dict[str, Driver] = {d.name: d for d in (
    EchoLoad(), RingletBench(), Wrk(), IdleConnections(),
    SimpleClient("simple-memcache", "memcache", "bench/peers/simple_memcache_client", "simple_memcache_client",
                 "--ops", 1, {"keys": "--keys", "value_size": "--value-size", "get_ratio": "--get-ratio",
                              "preload": "--preload"}),
    # One cycle is put, reserve, delete: three commands, each one operation as in `ringlet bench beanstalk`.
    SimpleClient("simple-beanstalk", "beanstalk", "bench/peers/simple_beanstalk_client", "simple_beanstalk_client",
                 "--cycles", 3, {"body_size": "--body-size"}),
)}
