"""ringlet.run(main, workers=N): one ringlet loop per process, N processes, every core busy.

Python's GIL keeps one loop on one core, so the way to use more cores is more processes. The supervisor (the
process that called run) forks N workers; each runs ``main`` on its own ringlet loop and opens its own listening
sockets with ``reuse_port=True``, so the kernel spreads new connections over the workers (SO_REUSEPORT: one
accept queue per worker, no thundering herd, no descriptor passing). The supervisor runs no loop and no user
code: it waits for signals, restarts crashed workers and stops them all.

The rules it keeps:

- **Signals are waited for, not handled.** The supervisor blocks SIGCHLD, SIGTERM and SIGINT and takes them with
  sigtimedwait(2), so there is no handler to race with a fork and no window in which a signal is lost. (A blocked
  SIGCHLD is queued even though its default action is to be ignored: the kernel never discards a blocked signal.)
- **A crashed worker is replaced, with a back-off.** Any exit other than a clean return of ``main`` is a crash;
  the worker's slot is forked again after RESTART_DELAY_S, doubled per crash in a row up to RESTART_DELAY_MAX_S.
  A worker that crashes STARTUP_CRASH_LIMIT times in a row, each time before it had run STARTUP_S seconds, is a
  program that cannot start: run() stops the others and raises WorkerError instead of forking for ever.
- **Stopping is SIGTERM, then SIGKILL.** On SIGTERM or SIGINT the supervisor sends SIGTERM to every worker (which
  cancels its ``main`` task, so ``finally`` blocks and ``async with`` exits run), waits up to ``grace`` seconds and
  SIGKILLs what is left, reaps every worker and returns. A worker also gets SIGTERM if the supervisor dies without
  stopping it (PR_SET_PDEATHSIG), so no worker outlives it.
- **The main thread supervises.** Blocking signals is per thread; a SIGTERM sent to the process would otherwise be
  delivered to another thread that does not block it, and kill the supervisor there.
- **Workers ignore SIGINT.** Ctrl-C in a terminal reaches the whole process group; the supervisor alone reacts,
  and stops the workers the one way above.
"""

import asyncio
import ctypes
import os
import signal
import sys
import threading
import time
import traceback

__all__ = ("run_workers", "worker_index", "WorkerError")

RESTART_DELAY_S = 0.1       # the first restart of a crashed worker; doubled per crash in a row
RESTART_DELAY_MAX_S = 5.0
STARTUP_S = 10.0            # a worker that crashes sooner than this after its fork crashed "at start"
STARTUP_CRASH_LIMIT = 5     # ... and this many such crashes in a row mean it cannot start
_WAKE_S = 1.0               # longest sigtimedwait; a pending restart shortens it

_PR_SET_PDEATHSIG = 1
_SUPERVISOR_SIGNALS = {signal.SIGCHLD, signal.SIGTERM, signal.SIGINT}

_worker_index = None


class WorkerError(RuntimeError):
    """A worker could not start: it crashed STARTUP_CRASH_LIMIT times in a row soon after it was forked."""


def worker_index():
    """In a worker started by ``ringlet.run(main, workers=N)``: its slot, 0 to N-1 (a replacement keeps the slot
    of the worker it replaces). Elsewhere: None."""
    return _worker_index


def _describe(status):
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        return f"was killed by {signal.Signals(sig).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class _Slot:
    def __init__(self, index):
        self.index = index
        self.pid = None
        self.started = 0.0
        self.startup_crashes = 0  # crashes in a row, each sooner than STARTUP_S after its fork
        self.restart_at = None    # monotonic time of the next fork, while waiting out a back-off
        self.done = False         # main returned: not restarted


def _worker_main(main, index, cpu, run_one):
    """The child's side of a fork: never returns."""
    global _worker_index
    status = 1
    try:
        _worker_index = index
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() == 1:  # the supervisor died before prctl: nobody would stop this worker
            os._exit(1)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
        coro = main() if callable(main) else main
        run_one(_stop_on_sigterm(coro))
        status = 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(status)


async def _stop_on_sigterm(coro):
    # SIGTERM cancels the worker's main task: its finally blocks run, and a cancelled main is a clean stop.
    task = asyncio.ensure_future(coro)
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        if task.cancelled():
            return None
        raise
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


