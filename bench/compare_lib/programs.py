"""Benchmark programs that compare both sides themselves: matrices with "measure": "program".

Some comparisons are not a server under load: ringlet's timer wheel against libuv's timer heap
(bench/timers/timers_bench), messages between two shards (bench/shards/shard_messages_bench). Their
programs hold both sides in one process and follow the harness's rules themselves — timers_bench
alternates ringlet and libuv repetition by repetition, shard_messages_bench pins its two shards to
the first two CPUs it may use — and print median, min and max over their own --reps. bench/compare
builds them, runs each once pinned to its CPUs (taskset), with --reps from the command line (or the
program's own "reps"), and records its output verbatim with the exact command between the matrix's
markers in docs/benchmarks.md, so `bench/compare --matrix all` re-measures every figure the README
quotes. A smoke run passes "smoke_args" (tiny sizes) and --reps 1.

Matrix format:
  {"name": "timers", "title": "...", "about": "Markdown shown above the output", "measure": "program",
   "server_cpus": "1",                  # the CPUs each program is pinned to, unless it names its own
   "programs": [{"name": "timers_1m", "target": "timers_bench", "binary": "bench/timers/timers_bench",
                 "args": ["--sizes", "1000000"], "reps": 3, "cpus": "0,1", "smoke_args": ["--sizes", "10000"],
                 "description": "..."}]}
  A script instead of a built binary: "interpreter": "/usr/bin/python3" and "binary" its path in the repository;
  it is run as INTERPRETER SCRIPT --build-dir BUILD_DIR --reps N ARGS (the python matrix's loop_bench.py).
"""
from __future__ import annotations

import os
import shlex
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .env import Env

PROGRAM_TIMEOUT_S = 1800.0  # the slowest (10M timers fired by libuv, 5 repetitions) takes about 6 min


class ProgramError(ValueError):
    pass


@dataclass
class Program:
    name: str
    target: str     # the CMake target that builds it
    binary: str     # its path under the build directory
    args: list[str] = field(default_factory=list)
    reps: int | None = None  # its own repetitions, instead of the command line's
    cpus: str | None = None  # instead of the matrix's server_cpus
    smoke_args: list[str] | None = None
    description: str = ""
    interpreter: str | None = None  # binary is then a script in the repository, run by this interpreter


def parse_programs(entries: Any, where: str) -> list[Program]:
    if not isinstance(entries, list) or not entries:
        raise ProgramError(f"{where}: a program matrix needs a non-empty 'programs' list")
    programs = []
    for e in entries:
        missing = [k for k in ("name", "target", "binary") if k not in e]
        if missing:
            raise ProgramError(f"{where}: program {e}: missing {', '.join(missing)}")
        reps = e.get("reps")
        if reps is not None and (not isinstance(reps, int) or reps < 1):
            raise ProgramError(f"{where}: program {e['name']}: reps must be a positive integer")
        programs.append(Program(e["name"], e["target"], e["binary"], [str(a) for a in e.get("args", [])], reps,
                                e.get("cpus"), [str(a) for a in e["smoke_args"]] if "smoke_args" in e else None,
                                e.get("description", ""), e.get("interpreter")))
    return programs


def program_argv(env: Env, program: Program, reps: int, cpus: str, smoke: bool) -> list[str]:
    """The pinned command line of one run: a smoke run takes the tiny arguments and one repetition."""
    args = program.smoke_args if smoke and program.smoke_args is not None else program.args
    count = 1 if smoke else (program.reps or reps)
    if program.interpreter:
        return ["taskset", "-c", program.cpus or cpus, program.interpreter, str(env.repo / program.binary),
                "--build-dir", str(env.build_dir), "--reps", str(count), *args]
    return ["taskset", "-c", program.cpus or cpus, str(env.build_binary(program.binary)), "--reps", str(count),
            *args]


def shown_command(env: Env, argv: list[str]) -> str:
    """argv as the doc shows it: the binary (or script) and build directory relative to the repository, without
    the taskset prefix."""
    def relative(arg: str) -> str:
        try:
            return str(Path(arg).relative_to(env.repo)) if arg.startswith("/") else arg
        except ValueError:
            return arg
    return shlex.join([relative(a) for a in argv[3:]])


def check(env: Env, program: Program) -> str | None:
    """None when the program is built, else why it cannot run."""
    if program.interpreter:
        if not os.access(program.interpreter, os.X_OK):
            return f"{program.interpreter} is not installed"
        return None if (env.repo / program.binary).exists() else f"{program.binary} is missing"
    path = env.build_binary(program.binary)
    if os.access(path, os.X_OK):
        return None
    return f"{path} not built (cmake --build {env.build_dir} --target {program.target}" + \
        ("; it needs libuv1-dev at configure time)" if "timers" in program.target else ")")


def run_program(env: Env, program: Program, argv: list[str]) -> dict[str, Any]:
    """Runs it to its end in its own session (Ctrl-C reaches only the harness, which kills it); its record.
    Raises RuntimeError when it fails or hangs."""
    started = time.monotonic()
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=PROGRAM_TIMEOUT_S, start_new_session=True)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{program.name} did not finish in {PROGRAM_TIMEOUT_S:.0f} s: {shlex.join(argv)}") from None
    if done.returncode != 0:
        raise RuntimeError(f"{program.name} failed (exit status {done.returncode}): {shlex.join(argv)}\n"
                           f"  stdout: {done.stdout[-2000:]}\n  stderr: {done.stderr[-2000:]}")
    return {"measure": "program", "program": program.name, "argv": argv, "command": shown_command(env, argv),
            "stdout": done.stdout, "seconds": time.monotonic() - started, "errors": 0, "warnings": []}


def render_section(about: str, records: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    """About, where and when, the harness command, then each program's command and output verbatim."""
    out = [about.strip(), ""] if about else []
    out += [f"Measured {meta['date']} on commit {meta['commit']}: Linux {meta['kernel']}, {meta['cpu']}, "
            f"{meta['cpus']} CPUs. Each program pinned with taskset (CPUs below), run once; it runs both sides "
            "itself and prints median, min and max over its repetitions.",
            "", f"`{meta['command']}`"]
    for r in records:
        cpus = r["argv"][2]
        out += ["", f"`{r['command']}` (CPU {cpus}):", "", "```", r["stdout"].strip(), "```"]
    skipped = meta.get("skipped", [])
    if skipped:
        out += ["", "Not run: " + "; ".join(f"{what} — {why}" for what, why in skipped) + "."]
    failed = meta.get("failed", [])
    if failed:
        out += ["", "Failed runs: " + "; ".join(failed) + "."]
    return "\n".join(out) + "\n"
