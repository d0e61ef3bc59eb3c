"""Loop-core benchmarks of the python matrix (bench/compare, measure "program"): ringlet, uvloop and stdlib asyncio
in one process on Debian's /usr/bin/python3, alternating loop by loop within each repetition, every loop new.

  call_soon  N callbacks through call_soon: 1,000 chains, each callback scheduling the next of its chain until N
             have run (the ready queue stays 1,000 deep, as in a busy server). ns of process CPU per callback.
  timers     N timers with call_later at random delays in 0–10 s (the same delays for every loop), then every one
             cancelled, then one loop turn (asyncio's heap drops cancelled timers in a turn, so that is counted).
             ns of process CPU per timer (set + cancel).

CPU time is time.process_time() around the measured part; garbage collection is disabled inside it. Output: per
benchmark and loop the median (min–max) over --reps, and the ratio of uvloop's median to each loop's (above 1 is
faster than uvloop).

    /usr/bin/python3 bench/python/loop_bench.py --ringlet-path build/release/python --reps 5 [--calls N] [--timers N]
"""

import argparse
import asyncio
import gc
import random
import statistics
import time

import loops

CHAINS = 1000


def bench_call_soon(loop, n):
    left = [n]
    done = loop.create_future()

    def step():
        left[0] -= 1
        if left[0] > 0:
            loop.call_soon(step)
        elif not done.done():
            done.set_result(None)

    def start():
        for _ in range(min(CHAINS, n)):
            loop.call_soon(step)

    started = time.process_time()
    loop.call_soon(start)
    loop.run_until_complete(done)
    return (time.process_time() - started) / n


def bench_timers(loop, delays):
    noop = lambda: None  # noqa: E731
    started = time.process_time()
    handles = [loop.call_later(d, noop) for d in delays]
    for h in handles:
        h.cancel()
    loop.run_until_complete(asyncio.sleep(0))
    spent = time.process_time() - started
    del handles
    return spent / len(delays)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--calls", type=int, default=1_000_000)
    parser.add_argument("--timers", type=int, default=1_000_000)
    parser.add_argument("--loops", default=",".join(loops.NAMES))
    loops.add_arguments(parser)
    args = parser.parse_args()
    names = args.loops.split(",")
    factories = {name: loops.factory(name, args) for name in names}
    delays = [random.Random(42).uniform(0.0, 10.0) for _ in range(args.timers)]
    benches = {"call_soon": (lambda loop: bench_call_soon(loop, args.calls), f"{args.calls:,} callbacks"),
               "timers": (lambda loop: bench_timers(loop, delays), f"{args.timers:,} call_later + cancel")}
    results = {b: {name: [] for name in names} for b in benches}
    for _ in range(args.reps):
        for bench, (run, _) in benches.items():
            for name in names:
                loop = factories[name]()
                try:
                    gc.collect()
                    gc.disable()
                    results[bench][name].append(run(loop) * 1e9)
                finally:
                    gc.enable()
                    loop.close()
    print(f"{args.reps} repetitions, loops alternating; ns of process CPU per operation, median (min–max); "
          "speed-up = uvloop's median / this loop's")
    for bench, (_, what) in benches.items():
        print(f"\n{bench} ({what}):")
        base = statistics.median(results[bench]["uvloop"]) if "uvloop" in names else None
        for name in names:
            xs = results[bench][name]
            med = statistics.median(xs)
            ratio = f"  speed-up vs uvloop {base / med:.2f}x" if base else ""
            print(f"  {name:8} {med:8.1f} ns ({min(xs):.1f}–{max(xs):.1f}){ratio}")


if __name__ == "__main__":
    main()
