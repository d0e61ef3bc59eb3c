"""The loop core (python/src/loop_core.cpp, handle.cpp): ready queue, timers, thread-safe wake-ups, errors,
debug mode, run/stop/close, and the asyncio entry points (run, new_event_loop, policy)."""

import asyncio
import contextvars
import gc
import logging
import os
import signal
import sys
import threading
import time
import weakref

import pytest

import ringlet
from conftest import assert_clean

WATCHDOG = 10.0  # seconds: only a real hang gets near it


def run_with_watchdog(loop, coro):
    return loop.run_until_complete(asyncio.wait_for(coro, WATCHDOG))


def test_loop_is_an_asyncio_event_loop(loop):
    assert isinstance(loop, asyncio.AbstractEventLoop)
    assert loop.backend in ("io_uring", "epoll")


def test_call_soon_runs_callbacks_in_order_with_their_arguments(loop):
    out = []
    for i in range(5):
        loop.call_soon(out.append, i)
    loop.call_soon(lambda *a: out.append(a), "x", "y")
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == [0, 1, 2, 3, 4, ("x", "y")]


def test_a_callback_queued_by_a_callback_runs_on_the_next_turn(loop):
    out = []

    def first():
        out.append("first")
        loop.call_soon(out.append, "queued by first")

    loop.call_soon(first)
    loop.call_soon(out.append, "second")
    loop._run_once()
    assert out == ["first", "second"]
    loop._run_once()
    assert out == ["first", "second", "queued by first"]


def test_callbacks_run_in_the_context_they_were_given(loop):
    var = contextvars.ContextVar("var", default="outer")
    ctx = contextvars.copy_context()
    ctx.run(var.set, "inner")
    seen = []
    loop.call_soon(lambda: seen.append(var.get()), context=ctx)
    loop.call_soon(lambda: seen.append(var.get()))
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert seen == ["inner", "outer"]


def test_cancelled_handle_never_runs(loop):
    out = []
    h = loop.call_soon(out.append, 1)
    assert isinstance(h, ringlet.Handle) and not h.cancelled()
    h.cancel()
    assert h.cancelled()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == []


def test_call_later_fires_at_or_after_when_and_when_is_exact(loop):
    seen = []
    start = loop.time()
    handles = []
    for delay in (0.03, 0.01, 0.02):
        h = loop.call_later(delay, lambda d=delay: seen.append((d, loop.time())))
        handles.append((delay, h))
    for delay, h in handles:
        assert isinstance(h, ringlet.TimerHandle)
        assert start + delay <= h.when() <= loop.time() + delay
    when = loop.time() + 0.015
    h = loop.call_at(when, lambda: seen.append(("at", loop.time())))
    assert h.when() == when  # the exact float, not a rounded tick
    run_with_watchdog(loop, asyncio.sleep(0.05))
    assert [d for d, _ in seen] == [0.01, "at", 0.02, 0.03]
    whens = {0.01: handles[1][1].when(), 0.02: handles[2][1].when(), 0.03: handles[0][1].when(), "at": when}
    for d, fired_at in seen:
        assert fired_at >= whens[d]  # asyncio's rule: due when loop.time() >= when


def test_timers_with_close_or_equal_deadlines_fire_in_when_order_then_arming_order(loop):
    out = []
    base = loop.time() + 0.01
    # Inside one microsecond (one wheel tick): still in `when` order.
    loop.call_at(base + 3e-7, out.append, "c")
    loop.call_at(base + 1e-7, out.append, "a")
    loop.call_at(base + 2e-7, out.append, "b")
    for name in ("d1", "d2", "d3"):
        loop.call_at(base + 1e-3, out.append, name)
    run_with_watchdog(loop, asyncio.sleep(0.03))
    assert out == ["a", "b", "c", "d1", "d2", "d3"]


def test_timer_in_the_past_fires_on_the_next_turn(loop):
    out = []
    loop.call_at(loop.time() - 5, out.append, "past")
    loop.call_later(-1, out.append, "negative")
    loop._run_once()
    assert out == ["past", "negative"]


def test_cancelled_timer_leaves_the_wheel_at_once(loop):
    out = []
    h = loop.call_later(3600, out.append, "never")
    assert loop._core_stats()["timers"] == 1
    h.cancel()
    assert h.cancelled() and loop._core_stats()["timers"] == 0
    h.cancel()  # idempotent
    loop.call_later(0.001, loop.stop)
    loop.run_forever()
    assert out == []


