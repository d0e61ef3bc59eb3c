"""The servers the harness can run, and one running server process.

A ServerSpec knows how to start one server on 127.0.0.1:PORT (argv, per-run files such as an
nginx config or a beanstalkd binlog directory), which workload kinds it serves, and why it
cannot run here (binary not built, subcommand not there yet, package not installed). Matrices
name servers from SERVERS and may add arguments, CPUs and a per-server baseline.

Every server is started with `taskset -c CPUS` (taskset execs it, so the pid is the server's),
in its own session so Ctrl-C in the terminal reaches only the harness, which then stops the
whole process group: SIGTERM, then SIGKILL after a grace period.
"""
from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .env import Env, MissingTool, WWW_FILES, restore_priority

# Argument builder: (env, port, run_dir) -> argv without taskset.
ArgvFn = Callable[[Env, int, Path], list[str]]
# Availability check: env -> None when the server can run, else the reason it cannot.
CheckFn = Callable[[Env], "str | None"]


@dataclass(frozen=True)
class ServerSpec:
    name: str
    kinds: frozenset[str]
    argv: ArgvFn
    check: CheckFn
    description: str
    build_targets: tuple[str, ...] = ()
    # Errors (not skips) when unavailable: a system package the user must install.
    required: bool = False


def _ringlet_server(sub: str, *extra: str) -> ArgvFn:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        args = [str(env.ringlet), sub, "--listen", f"127.0.0.1:{port}"]
        for a in extra:
            args.append(a.format(www=env.www, run_dir=run_dir))
        return args
    return argv


def _ringlet_check(sub: str, *flags: str) -> CheckFn:
    return lambda env: env.ringlet_has([sub], "--listen", *flags)


def _peer(relative: str) -> tuple[ArgvFn, CheckFn]:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        return [str(env.build_binary(relative)), str(port)]

    def check(env: Env) -> str | None:
        path = env.build_binary(relative)
        if os.access(path, os.X_OK):
            return None
        hint = " (needs libuv1-dev at configure time)" if "libuv" in relative else ""
        return f"{path} not built{hint}: cmake --build {env.build_dir} --target {Path(relative).name}"
    return argv, check


def _system_check(binary: str) -> CheckFn:
    def check(env: Env) -> str | None:
        try:
            env.system_binary(binary)
        except MissingTool as e:
            return str(e)
        return None
    return check


# nginx's configuration is bench/peers/nginx.conf.template (shared with the integration tests): one worker,
# sendfile on, access_log off, as issue 5 asks. Placeholders: @PORT@, @ROOT@, @TMP@ (a writable directory).
NGINX_TEMPLATE = "bench/peers/nginx.conf.template"


def _nginx_argv(env: Env, port: int, run_dir: Path) -> list[str]:
    template = (env.repo / NGINX_TEMPLATE).read_text()
    conf = run_dir / "nginx.conf"
    conf.write_text(template.replace("@PORT@", str(port)).replace("@ROOT@", str(env.www))
                    .replace("@TMP@", str(run_dir)))
    return [str(env.system_binary("nginx")), "-p", str(run_dir), "-e", str(run_dir / "error.log"),
            "-c", str(conf)]


def _nginx_check(env: Env) -> str | None:
    if not (env.repo / NGINX_TEMPLATE).exists():
        return f"{NGINX_TEMPLATE} is missing"
    return _system_check("nginx")(env)


def _backend_port(env: Env) -> int:
    if env.backend_port is None:
        raise RuntimeError("this server relays to a backend: its matrix needs a \"backend\" entry")
    return env.backend_port


def _ringlet_proxy_argv(io_backend: str) -> ArgvFn:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        return [str(env.ringlet), "proxy", "--listen", f"127.0.0.1:{port}", "--backend",
                f"127.0.0.1:{_backend_port(env)}", "--io-backend", io_backend, "--threads", "1"]
    return argv


