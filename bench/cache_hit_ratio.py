#!/usr/bin/env python3
"""cache_hit_ratio.py — hit ratio of `ringlet cache` against memcached at the same memory (issue 10's Zipf target).

Each server is started fresh with the same memory (`--memory 64` / `-m 64`) and one thread, pinned to CPU 1; the client
(`ringlet bench memcache`, one thread) runs pinned to CPU 0, in three phases against it:

  1. fill     uniform sets of all --keys keys (--value-size each, quiet sets 4 deep) for --fill seconds, so the
              cache is overfilled before the Zipf phase starts: 1,000,000 keys × 1 KiB is 16 times 64 MB.
              The script checks that the server evicted; a fill that evicted nothing is reported and fails.
  2. warm-up  the Zipf workload (--get-ratio gets, the rest sets, keys drawn with exponent --zipf-exponent) for
              --warmup seconds: the cache settles on what its eviction policy keeps. Not counted.
  3. measure  the same workload for --duration seconds.

The hit ratio is the server's own count over phase 3: Δget_hits / (Δget_hits + Δget_misses) from `stats` read
before and after it (both servers count per key, so a multi-get counts each of its keys). The client verifies every
value it gets back (a miss is not an error: nothing is preloaded); its errors must be 0. Sets here never follow a
miss: the cache sees the key stream and its eviction policy decides what stays.

  bench/cache_hit_ratio.py --ringlet build/release/ringlet
  bench/cache_hit_ratio.py --ringlet build/release/ringlet --memory 64 --keys 1000000 --value-size 1024 \\
      --zipf-exponent 0.99 --get-ratio 0.9 --duration 10

Like for like, but not equal: memcached's -m counts item memory only, ringlet's --memory everything its store
allocates (the hash index included), so at the same number ringlet has somewhat less room for items. Hit ratio
depends on the key stream, not on the machine's speed, so this runs on a busy machine too (the rate at which each
phase issues requests changes how many happen, not their distribution). Exit status: 0 when ringlet's hit ratio
is at least memcached's, 1 when it is lower or a run counted errors, 2 when something could not run.
"""
import argparse
import json
import os
import shlex
import socket
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stats(port):
    """The server's `stats` as a dict of numbers (the fields we read are counters)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"stats\r\n")
        data = b""
        while not data.endswith(b"END\r\n"):
            chunk = s.recv(65536)
            if not chunk:
                raise RuntimeError("the server closed the stats connection")
            data += chunk
    out = {}
    for line in data.decode().split("\r\n"):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "STAT":
            try:
                out[parts[1]] = int(parts[2])
            except ValueError:
                pass
    return out


def wait_ready(port, proc, deadline=10.0):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} before accepting")
        try:
            stats(port)
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"not serving on 127.0.0.1:{port} after {deadline:.0f} s")


def bench(a, port, seconds, extra):
    """One `ringlet bench memcache` run; its JSON result."""
    argv = ["taskset", "-c", a.client_cpus, a.ringlet, "bench", "memcache", "--connections", str(a.connections),
            "--threads", "1", "--duration", f"{seconds:g}", "--warmup", "0", "--keys", str(a.keys),
            "--key-size", str(a.key_size), "--value-size", str(a.value_size), "--json", *extra,
            f"127.0.0.1:{port}"]
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=seconds + 60)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"no result from {shlex.join(argv)} (exit status {done.returncode}):\n{done.stderr[-2000:]}")
    result = json.loads(lines[-1])
    result["argv"] = argv
    return result


def measure(name, server_argv, port, a):
    proc = subprocess.Popen(["taskset", "-c", a.server_cpus, *server_argv], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_ready(port, proc)
        # Quiet sets 4 deep: deeper pipelines of 1 KiB values stop `ringlet bench` on an assertion in
        # buf/output_chain.cpp (advance) as of this writing.
        fill = bench(a, port, a.fill, ["--get-ratio", "0", "--distribution", "uniform", "--noreply",
                                       "--depth", "4", "--seed", "1"])
        filled = stats(port)
        zipf = ["--get-ratio", str(a.get_ratio), "--distribution", "zipf", "--zipf-exponent", str(a.zipf_exponent),
                "--depth", "1", "--seed", "2"]
        warm = bench(a, port, a.warmup, zipf) if a.warmup > 0 else {"errors": 0}
        before = stats(port)
        run = bench(a, port, a.duration, zipf[:-2] + ["--seed", "3"])  # not a replay of the warm-up
        after = stats(port)
        if proc.poll() is not None:
            raise RuntimeError(f"exited with status {proc.returncode} during the run")
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    hits = after["get_hits"] - before["get_hits"]
    misses = after["get_misses"] - before["get_misses"]
    errors = fill["errors"] + warm["errors"] + run["errors"]
    ratio = hits / (hits + misses) if hits + misses else float("nan")
    print(f"{name:10} fill: {fill['requests']:,} sets in {a.fill:g} s, {filled.get('evictions', 0):,} evictions, "
          f"{filled.get('curr_items', 0):,} items; measured {a.duration:g} s: {hits + misses:,} keys asked, "
          f"{hits:,} hits: hit ratio {ratio:.4f} ({run['throughput']:,.0f} req/s, client errors {errors})")
    return {"hit_ratio": ratio, "hits": hits, "misses": misses, "evictions": filled.get("evictions", 0),
            "errors": errors, "command": shlex.join(server_argv), "client": shlex.join(run["argv"][3:])}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ringlet", default="build/release/ringlet")
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--memory", type=int, default=64, help="MB for both (--memory, -m; default %(default)s)")
    p.add_argument("--keys", type=int, default=1_000_000, help="key space (default %(default)s)")
    p.add_argument("--key-size", type=int, default=16, help="bytes per key (default %(default)s)")
    p.add_argument("--value-size", type=int, default=1024, help="bytes per value (default %(default)s)")
    p.add_argument("--zipf-exponent", type=float, default=0.99, help="default %(default)s")
    p.add_argument("--get-ratio", type=float, default=0.9, help="gets among requests (default %(default)s)")
    p.add_argument("--connections", type=int, default=50, help="default %(default)s")
    p.add_argument("--fill", type=float, default=5.0, help="seconds of uniform sets first (default %(default)s)")
    p.add_argument("--warmup", type=float, default=10.0, help="seconds of the Zipf workload not counted "
                   "(default %(default)s)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds (default %(default)s)")
    p.add_argument("--backend", default="auto", help="ringlet cache --backend (default %(default)s)")
    p.add_argument("--server-cpus", default="1", help="taskset CPUs of the servers (default %(default)s)")
    p.add_argument("--client-cpus", default="0", help="taskset CPUs of the client (default %(default)s)")
    p.add_argument("--json", action="store_true", help="also print both results as one JSON object")
    a = p.parse_args()
    if not os.access(a.ringlet, os.X_OK) or not os.access(a.memcached, os.X_OK):
        print(f"cache_hit_ratio: need {a.ringlet} (cmake --build build/release --target ringlet) and {a.memcached} "
              "(apt-get install memcached)", file=sys.stderr)
        return 2
    results = {}
    try:
        port = free_port()
        results["ringlet"] = measure(
            "ringlet", [a.ringlet, "cache", "--backend", a.backend, "--listen", f"127.0.0.1:{port}", "--memory",
                        str(a.memory), "--threads", "1", "--log-level", "warn"], port, a)
        port = free_port()
        user = ["-u", "root"] if os.geteuid() == 0 else []  # memcached refuses to run as root without -u
        results["memcached"] = measure(
            "memcached", [a.memcached, "-m", str(a.memory), "-p", str(port), "-l", "127.0.0.1", "-t", "1", "-U", "0",
                          "-c", "16384", *user], port, a)
    except (RuntimeError, OSError, subprocess.TimeoutExpired) as e:
        print(f"cache_hit_ratio: {e}", file=sys.stderr)
        return 2
    r, m = results["ringlet"]["hit_ratio"], results["memcached"]["hit_ratio"]
    print(f"ringlet / memcached hit ratio: {r / m:.3f} (target ≥ 1, issue 10; {a.keys:,} keys × {a.value_size} B, "
          f"Zipf {a.zipf_exponent:g}, {a.get_ratio:g} gets, {a.memory} MB, one thread each)")
    if a.json:
        print(json.dumps(results))
    overfilled = all(x["evictions"] > 0 for x in results.values())
    if not overfilled:
        print("the fill evicted nothing: the workload did not overfill the memory (raise --fill or --keys)",
              file=sys.stderr)
    errors = any(x["errors"] for x in results.values())
    return 0 if r >= m and overfilled and not errors else 1


if __name__ == "__main__":
    sys.exit(main())