def test_timer_handles_compare_by_when(loop):
    a = loop.call_at(loop.time() + 100, print)
    b = loop.call_at(loop.time() + 200, print)
    assert a < b and b > a and a <= a and a == a and a != b
    a.cancel()
    b.cancel()


def test_call_later_rejects_none(loop):
    with pytest.raises(TypeError):
        loop.call_later(None, print)
    with pytest.raises(TypeError):
        loop.call_at(None, print)


def test_sleep_zero_and_long_sleeps_keep_asyncio_semantics(loop):
    async def main():
        t0 = loop.time()
        await asyncio.sleep(0)
        await asyncio.sleep(0.02)
        return loop.time() - t0

    assert run_with_watchdog(loop, main()) >= 0.02


def test_call_soon_threadsafe_wakes_a_loop_blocked_in_the_kernel(loop):
    # No timer is armed, so the loop can only leave its wait through the wake-up; the thread waits until the loop
    # is running before it calls.
    started = threading.Event()
    done = []

    def other_thread():
        started.wait()
        time.sleep(0.05)  # the loop is (almost surely) asleep now; correctness does not depend on it
        loop.call_soon_threadsafe(done.append, threading.get_ident())
        loop.call_soon_threadsafe(loop.stop)

    t = threading.Thread(target=other_thread)
    t.start()
    loop.call_soon(started.set)
    watchdog = loop.call_later(WATCHDOG, loop.stop)
    loop.run_forever()
    t.join()
    watchdog.cancel()
    assert done == [t.ident]


def test_many_threads_calling_threadsafe_lose_nothing(loop):
    n_threads, per_thread = 4, 250
    got = []

    async def main():
        fut = loop.create_future()

        def add(x):
            got.append(x)
            if len(got) == n_threads * per_thread:
                fut.set_result(None)

        def producer(k):
            for i in range(per_thread):
                loop.call_soon_threadsafe(add, (k, i))

        threads = [threading.Thread(target=producer, args=(k,)) for k in range(n_threads)]
        for t in threads:
            t.start()
        await fut
        for t in threads:
            t.join()

    run_with_watchdog(loop, main())
    assert sorted(got) == [(k, i) for k in range(n_threads) for i in range(per_thread)]
    for k in range(n_threads):  # each thread's calls in its order
        assert [i for kk, i in got if kk == k] == list(range(per_thread))


def test_a_loop_created_in_one_thread_runs_in_another(loop):
    # Runs once here first (the backend is created on this thread), then in a worker thread: io_uring is
    # SINGLE_ISSUER, so the core moves to a new backend, keeping its watchers.
    loop.run_until_complete(asyncio.sleep(0))
    result = []

    def worker():
        asyncio.set_event_loop(loop)
        result.append(loop.run_until_complete(asyncio.sleep(0.01, "ran")))

    t = threading.Thread(target=worker)
    t.start()
    t.join(WATCHDOG)
    assert result == ["ran"]
    # And back on this thread, with the self-pipe still watched (signals still work).
    assert loop.run_until_complete(asyncio.sleep(0, "back")) == "back"


def test_exception_in_callback_goes_to_the_exception_handler(loop):
    contexts = []
    loop.set_exception_handler(lambda lp, ctx: contexts.append(ctx))

    def boom():
        raise ValueError("boom")

    h = loop.call_soon(boom)
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert len(contexts) == 1
    ctx = contexts[0]
    assert isinstance(ctx["exception"], ValueError)
    assert ctx["handle"] is h
    assert ctx["message"].startswith("Exception in callback ")
    assert "boom" in ctx["message"]


def test_default_exception_handler_logs_and_the_loop_goes_on(loop, caplog):
    out = []
    loop.call_soon(lambda: 1 / 0)
    loop.call_soon(out.append, "after")
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.ERROR, logger="asyncio"):
        loop.run_forever()
    assert out == ["after"]
    assert "ZeroDivisionError" in caplog.text


@pytest.mark.parametrize("exc", [KeyboardInterrupt, SystemExit])
def test_keyboard_interrupt_and_system_exit_leave_the_loop(loop, exc):
    out = []

    def raiser():
        raise exc()

    loop.call_soon(raiser)
    loop.call_soon(out.append, "left for the next run")
    with pytest.raises(exc):
        loop.run_forever()
    assert not loop.is_running()
    loop.call_soon(loop.stop)
    loop.run_forever()
    assert out == ["left for the next run"]