class _Supervisor:
    def __init__(self, main, workers, run_one, grace, pin):
        self.main, self.run_one, self.grace = main, run_one, grace
        self.slots = [_Slot(i) for i in range(workers)]
        cpus = sorted(os.sched_getaffinity(0)) if pin else None
        self.cpus = [cpus[i % len(cpus)] for i in range(workers)] if pin else [None] * workers
        self.by_pid = {}

    def fork(self, slot):
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _worker_main(self.main, slot.index, self.cpus[slot.index], self.run_one)
        slot.pid, slot.started, slot.restart_at = pid, time.monotonic(), None
        self.by_pid[pid] = slot

    def exited(self):
        """(pid, status) of every worker that has exited, reaped; other children of the process are left alone."""
        found = []
        for pid in list(self.by_pid):
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                found.append((pid, status))
        return found

    def reap(self):
        """Reaps every exited worker and plans its restart; returns the WorkerError of a worker that cannot
        start, or None."""
        failure = None
        for pid, status in self.exited():
            slot = self.by_pid.pop(pid)
            slot.pid = None
            if os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                slot.done = True
                continue
            now = time.monotonic()
            slot.startup_crashes = slot.startup_crashes + 1 if now - slot.started < STARTUP_S else 0
            print(f"ringlet: worker {slot.index} (pid {pid}) {_describe(status)}", file=sys.stderr, flush=True)
            if slot.startup_crashes >= STARTUP_CRASH_LIMIT:
                # Every worker exited() reaped must still leave by_pid (a second waitpid of it would fail), so
                # the loop goes on and the first failure is returned at the end.
                if failure is None:
                    failure = WorkerError(f"worker {slot.index} {_describe(status)}, {slot.startup_crashes} times "
                                          f"in a row within {STARTUP_S:g} s of starting: it cannot start; stopped "
                                          f"all workers")
                continue
            backoff = RESTART_DELAY_S * 2 ** max(slot.startup_crashes - 1, 0)
            slot.restart_at = now + min(backoff, RESTART_DELAY_MAX_S)
        return failure

    def restart_due(self):
        now = time.monotonic()
        for slot in self.slots:
            if slot.restart_at is not None and slot.restart_at <= now:
                self.fork(slot)

    def next_wake(self):
        pending = [s.restart_at for s in self.slots if s.restart_at is not None]
        if not pending:
            return _WAKE_S
        return max(0.0, min(min(pending) - time.monotonic(), _WAKE_S))

    def stop_all(self):
        for pid in self.by_pid:
            _kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while self.by_pid:
            for pid, _ in self.exited():
                del self.by_pid[pid]
            left = deadline - time.monotonic()
            if not self.by_pid or left <= 0:
                break
            # A second SIGTERM or SIGINT changes nothing: the grace period runs on.
            signal.sigtimedwait(_SUPERVISOR_SIGNALS, min(0.05, left))
        for pid in self.by_pid:
            _kill(pid, signal.SIGKILL)
        for pid in self.by_pid:
            os.waitpid(pid, 0)
        self.by_pid.clear()

    def run(self):
        for slot in self.slots:
            self.fork(slot)
        failure = None
        while failure is None and not all(s.done for s in self.slots):
            info = signal.sigtimedwait(_SUPERVISOR_SIGNALS, self.next_wake())
            if info is not None and info.si_signo in (signal.SIGTERM, signal.SIGINT):
                break
            failure = self.reap()
            if failure is None:
                self.restart_due()
        self.stop_all()
        if failure is not None:
            raise failure


def _kill(pid, sig):
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def run_workers(main, workers, run_one, *, grace=5.0, pin=False):
    """Runs ``main`` in ``workers`` processes until SIGTERM or SIGINT (then returns None), until every worker's
    ``main`` has returned (returns None), or until a worker cannot start (raises WorkerError). ``run_one(coro)``
    runs a coroutine on a new loop in a worker."""
    if not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive int, not {workers!r}")
    if not (callable(main) or asyncio.iscoroutine(main)):
        raise TypeError(f"main must be a coroutine or a coroutine function, not {main!r}")
    if threading.current_thread() is not threading.main_thread():
        # Signals blocked in this thread only would still kill the process through another thread.
        raise RuntimeError("ringlet.run(main, workers=N) must be called from the main thread")
    old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SUPERVISOR_SIGNALS)
    try:
        _Supervisor(main, workers, run_one, grace, pin).run()
    finally:
        # Take what is still pending (SIGCHLDs of the stop, a second SIGTERM) before unblocking: a SIGTERM
        # left pending would kill the caller once unblocked.
        while signal.sigtimedwait(_SUPERVISOR_SIGNALS, 0) is not None:
            pass
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        if asyncio.iscoroutine(main):
            main.close()  # each worker ran its own copy; the supervisor's was never started
