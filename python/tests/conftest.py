"""Shared fixtures: every test that takes `loop` runs once per backend (io_uring and epoll), like the C++ tests'
RINGLET_BOTH_BACKENDS, and ends by proving a clean shutdown: nothing queued, no timer armed, no watcher but
asyncio's own self-pipe, no kernel operation in flight."""

import asyncio

import pytest

import ringlet

BACKENDS = ("uring", "epoll")


def _make_loop(backend):
    try:
        loop = ringlet.Loop(backend=backend)
        loop.backend  # creates the backend now: io_uring may be refused by the kernel or a seccomp filter
    except OSError as e:
        pytest.skip(f"backend {backend} unavailable here: {e}")
    return loop


def assert_clean(loop):
    """What a loop holds once all work has finished: only asyncio's self-pipe reader."""
    stats = loop._core_stats()
    assert stats["ready"] == 0, stats
    assert stats["timers"] == 0, stats
    assert stats["watchers"] == 1, stats  # the self-pipe (signals, asyncio's _write_to_self)
    assert stats["operations"] <= 1, stats  # the self-pipe's poll


@pytest.fixture(params=BACKENDS)
def backend(request):
    _make_loop(request.param).close()  # skips when the kernel refuses this backend
    return request.param


@pytest.fixture
def loop(backend):
    loop = _make_loop(backend)
    asyncio.set_event_loop(loop)
    yield loop
    try:
        if not loop.is_closed():
            # Let closed transports finish (their connection_lost runs a turn later), then check.
            loop.run_until_complete(asyncio.sleep(0))
            loop.run_until_complete(loop.shutdown_asyncgens())
            assert_clean(loop)
    finally:
        asyncio.set_event_loop(None)
        loop.close()