def test_sigint_during_a_wait_raises_keyboard_interrupt(loop):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signals reach only the main thread")
    loop.call_later(0.01, os.kill, os.getpid(), signal.SIGINT)
    watchdog = loop.call_later(WATCHDOG, loop.stop)
    with pytest.raises(KeyboardInterrupt):
        loop.run_forever()
    watchdog.cancel()


def test_run_until_complete_stop_and_state(loop):
    assert not loop.is_running() and not loop.is_closed()

    async def main():
        assert loop.is_running()
        assert asyncio.get_running_loop() is loop
        return 42

    assert loop.run_until_complete(main()) == 42
    assert not loop.is_running()
    # stop() before run_forever: the loop runs one turn and returns.
    out = []
    loop.stop()
    loop.call_soon(out.append, 1)
    loop.run_forever()
    assert out == [1]


def test_closed_loop_refuses_new_work(backend):
    loop = ringlet.Loop(backend=backend)
    loop.close()
    assert loop.is_closed()
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_soon(print)
    with pytest.raises(RuntimeError, match="closed"):
        loop.call_later(1, print)
    with pytest.raises(RuntimeError):
        loop.run_forever()
    loop.close()  # idempotent


def test_close_releases_pending_handles_and_timers(backend):
    loop = ringlet.Loop(backend=backend)

    class Payload:
        pass

    p = Payload()
    ref = weakref.ref(p)
    loop.call_soon(print, p)
    loop.call_later(3600, print, p)
    del p
    loop.close()
    gc.collect()
    assert ref() is None


def test_futures_and_tasks_are_asyncios_own(loop):
    async def child():
        await asyncio.sleep(0)
        return "child"

    async def main():
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 7)
        task = loop.create_task(child())
        assert isinstance(task, asyncio.Task)
        return await fut, await task

    assert run_with_watchdog(loop, main()) == (7, "child")


def test_gather_of_many_tasks_and_cancellation(loop):
    async def sleeper(i):
        await asyncio.sleep(0.001 * (i % 5))
        return i

    async def forever():
        await asyncio.sleep(3600)

    async def main():
        results = await asyncio.gather(*(sleeper(i) for i in range(200)))
        t = asyncio.ensure_future(forever())
        await asyncio.sleep(0)
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        return results

    assert run_with_watchdog(loop, main()) == list(range(200))


def test_timeouts_use_loop_timers(loop):
    async def main():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.sleep(3600), 0.01)
        if sys.version_info >= (3, 11):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.01):
                    await asyncio.sleep(3600)

    run_with_watchdog(loop, main())


def test_debug_mode_reports_slow_callbacks_and_records_sources(loop, caplog):
    loop.set_debug(True)
    assert loop.get_debug()
    loop.slow_callback_duration = 0.0
    h = loop.call_soon(lambda: None)
    assert h._source_traceback  # where it was created
    loop.call_soon(loop.stop)
    with caplog.at_level(logging.WARNING, logger="asyncio"):
        loop.run_forever()
    assert "Executing" in caplog.text
    loop.set_debug(False)


def test_debug_mode_rejects_coroutines_and_other_threads(loop):
    loop.set_debug(True)

    async def coro():
        pass

    c = coro()
    with pytest.raises(TypeError):
        loop.call_soon(c)
    c.close()
    errors = []

    def other():
        try:
            loop.call_soon(print)
        except RuntimeError as e:
            errors.append(e)

    loop.run_until_complete(asyncio.to_thread(other))
    assert len(errors) == 1 and "thread" in str(errors[0])
    loop.set_debug(False)


def test_run_in_executor_and_shutdown_default_executor(loop):
    async def main():
        r = await loop.run_in_executor(None, sum, [1, 2, 3])
        await loop.shutdown_default_executor()
        return r

    assert run_with_watchdog(loop, main()) == 6


def test_shutdown_asyncgens_finalizes_generators(loop):
    finalized = []

    async def agen():
        try:
            yield 1
            yield 2
        finally:
            finalized.append(True)

    async def main():
        g = agen()
        await g.__anext__()
        return g

    g = loop.run_until_complete(main())
    loop.run_until_complete(loop.shutdown_asyncgens())
    assert finalized == [True]
    del g


