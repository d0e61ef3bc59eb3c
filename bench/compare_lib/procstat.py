"""CPU time and resident memory of a server process, its threads and its child processes, read from /proc.

utime + stime in /proc/PID/stat cover every thread of a process, alive or exited; each
/proc/PID/task/TID/stat covers one thread. Both count in clock ticks (1/SC_CLK_TCK s, 10 ms on
Debian), so a sample is exact to one tick: under 1% of a 3 s window at full load.

Resident memory is VmRSS from /proc/PID/status (KiB): the pages the process has touched and still
holds, its share of shared pages included; kernel socket buffers are not in it.

A server's CPU (and memory) is the sum over the process and its descendants (nginx's master forks its
worker), found once after the server accepts; servers here fork nothing later.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

CLK_TCK = os.sysconf("SC_CLK_TCK")


def _stat_fields(path: str) -> tuple[str, list[str]] | None:
    """(comm, fields from field 3 on) of a /proc stat file, or None when the task is gone."""
    try:
        with open(path) as f:
            text = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) is in parentheses and may contain spaces or parentheses.
    open_paren, close_paren = text.index("("), text.rindex(")")
    return text[open_paren + 1:close_paren], text[close_paren + 2:].split()


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of the whole process (all its threads), in seconds; None when gone."""
    parsed = _stat_fields(f"/proc/{pid}/stat")
    if parsed is None:
        return None
    fields = parsed[1]
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def thread_cpu(pid: int) -> dict[int, tuple[str, float]]:
    """{tid: (thread name, CPU seconds)} for every live thread of pid."""
    out: dict[int, tuple[str, float]] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        parsed = _stat_fields(f"/proc/{pid}/task/{tid}/stat")
        if parsed is not None:
            comm, fields = parsed
            out[int(tid)] = (comm, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def status_kib(status_text: str, name: str) -> int | None:
    """A "Name:   1234 kB" field of /proc/PID/status text in KiB, or None when absent (a kernel thread, a zombie)."""
    for line in status_text.splitlines():
        if line.startswith(name + ":"):
            parts = line.split()
            return int(parts[1]) if len(parts) > 1 else None
    return None


def rss_kib(pid: int) -> int | None:
    """VmRSS of a process in KiB; None when it is gone or has no memory left (exiting)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return status_kib(f.read(), "VmRSS")
    except (FileNotFoundError, ProcessLookupError):
        return None


def descendants(pid: int) -> list[int]:
    """pid and every process below it, found by scanning the parent field of /proc/*/stat."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        parsed = _stat_fields(f"/proc/{entry}/stat")
        if parsed is not None:
            children.setdefault(int(parsed[1][1]), []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


@dataclass
class Sample:
    """One reading of a process tree: total CPU seconds and per-thread CPU seconds."""
    total: float
    threads: dict[tuple[int, int], tuple[str, float]] = field(default_factory=dict)  # (pid, tid) -> (name, s)


class TreeSampler:
    """Samples the CPU time or resident memory of a fixed set of processes (a server and its descendants)."""

    def __init__(self, root_pid: int):
        self.root_pid = root_pid
        self.pids = descendants(root_pid)

    def sample(self) -> Sample:
        total = 0.0
        threads: dict[tuple[int, int], tuple[str, float]] = {}
        for pid in self.pids:
            cpu = cpu_seconds(pid)
            if cpu is None:
                continue
            total += cpu
            for tid, value in thread_cpu(pid).items():
                threads[(pid, tid)] = value
        return Sample(total, threads)

    def rss_kib(self) -> int:
        """VmRSS summed over the processes still alive, in KiB."""
        return sum(kib for kib in (rss_kib(pid) for pid in self.pids) if kib is not None)


def thread_deltas(start: Sample, end: Sample) -> list[dict]:
    """CPU seconds each thread spent between two samples, busiest first (threads alive at the end)."""
    rows = []
    for key, (name, cpu_end) in end.threads.items():
        cpu_start = start.threads.get(key, (name, 0.0))[1]
        rows.append({"pid": key[0], "tid": key[1], "name": name, "cpu_s": cpu_end - cpu_start})
    rows.sort(key=lambda r: -r["cpu_s"])
    return rows
