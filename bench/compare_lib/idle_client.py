#!/usr/bin/python3
"""The client of the idle-memory measurement: opens N connections to an echo server and holds them idle.

  idle_client.py --port P --connections N [--batch B] [--hold SEC]

Each connection echoes one byte once, so it is known to be accepted and to have been served: the
state of a kept-alive connection waiting for its next request. The bytes go out in batches of B
connections (default 100) and every batch is answered before the next one opens, so no server
holds more than a batch of read buffers at once; a transient peak would otherwise show up in the
server's "idle" RSS.

When every connection is open it prints one JSON line {"connections", "seconds"} and then the
line "holding", and keeps the connections open until it is killed (bench/compare samples the
server's memory meanwhile, then kills it) or --hold seconds pass (default 120: it stops by itself).
A connection refused, reset, closed or echoing the wrong byte ends it with status 1 and the reason
on stderr: a partly opened set would make bytes per connection meaningless.

It raises its soft RLIMIT_NOFILE to the hard limit (bench/compare already did, for the server too).
Standard library only; bench/compare starts it with its own interpreter, pinned to the client CPUs.
"""
from __future__ import annotations

import argparse
import json
import resource
import socket
import sys
import time

IO_TIMEOUT_S = 10.0  # per connect and per echo: only a hung server takes this long


def open_idle(port: int, count: int, batch: int) -> list[socket.socket]:
    """count connections to 127.0.0.1:port, each having echoed one byte; raises OSError or RuntimeError."""
    conns: list[socket.socket] = []
    try:
        for start in range(0, count, batch):
            group = [socket.create_connection(("127.0.0.1", port), timeout=IO_TIMEOUT_S)
                     for _ in range(min(batch, count - start))]
            conns.extend(group)
            for s in group:
                s.sendall(b"x")
            for i, s in enumerate(group):
                reply = s.recv(1)
                if reply != b"x":
                    raise RuntimeError(f"connection {start + i} answered {reply!r} instead of echoing b'x'"
                                       + (" (closed by the server)" if not reply else ""))
    except BaseException:
        for s in conns:
            s.close()
        raise
    return conns


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--connections", type=int, required=True)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--hold", type=float, default=120.0)
    args = p.parse_args(argv)
    if args.connections < 1 or args.batch < 1:
        p.error("--connections and --batch must be positive")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < args.connections + 16:
        print(f"idle_client: {args.connections} connections need more file descriptors than the hard limit "
              f"{hard} (ulimit -Hn)", file=sys.stderr)
        return 2
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    started = time.monotonic()
    try:
        conns = open_idle(args.port, args.connections, args.batch)
    except (OSError, RuntimeError) as e:
        print(f"idle_client: while opening idle connections: {e}", file=sys.stderr)
        return 1
    print(json.dumps({"connections": len(conns), "seconds": round(time.monotonic() - started, 3)}))
    print("holding", flush=True)
    time.sleep(args.hold)
    for s in conns:
        s.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
