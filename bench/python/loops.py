"""The three event loops the python matrix compares, made the same way for every benchmark script here.

  ringlet   ringlet.Loop (this repository's binding; --ringlet-path points at the build's python/ directory)
  uvloop    uvloop.Loop from Debian's python3-uvloop (0.17)
  asyncio   the standard library's selector loop (epoll)

Every script runs on Debian's /usr/bin/python3, the interpreter Debian's uvloop, httptools and aiohttp are built
for, so all three loops run the same interpreter, the same asyncio, the same protocol code.
"""

import argparse
import asyncio
import os
import sys

NAMES = ("ringlet", "uvloop", "asyncio")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ringlet-path", help="directory holding the ringlet package (build/release/python)")
    parser.add_argument("--build-dir", help="the build directory: the ringlet package is in its python/")
    parser.add_argument("--backend", default="auto", help="ringlet's backend: auto, uring or epoll")


def factory(name: str, args: argparse.Namespace):
    """A function making a new loop of the named kind."""
    if name == "ringlet":
        path = args.ringlet_path or (os.path.join(args.build_dir, "python") if args.build_dir else None)
        if path:
            sys.path.insert(0, path)
        import ringlet
        return lambda: ringlet.Loop(backend=args.backend)
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop
    if name == "asyncio":
        return asyncio.SelectorEventLoop
    raise SystemExit(f"unknown loop {name!r}: choose from {', '.join(NAMES)}")


def serve(name: str, args: argparse.Namespace, main) -> None:
    """Runs main() on a new loop of the named kind until SIGTERM or SIGINT, then exits 0 (the harness's rule)."""
    import signal

    loop = factory(name, args)()
    asyncio.set_event_loop(loop)
    task = loop.create_task(main())
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, task.cancel)
    try:
        loop.run_until_complete(task)
    except asyncio.CancelledError:
        pass
    finally:
        loop.close()