# HAProxy as issue 12 compares against: Debian's 2.6, `mode tcp`, one thread, default buffers (it copies), a TCP
# health check like ours, logging off.
def _haproxy_argv(env: Env, port: int, run_dir: Path) -> list[str]:
    conf = run_dir / "haproxy.cfg"
    conf.write_text("global\n  nbthread 1\n  maxconn 8000\n"
                    "defaults\n  mode tcp\n  timeout connect 3s\n  timeout client 300s\n  timeout server 300s\n"
                    f"frontend in\n  bind 127.0.0.1:{port}\n  default_backend out\n"
                    f"backend out\n  server s1 127.0.0.1:{_backend_port(env)} check inter 2s\n")
    return [str(env.system_binary("haproxy")), "-db", "-f", str(conf)]


def _memcached_argv(threads: int) -> ArgvFn:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        args = [str(env.system_binary("memcached")), "-t", str(threads), "-l", "127.0.0.1", "-p", str(port),
                "-U", "0", "-m", "1024", "-c", "16384"]
        if os.geteuid() == 0:
            args += ["-u", "root"]  # memcached refuses to run as root without -u
        return args
    return argv


def _beanstalkd_argv(binlog: bool) -> ArgvFn:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        args = [str(env.system_binary("beanstalkd")), "-l", "127.0.0.1", "-p", str(port)]
        if binlog:
            args += ["-b", str(run_dir)]
        return args
    return argv


# The python matrix's servers (bench/python/): one script per workload kind, run on Debian's interpreter (the one
# Debian's uvloop, httptools and aiohttp are built for) with the loop named by the spec; the matrix's args pick
# how the server is written (--style protocol|streams|sock, --app httptools|aiohttp).
PYTHON = "/usr/bin/python3"
PYTHON_LOOPS = {"ringlet": (), "uvloop": ("uvloop",), "asyncio": ()}
PYTHON_SCRIPTS = {"echo": ("echo_server.py", ()), "http": ("http_server.py", ("httptools", "aiohttp"))}


def _python_argv(script: str, loop: str) -> ArgvFn:
    def argv(env: Env, port: int, run_dir: Path) -> list[str]:
        return [PYTHON, str(env.repo / "bench" / "python" / script), "--loop", loop, "--port", str(port),
                "--ringlet-path", str(env.build_dir / "python")]
    return argv


def _python_check(loop: str, modules: tuple[str, ...]) -> CheckFn:
    def check(env: Env) -> str | None:
        if loop == "ringlet" and not (env.build_dir / "python" / "ringlet").is_dir():
            return f"the Python binding is not built (needs python3-dev): cmake --build {env.build_dir} " \
                   "--target ringlet_python"
        for module in modules:
            done = subprocess.run([PYTHON, "-c", f"import {module}"], capture_output=True)
            if done.returncode != 0:
                return f"{PYTHON} cannot import {module}: apt-get install python3-{module} " \
                       "(scripts/install-deps.sh installs it)"
        return None
    return check


