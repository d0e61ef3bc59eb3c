"""ringlet.run(main, workers=N) (ringlet/_workers.py): N processes, one loop each, sharing a port through
SO_REUSEPORT; crashed workers replaced; SIGTERM stops all; a worker that cannot start fails run().

Each test runs the supervisor as a script in its own process (it forks and blocks signals, which a test runner's
process should not) on io_uring and on epoll. Verdicts wait for states, never for time: "every worker accepts"
means connecting until each worker's pid has answered, "stopped" means the supervisor has exited and every worker
pid is gone; the wall-clock bounds only catch hangs."""

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time

import pytest

HANG_S = 30.0

WORKER_SCRIPT = textwrap.dedent("""
    import asyncio, os, signal, sys
    import ringlet

    port, workers, mode = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

    class Answer(asyncio.Protocol):
        # Every connection is answered with "<pid> <slot>\\n" and closed.
        def connection_made(self, transport):
            transport.write(f"{os.getpid()} {ringlet.worker_index()}\\n".encode())
            transport.close()

    async def main():
        if mode == "crash-at-start":
            raise RuntimeError("this worker cannot start")
        if mode == "ignores-sigterm":
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
        loop = asyncio.get_running_loop()
        server = await loop.create_server(Answer, "127.0.0.1", port, reuse_port=True)
        async with server:
            await server.serve_forever()

    # "serve" passes a coroutine (each worker runs its own copy of it), the other modes the coroutine function.
    target = main() if mode == "serve" else main
    ringlet.run(target, workers=workers, backend=os.environ["RINGLET_TEST_BACKEND"], grace=float(sys.argv[4]))
    print("supervisor returned", flush=True)
""")


class Supervisor:
    """The supervisor script on a port held open (bound with SO_REUSEPORT, not listening) so that no other
    process takes it between tests; the workers join the port's reuse-port group."""

    def __init__(self, tmp_path, backend, workers, mode="serve", grace=5.0):
        self.holder = socket.socket()
        self.holder.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.holder.bind(("127.0.0.1", 0))
        self.port = self.holder.getsockname()[1]
        script = tmp_path / "supervisor.py"
        script.write_text(WORKER_SCRIPT)
        env = dict(os.environ, RINGLET_TEST_BACKEND=backend)
        self.proc = subprocess.Popen([sys.executable, str(script), str(self.port), str(workers), mode, str(grace)],
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def answer(self):
        """(pid, slot) of the worker that accepted one new connection, or None while none listens."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=HANG_S) as s:
                reply = s.makefile().readline().split()
        except (ConnectionRefusedError, ConnectionResetError):
            return None  # nobody listens yet, or the connection was queued on a worker that has just died
        return (int(reply[0]), int(reply[1])) if len(reply) == 2 else None

    def workers(self, count, exclude=()):
        """Connects until `count` different worker pids (none in `exclude`) have answered; {pid: slot}."""
        seen = {}
        deadline = time.monotonic() + HANG_S
        while len(seen) < count:
            assert time.monotonic() < deadline, f"only {seen} answered"
            assert self.proc.poll() is None, self.proc.communicate()
            got = self.answer()
            if got is None:
                time.sleep(0.01)
            elif got[0] not in exclude:
                seen[got[0]] = got[1]
        return seen

    def finish(self, sig=None):
        if sig is not None:
            self.proc.send_signal(sig)
        try:
            out, err = self.proc.communicate(timeout=HANG_S)
        finally:
            self.proc.kill()
            self.holder.close()
        return self.proc.returncode, out, err


def parent_of(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[1])


def assert_gone(pids):
    deadline = time.monotonic() + HANG_S
    for pid in pids:
        while os.path.exists(f"/proc/{pid}"):
            assert time.monotonic() < deadline, f"worker {pid} outlived its supervisor"
            time.sleep(0.01)


def test_every_worker_accepts_on_the_shared_port_and_sigterm_stops_all(tmp_path, backend):
    sup = Supervisor(tmp_path, backend, workers=3)
    seen = sup.workers(3)
    assert sorted(seen.values()) == [0, 1, 2]
    assert all(parent_of(pid) == sup.proc.pid for pid in seen)
    status, out, err = sup.finish(signal.SIGTERM)
    assert status == 0, err
    assert "supervisor returned" in out
    assert_gone(seen)


def test_a_killed_worker_is_replaced_in_its_slot(tmp_path, backend):
    sup = Supervisor(tmp_path, backend, workers=2)
    seen = sup.workers(2)
    victim = next(iter(seen))
    os.kill(victim, signal.SIGKILL)
    now = sup.workers(2, exclude={victim})
    assert sorted(now.values()) == [0, 1]
    assert set(now) & set(seen) == set(seen) - {victim}
    status, _, err = sup.finish(signal.SIGINT)
    assert status == 0, err
    assert f"worker {seen[victim]} (pid {victim}) was killed by SIGKILL" in err
    assert_gone(set(seen) | set(now))


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path, backend):
    sup = Supervisor(tmp_path, backend, workers=2, mode="ignores-sigterm", grace=0.2)
    seen = sup.workers(2)
    status, out, err = sup.finish(signal.SIGTERM)
    assert status == 0, err
    assert "supervisor returned" in out
    assert_gone(seen)


def test_a_worker_that_crashes_at_start_makes_run_fail_instead_of_restarting_for_ever(tmp_path, backend):
    sup = Supervisor(tmp_path, backend, workers=2, mode="crash-at-start")
    status, out, err = sup.finish()
    assert status != 0
    assert "supervisor returned" not in out
    assert "RuntimeError: this worker cannot start" in err
    assert "ringlet.WorkerError" in err or "WorkerError: worker" in err
    assert "times in a row" in err


def test_run_rejects_a_worker_count_that_is_not_positive_and_a_call_off_the_main_thread():
    import threading

    import ringlet

    async def main():
        pass

    with pytest.raises(ValueError):
        ringlet.run(main, workers=0)
    raised = []
    thread = threading.Thread(target=lambda: raised.append(pytest.raises(RuntimeError, ringlet.run, main, workers=1)))
    thread.start()
    thread.join()
    assert "main thread" in str(raised[0].value)
