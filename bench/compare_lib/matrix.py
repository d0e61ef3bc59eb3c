"""Matrix definitions (bench/matrices/*.json) and the plan of runs they expand to.

A matrix is servers × clients × workloads, compared along one axis ("compare": "server" or
"client") against a named baseline, with optional pass/fail checks. What a run measures is the
matrix's "measure": "cpu" (the default: the client's throughput and latency, the server's CPU per
operation over the client's measured window) or "idle_memory" (the server's resident memory per
connection while a client holds the workload's connections idle); "program" matrices run
benchmark programs that compare both sides themselves (their format: programs.py). The file format:

  {
    "name": "echo", "title": "...", "about": "Markdown shown above the table",
    "measure": "cpu",                   # or "idle_memory"; its clients must measure the same
    "compare": "server",                # which axis the baseline names (default "server")
    "baseline": "epoll-c",
    "server_cpus": "1", "client_cpus": "0",
    "servers": ["ringlet-uring",        # names from servers.SERVERS, or objects:
                {"name": "ringlet-t2", "label": "ringlet-t2-handoff", "args": ["--accept", "handoff"],
                 "cpus": "0,1", "baseline": "..."}],
    "clients": ["echo_load"],           # names from drivers.DRIVERS
    "workloads": [{"name": "echo_64b_50conn", "kind": "echo", "size": 64, "connections": 50, "depth": 1,
                   "baseline": "...",   # optional: this workload's own baseline
                   "clients": ["echo_load"],  # optional: only these of the matrix's clients run it
                   "floor": "...",      # optional: an echo workload of this matrix whose server CPU per
                                        # message is reported beside this row as its floor (the kernel's
                                        # cost of the same round trips); it runs even when only its own
                                        # baseline can (the floor server is usually the only echo server)
                   "extra_args": {"ringlet-bench": ["--flag", "value"]}}],
    "checks": [{"label": "...", "subject": "ringlet-uring" | ["a", "b"], "workloads": ["echo_64b_50conn"],
                "metric": "cpu_ratio" | "throughput_ratio" | "errors", "op": "<=" | ">=" | "==", "value": 0.9}],
                                        # idle_memory: "memory_ratio", or "bytes_per_connection" (absolute)
    "per_thread": false,                # report how CPU time and connections spread over the server's threads
    "client_cpu": false,                # a "client CPU %" column beside the server's (clients that report it:
                                        # echo_load, ringlet bench): shows when the client set the pace
    "backend": {"name": "ringlet-epoll", "cpus": "1"}
                                        # optional: a server started beside each cell's server, for servers that
                                        # relay to one (proxies); they find its port in env.backend_port
  }

Ratio checks compare the ratio of medians to the cell's baseline; an absolute check (bytes_per_connection)
compares the median itself; an errors check sums the errors of every covered cell. Workload parameters other
than name/kind/description/baseline/extra_args go to the clients (drivers.py says which flag each becomes);
idle_memory workloads also take "settle" (seconds before each memory reading, default 0.5) and "batch".
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .drivers import DRIVERS, Driver, Workload
from .env import Env
from .programs import Program, ProgramError, parse_programs
from .servers import SERVERS, ServerUse

MATRIX_DIR = Path(__file__).resolve().parent.parent / "matrices"
# Check metric -> (record field, unit): "×" marks a ratio of medians to the baseline, any other unit an absolute
# median; "errors" sums the errors column.
METRICS = {"throughput_ratio": ("throughput", "×"), "cpu_ratio": ("cpu_us_per_op", "×"), "errors": ("errors", ""),
           "memory_ratio": ("bytes_per_conn", "×"), "bytes_per_connection": ("bytes_per_conn", "B")}
# What each measure records, and so which checks can apply to it.
MEASURES = {"cpu": ("throughput_ratio", "cpu_ratio", "errors"),
            "idle_memory": ("memory_ratio", "bytes_per_connection"),
            "program": ()}
OPS = ("<=", ">=", "==")


class MatrixError(ValueError):
    pass


@dataclass
class Check:
    label: str
    subject: str | list[str]  # a server (or client) label, or several
    workloads: list[str] | None  # None: every workload
    metric: str
    op: str
    value: float


@dataclass
class Matrix:
    name: str
    title: str
    about: str
    compare: str
    baseline: str
    server_cpus: str
    client_cpus: str
    servers: list[ServerUse]
    clients: list[Driver]
    workloads: list[Workload]
    checks: list[Check] = field(default_factory=list)
    per_thread: bool = False
    source: Path | None = None
    measure: str = "cpu"
    programs: list[Program] = field(default_factory=list)  # a "program" matrix has these and nothing else
    backend: ServerUse | None = None  # started beside each cell's server (a proxy's backend)
    client_cpu: bool = False  # report the client's own CPU % beside the server's

    def baseline_for(self, workload: Workload, server: ServerUse | None) -> str:
        """The server (or client) a cell's ratios are taken against: the server's own baseline, else the
        workload's, else the matrix's."""
        if self.compare == "server" and server is not None and server.baseline:
            return server.baseline
        return workload.baseline or self.baseline


@dataclass
class Cell:
    """One (workload, server, client) combination; runs once per repetition."""
    workload: Workload
    server: ServerUse
    client: Driver

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.workload.name, self.server.label, self.client.name)


def available_matrices() -> list[str]:
    return sorted(p.stem for p in MATRIX_DIR.glob("*.json"))


def load(name_or_path: str) -> Matrix:
    path = Path(name_or_path)
    if not path.suffix:
        path = MATRIX_DIR / f"{name_or_path}.json"
    if not path.exists():
        raise MatrixError(f"no matrix {name_or_path!r}: choose from {', '.join(available_matrices())} or give a path")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise MatrixError(f"{path}: {e}") from None
    return parse(data, path)


def _need(data: dict, key: str, where: str) -> Any:
    if key not in data:
        raise MatrixError(f"{where}: missing {key!r}")
    return data[key]


def parse(data: dict[str, Any], source: Path | None = None) -> Matrix:
    where = str(source or data.get("name", "matrix"))
    if data.get("measure") == "program":
        try:
            programs = parse_programs(data.get("programs"), where)
        except ProgramError as e:
            raise MatrixError(str(e)) from None
        return Matrix(_need(data, "name", where), data.get("title", data["name"]), data.get("about", ""), "server",
                      "", str(data.get("server_cpus", "1")), str(data.get("client_cpus", "0")), [], [], [],
                      source=source, measure="program", programs=programs)
    servers = []
    for entry in _need(data, "servers", where):
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        spec = SERVERS.get(entry["name"])
        if spec is None:
            raise MatrixError(f"{where}: unknown server {entry['name']!r}; known: {', '.join(SERVERS)}")
        servers.append(ServerUse(spec, entry.get("label", entry["name"]), list(entry.get("args", [])),
                                 entry.get("cpus"), entry.get("baseline")))
    clients = []
    for name in _need(data, "clients", where):
        if name not in DRIVERS:
            raise MatrixError(f"{where}: unknown client {name!r}; known: {', '.join(DRIVERS)}")
        clients.append(DRIVERS[name])
    workloads = []
    for entry in _need(data, "workloads", where):
        entry = dict(entry)
        name, kind = _need(entry, "name", where), _need(entry, "kind", where)
        if kind not in ("echo", "http", "memcache", "beanstalk"):
            raise MatrixError(f"{where}: workload {name}: unknown kind {kind!r}")
        extra = entry.pop("extra_args", {})
        description = entry.pop("description", "")
        own_baseline = entry.pop("baseline", None)
        only_clients = entry.pop("clients", None)
        floor = entry.pop("floor", None)
        params = {k: v for k, v in entry.items() if k not in ("name", "kind")}
        for c in only_clients or []:
            if c not in DRIVERS or DRIVERS[c] not in clients:
                raise MatrixError(f"{where}: workload {name}: client {c!r} is not one of the matrix's clients")
        workloads.append(Workload(name, kind, params, description, extra, own_baseline, only_clients, floor))
    by_name = {w.name: w for w in workloads}
    for w in workloads:
        if w.floor is not None and (w.floor not in by_name or by_name[w.floor].kind != "echo"):
            raise MatrixError(f"{where}: workload {w.name}: floor {w.floor!r} must name an echo workload of "
                              "this matrix")
    compare = data.get("compare", "server")
    if compare not in ("server", "client"):
        raise MatrixError(f"{where}: compare must be 'server' or 'client'")
    baseline = _need(data, "baseline", where)
    axis = [s.label for s in servers] if compare == "server" else [c.name for c in clients]
    for b in [baseline] + [w.baseline for w in workloads if w.baseline] + [s.baseline for s in servers if s.baseline]:
        if b not in axis:
            raise MatrixError(f"{where}: baseline {b!r} is not one of the {compare}s {axis}")
    measure = data.get("measure", "cpu")
    if measure not in MEASURES:
        raise MatrixError(f"{where}: measure must be one of {', '.join(MEASURES)}")
    for c in clients:
        if c.measure != measure:
            raise MatrixError(f"{where}: client {c.name} measures {c.measure}, the matrix {measure}")
    checks = []
    for c in data.get("checks", []):
        if c.get("metric") not in MEASURES[measure] or c.get("op") not in OPS:
            raise MatrixError(f"{where}: check {c}: metric must be one of {MEASURES[measure]} (measure {measure}), "
                              f"op one of {OPS}")
        checks.append(Check(c.get("label", ""), _need(c, "subject", where), c.get("workloads"), c["metric"], c["op"],
                            float(_need(c, "value", where))))
    backend = None
    if "backend" in data:
        entry = data["backend"]
        entry = {"name": entry} if isinstance(entry, str) else dict(entry)
        spec = SERVERS.get(entry.get("name", ""))
        if spec is None:
            raise MatrixError(f"{where}: unknown backend server {entry.get('name')!r}; known: {', '.join(SERVERS)}")
        backend = ServerUse(spec, "backend", list(entry.get("args", [])), entry.get("cpus"))
    return Matrix(_need(data, "name", where), data.get("title", data["name"]), data.get("about", ""), compare,
                  baseline, str(data.get("server_cpus", "1")), str(data.get("client_cpus", "0")), servers, clients,
                  workloads, checks, bool(data.get("per_thread", False)), source, measure, backend=backend,
                  client_cpu=bool(data.get("client_cpu", False)))


def cap_connections(matrix: Matrix, limit: int, why: str) -> None:
    """At most `limit` connections in every workload (a smoke run). A workload keeps its name; one whose description
    was written for the full count says it was cut."""
    for w in matrix.workloads:
        if w.connections > limit:
            w.params["connections"] = limit
            if w.description:
                w.description += f" — {why}: {limit} connections"


@dataclass
class Plan:
    cells: list[Cell]
    skipped: list[tuple[str, str]]  # (what, why)
    errors: list[str]               # missing system packages: the run cannot start


def plan(matrix: Matrix, env: Env, only_servers: set[str] | None = None, only_clients: set[str] | None = None,
         only_workloads: set[str] | None = None) -> Plan:
    """Cells that can run here, what is skipped (not built yet) and what blocks the run (not installed)."""
    cells: list[Cell] = []
    skipped: list[tuple[str, str]] = []
    errors: list[str] = []
    server_reason: dict[str, str | None] = {}
    for s in matrix.servers:
        if only_servers and s.label not in only_servers:
            continue
        reason = s.spec.check(env)
        server_reason[s.label] = reason
        if reason:
            (errors.append(f"server {s.label}: {reason}") if s.spec.required
             else skipped.append((f"server {s.label}", reason)))
    workloads = [w for w in matrix.workloads if not only_workloads or w.name in only_workloads]
    # A row's floor runs with it: asking for the row by name brings its floor workload along.
    workloads += [w for w in matrix.workloads if w not in workloads and
                  any(x.floor == w.name for x in workloads)]
    floors = {w.floor for w in workloads if w.floor}
    for c in matrix.clients:
        if only_clients and c.name not in only_clients:
            continue
        for kind in sorted({w.kind for w in workloads if w.kind in c.kinds}):
            reason = c.check(env, kind)
            if reason:
                (errors.append(f"client {c.name}: {reason}") if c.required
                 else skipped.append((f"client {c.name} ({kind})", reason)))
                continue
            for w in workloads:
                if w.kind != kind or (w.clients is not None and c.name not in w.clients):
                    continue
                for s in matrix.servers:
                    if s.label in server_reason and server_reason[s.label] is None and w.kind in s.spec.kinds:
                        cells.append(Cell(w, s, c))
    # A comparison without its baseline is no comparison: say so instead of printing ratios of nothing.
    for w in workloads:
        wanted = {matrix.baseline_for(w, c.server) for c in cells if c.workload.name == w.name}
        present = {(c.server.label if matrix.compare == "server" else c.client.name)
                   for c in cells if c.workload.name == w.name}
        for b in sorted(wanted - present):
            skipped.append((f"ratios to {b} in {w.name}", f"{b} cannot run here"))
    if not (only_servers or only_clients):
        # A workload where only its baseline can run compares nothing: leave it out (unless asked for by name).
        for w in workloads:
            if w.name in floors:
                continue  # a floor is measured for the rows beside it, not compared
            mine = [c for c in cells if c.workload.name == w.name]
            subjects = {(c.server.label if matrix.compare == "server" else c.client.name) for c in mine}
            bases = {matrix.baseline_for(w, c.server) for c in mine}
            if mine and subjects <= bases:
                cells = [c for c in cells if c.workload.name != w.name]
                skipped.append((w.name, f"only its baseline ({', '.join(sorted(bases))}) can run, nothing to compare"))
    order = {w.name: i for i, w in enumerate(matrix.workloads)}
    cells.sort(key=lambda c: order[c.workload.name])
    return Plan(cells, skipped, errors)