def _catalogue() -> dict[str, ServerSpec]:
    specs: list[ServerSpec] = []
    for backend in ("uring", "epoll"):
        specs.append(ServerSpec(f"ringlet-{backend}", frozenset({"echo"}),
                                _ringlet_server("echo", "--backend", backend), _ringlet_check("echo", "--backend"),
                                f"ringlet echo --backend {backend}", ("ringlet",)))
    specs.append(ServerSpec("ringlet-echo", frozenset({"echo"}), _ringlet_server("echo"), _ringlet_check("echo"),
                            "ringlet echo with the matrix's args (e.g. a --threads N scaling curve)", ("ringlet",)))
    for threads in (1, 2):
        specs.append(ServerSpec(f"ringlet-t{threads}", frozenset({"echo"}),
                                _ringlet_server("echo", "--threads", str(threads)),
                                _ringlet_check("echo", "--threads"),
                                f"ringlet echo --threads {threads}", ("ringlet",)))
    for backend in ("uring", "epoll"):
        specs.append(ServerSpec(f"ringlet-http-{backend}", frozenset({"http"}),
                                _ringlet_server("http", "--root", "{www}", "--backend", backend),
                                _ringlet_check("http", "--root", "--backend"),
                                f"ringlet http --backend {backend}", ("ringlet",)))
    # The memcached- and beanstalkd-protocol servers of VISION.md (`ringlet cache`, `ringlet queue`):
    # skipped until they exist.
    # The same memory as memcached's -m 1024 above: with its default 64 MB, ringlet cache evicts 4 KiB values of the
    # preloaded keys and the gets that must hit miss.
    specs.append(ServerSpec("ringlet-cache", frozenset({"memcache"}), _ringlet_server("cache", "--memory", "1024"),
                            _ringlet_check("cache", "--memory"), "ringlet cache --memory 1024", ("ringlet",)))
    specs.append(ServerSpec("ringlet-queue", frozenset({"beanstalk"}), _ringlet_server("queue"),
                            _ringlet_check("queue"), "ringlet queue (no binlog)", ("ringlet",)))
    specs.append(ServerSpec("ringlet-queue-binlog", frozenset({"beanstalk"}),
                            _ringlet_server("queue", "--binlog", "{run_dir}"), _ringlet_check("queue", "--binlog"),
                            "ringlet queue --binlog DIR", ("ringlet",)))
    for backend in ("uring", "epoll"):
        specs.append(ServerSpec(f"ringlet-proxy-{backend}", frozenset({"echo"}), _ringlet_proxy_argv(backend),
                                _ringlet_check("proxy", "--io-backend", "--splice"),
                                f"ringlet proxy --io-backend {backend} --threads 1 (matrix args add --splice)",
                                ("ringlet",)))
    specs.append(ServerSpec("haproxy", frozenset({"echo"}), _haproxy_argv, _system_check("haproxy"),
                            "HAProxy, mode tcp, nbthread 1", required=True))
    argv, check = _peer("bench/peers/epoll_echo")
    specs.append(ServerSpec("epoll-c", frozenset({"echo"}), argv, check,
                            "bench/peers/epoll_echo.c: hand-written edge-triggered epoll", ("epoll_echo",)))
    argv, check = _peer("bench/peers/libuv_echo")
    specs.append(ServerSpec("libuv", frozenset({"echo"}), argv, check,
                            "bench/peers/libuv_echo.c: libuv, written the usual way", ("libuv_echo",)))
    specs.append(ServerSpec("nginx", frozenset({"http"}), _nginx_argv, _nginx_check,
                            "nginx, one worker, sendfile on, access_log off", required=True))
    specs.append(ServerSpec("memcached", frozenset({"memcache"}), _memcached_argv(1), _system_check("memcached"),
                            "memcached -t 1", required=True))
    specs.append(ServerSpec("memcached-t2", frozenset({"memcache"}), _memcached_argv(2),
                            _system_check("memcached"), "memcached -t 2", required=True))
    specs.append(ServerSpec("beanstalkd", frozenset({"beanstalk"}), _beanstalkd_argv(False),
                            _system_check("beanstalkd"), "beanstalkd without binlog", required=True))
    specs.append(ServerSpec("beanstalkd-binlog", frozenset({"beanstalk"}), _beanstalkd_argv(True),
                            _system_check("beanstalkd"), "beanstalkd -b DIR (binlog, default fsync policy)",
                            required=True))
    for kind, (script, modules) in PYTHON_SCRIPTS.items():
        for loop, loop_modules in PYTHON_LOOPS.items():
            specs.append(ServerSpec(f"python-{kind}-{loop}", frozenset({kind}), _python_argv(script, loop),
                                    _python_check(loop, loop_modules + modules),
                                    f"bench/python/{script} on {loop} (/usr/bin/python3)",
                                    ("ringlet_python",) if loop == "ringlet" else (),
                                    required=loop != "ringlet"))
    return {s.name: s for s in specs}


SERVERS = _catalogue()