def test_getaddrinfo_answers_numeric_hosts_without_a_thread(loop):
    async def main():
        infos = await loop.getaddrinfo("127.0.0.1", 80, type=0)
        infos6 = await loop.getaddrinfo("::1", "443")
        names = await loop.getnameinfo(("127.0.0.1", 80), 1 | 2)  # NI_NUMERICHOST | NI_NUMERICSERV
        return infos, infos6, names

    infos, infos6, names = run_with_watchdog(loop, main())
    assert infos and all(i[4] == ("127.0.0.1", 80) for i in infos)
    assert infos6 and infos6[0][4][:2] == ("::1", 443)
    assert names == ("127.0.0.1", "80")
    assert loop._default_executor is None  # no thread was started


def test_getaddrinfo_resolves_names_in_the_executor(loop):
    infos = run_with_watchdog(loop, loop.getaddrinfo("localhost", 80))
    assert infos


def test_ringlet_run_and_new_event_loop(backend):
    async def main():
        return type(asyncio.get_running_loop())

    assert ringlet.run(main(), backend=backend) is ringlet.Loop
    loop = ringlet.new_event_loop()
    assert isinstance(loop, ringlet.Loop)
    loop.close()


def test_ringlet_run_debug_flag(backend):
    async def main():
        return asyncio.get_running_loop().get_debug()

    assert ringlet.run(main(), debug=True, backend=backend) is True


def test_install_makes_asyncio_use_ringlet():
    old = asyncio.get_event_loop_policy()
    try:
        ringlet.install()
        assert isinstance(asyncio.get_event_loop_policy(), ringlet.EventLoopPolicy)

        async def main():
            return type(asyncio.get_running_loop())

        assert asyncio.run(main()) is ringlet.Loop
        loop = asyncio.new_event_loop()
        assert isinstance(loop, ringlet.Loop)
        loop.close()
    finally:
        asyncio.set_event_loop_policy(old)


def test_handles_and_loops_are_collected(backend):
    # Handles form cycles with bound methods of objects that keep them; the GC must see through the C types.
    loop = ringlet.Loop(backend=backend)

    class Owner:
        def tick(self):
            pass

    o = Owner()
    o.timer = loop.call_later(3600, o.tick)
    o.soon = loop.call_soon(o.tick)
    ref = weakref.ref(o)
    del o
    loop.close()
    loop_ref = weakref.ref(loop)
    del loop
    gc.collect()
    assert ref() is None and loop_ref() is None


def test_clean_shutdown_after_work(loop):
    async def main():
        for _ in range(10):
            loop.call_later(0.001, lambda: None)
        await asyncio.sleep(0.01)

    run_with_watchdog(loop, main())
    loop.run_until_complete(asyncio.sleep(0))
    assert_clean(loop)


def test_set_default_executor(loop):
    import concurrent.futures

    with concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="mine") as ex:
        loop.set_default_executor(ex)
        name = run_with_watchdog(loop, loop.run_in_executor(None, lambda: threading.current_thread().name))
    assert name.startswith("mine")


def test_a_forked_child_gets_its_own_backend_and_leaves_the_parents_alone(loop):
    import socket

    a, b = socket.socketpair()
    a.setblocking(False)
    got = []

    async def wait_for_data():
        while not got:
            await asyncio.sleep(0.001)

    try:
        # The parent watches `a` across the fork, armed in its backend.
        loop.add_reader(a, lambda: got.append(a.recv(100)))
        run_with_watchdog(loop, asyncio.sleep(0))
        pid = os.fork()
        if pid == 0:  # the child: remove the inherited watcher and run the inherited loop, then exit
            code = 1
            try:
                loop.remove_reader(a)  # on the parent's epoll set this would delete the parent's registration
                if loop.run_until_complete(asyncio.sleep(0.01, "child ran")) == "child ran":
                    code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        b.send(b"after fork")
        run_with_watchdog(loop, wait_for_data())
        loop.remove_reader(a)
    finally:
        a.close()
        b.close()
    assert got == [b"after fork"]


def test_a_finalizer_may_cancel_a_timer_while_an_unreachable_loop_is_collected(backend):
    loop = ringlet.Loop(backend=backend)

    class Holder:
        def __del__(self):
            self.timer.cancel()  # runs during collection, possibly after the timer was cleared

    h = Holder()
    h.timer = loop.call_later(3600, print, h)
    h.loop = loop  # a cycle: holder -> loop -> timer -> holder
    loop_ref = weakref.ref(loop)
    del h, loop
    gc.collect()
    assert loop_ref() is None
