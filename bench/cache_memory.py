#!/usr/bin/env python3
"""cache_memory.py — resident memory per item of `ringlet cache` against memcached (issue 10's memory target).

Starts each server fresh, reads its VmRSS once it answers, stores N items (32-byte keys, 100-byte values by default)
with pipelined `set ... noreply`, waits for a `version` round trip (so every set has been applied) and half a second
for the process to settle, and reads VmRSS again. Bytes per item = RSS growth / N. Memory is not speed: the result does
not depend on how busy the machine is, so this runs anywhere (it never runs as part of the test suite: 1,000,000 items
take a few seconds and ~400 MB).

  bench/cache_memory.py --ringlet build/release/ringlet [--items 1000000] [--threads 1] [--memory 1024]

memcached runs with Debian's settings (/etc/memcached.conf: only -m, -p, -u, -l) plus the same -m and -t.
"""
import argparse
import os
import socket
import subprocess
import sys
import time


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def connect(port, deadline=10.0):
    end = time.time() + deadline
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port))
        except OSError:
            if time.time() > end:
                raise
            time.sleep(0.05)


def round_trip(sock):
    sock.sendall(b"version\r\n")
    data = b""
    while not data.endswith(b"\r\n"):
        chunk = sock.recv(4096)
        if not chunk:
            raise RuntimeError("server closed")
        data += chunk
    return data


def load(sock, items, key_bytes, value_bytes, batch=1000):
    value = b"v" * value_bytes
    for start in range(0, items, batch):
        lines = []
        for i in range(start, min(start + batch, items)):
            key = b"k%0*d" % (key_bytes - 1, i)
            lines.append(b"set %s 0 0 %d noreply\r\n%s\r\n" % (key, value_bytes, value))
        sock.sendall(b"".join(lines))
        if start // batch % 100 == 99:
            round_trip(sock)  # keep the server's input bounded
    round_trip(sock)


def measure(name, argv, port, items, key_bytes, value_bytes):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        sock = connect(port)
        round_trip(sock)
        time.sleep(0.5)
        before = rss_kib(proc.pid)
        t0 = time.time()
        load(sock, items, key_bytes, value_bytes)
        loaded = time.time() - t0
        time.sleep(0.5)
        after = rss_kib(proc.pid)
        sock.sendall(b"stats\r\n")
        stats = b""
        while not stats.endswith(b"END\r\n"):
            stats += sock.recv(65536)
        curr = [l for l in stats.split(b"\r\n") if l.startswith(b"STAT curr_items ")]
        stored = int(curr[0].split()[2]) if curr else -1
        per_item = (after - before) * 1024 / items
        print(f"{name:10} RSS idle {before:8d} KiB, loaded {after:8d} KiB, {stored} items stored "
              f"({loaded:.1f} s): {per_item:.1f} bytes/item")
        return per_item, stored
    finally:
        proc.terminate()
        proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ringlet", default="build/release/ringlet")
    p.add_argument("--memcached", default="/usr/bin/memcached")
    p.add_argument("--items", type=int, default=1_000_000)
    p.add_argument("--key-bytes", type=int, default=32)
    p.add_argument("--value-bytes", type=int, default=100)
    p.add_argument("--memory", type=int, default=1024, help="MB for both (-m, --memory)")
    p.add_argument("--threads", type=int, default=1, help="threads for both (-t, --threads)")
    p.add_argument("--backend", default="auto")
    a = p.parse_args()
    results = {}
    port = free_port()
    results["ringlet"] = measure(
        "ringlet", [a.ringlet, "cache", "--backend", a.backend, "--listen", f"127.0.0.1:{port}", "--memory",
                    str(a.memory), "--threads", str(a.threads), "--log-level", "warn"],
        port, a.items, a.key_bytes, a.value_bytes)
    port = free_port()
    user = ["-u", "memcache"] if os.geteuid() == 0 else []
    results["memcached"] = measure(
        "memcached", [a.memcached, "-m", str(a.memory), "-p", str(port), "-l", "127.0.0.1", "-t", str(a.threads),
                      "-U", "0"] + user,
        port, a.items, a.key_bytes, a.value_bytes)
    r, m = results["ringlet"][0], results["memcached"][0]
    print(f"ringlet / memcached: {r / m:.3f} ({a.items} items, {a.key_bytes}-byte keys, {a.value_bytes}-byte values, "
          f"-m {a.memory}, {a.threads} thread(s))")
    if results["ringlet"][1] != a.items or results["memcached"][1] != a.items:
        print("warning: not every item was stored (raise --memory)", file=sys.stderr)


if __name__ == "__main__":
    main()