@dataclass
class ServerUse:
    """A server as a matrix uses it: the spec plus extra arguments, CPUs and its own baseline."""
    spec: ServerSpec
    label: str
    extra_args: list[str] = field(default_factory=list)
    cpus: str | None = None
    baseline: str | None = None

    def argv(self, env: Env, port: int, run_dir: Path) -> list[str]:
        return self.spec.argv(env, port, run_dir) + self.extra_args


def free_port() -> int:
    """An ephemeral port that was free a moment ago (the server binds it right after)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Protocol probes: one request a correctly configured server answers with the given prefix.
def _probe_request(kind: str) -> tuple[bytes, bytes]:
    if kind == "echo":
        return b"ping\n", b"ping\n"
    if kind == "http":
        path = next(iter(WWW_FILES))
        return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode(), b"HTTP/1.1 200"
    if kind == "memcache":
        return b"version\r\n", b"VERSION "
    if kind == "beanstalk":
        return b"list-tubes\r\n", b"OK "
    raise ValueError(kind)


class ServerExited(RuntimeError):
    """The server exited before it accepted (a bad flag, or its port was taken meanwhile)."""


class RunningServer:
    """One server process on 127.0.0.1:port, pinned with taskset, output kept in a temp file."""

    live: set["RunningServer"] = set()  # every server not yet stopped, for the emergency stop

    def __init__(self, label: str, argv: list[str], cpus: str, port: int):
        self.label, self.port = label, port
        self.run_dir: Path | None = None
        self.log = tempfile.TemporaryFile()
        self.argv = ["taskset", "-c", cpus, *argv]
        self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True, preexec_fn=restore_priority)
        RunningServer.live.add(self)

    def output(self, limit: int = 4000) -> str:
        self.log.seek(0)
        return self.log.read().decode(errors="replace")[-limit:]

    def failure(self, why: str, kind: type = RuntimeError) -> RuntimeError:
        self.stop()
        return kind(f"{self.label}: {why}\n  command: {shlex.join(self.argv)}\n"
                            f"  server output:\n{self.output()}")

    def exit_status(self) -> int | None:
        """The exit status once the server has exited, else None. Does not reap the process: while
        it is unreaped its pid (the process group id) cannot be reused, so the group can always be
        signalled safely."""
        if self.proc.returncode is not None:
            return self.proc.returncode
        info = os.waitid(os.P_PID, self.proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        if info is None or info.si_pid == 0:
            return None
        return info.si_status if info.si_code == os.CLD_EXITED else -info.si_status

    def alive(self) -> bool:
        return self.exit_status() is None

    def wait_ready(self, kind: str, timeout: float = 10.0) -> None:
        """Waits until the server accepts and answers one request of its protocol."""
        request, expect = _probe_request(kind)
        deadline = time.monotonic() + timeout
        last_error = "no connection"
        while time.monotonic() < deadline:
            if not self.alive():
                raise self.failure(f"exited with status {self.exit_status()} before accepting", ServerExited)
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                    s.sendall(request)
                    reply = b""
                    while len(reply) < len(expect):
                        chunk = s.recv(4096)
                        if not chunk:
                            break
                        reply += chunk
                    if reply.startswith(expect):
                        return
                    last_error = f"probe {request!r} answered {reply[:80]!r}, expected {expect!r}..."
                    time.sleep(0.05)
            except OSError as e:
                last_error = str(e)
                time.sleep(0.02)
        raise self.failure(f"not serving on 127.0.0.1:{self.port} after {timeout:.0f} s ({last_error})")

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to the server's process group, SIGKILL to what is left after `grace` seconds
        (an orphaned nginx worker included), then reap the server."""
        RunningServer.live.discard(self)
        if self.proc.returncode is not None:
            return
        _signal_group(self.proc, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        _signal_group(self.proc, signal.SIGKILL)  # the leader is not reaped yet: the group id is ours
        self.proc.wait(timeout=10)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.live):
            server.stop(grace=2.0)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
