"""ringlet.Loop: asyncio's event loop with ringlet's C++ core underneath.

The class joins two halves (python/src/loop_core.hpp explains the split):

- ``_core.LoopCore`` (C++) runs every turn: the ready queue, the timers on ringlet's timer wheel, readiness
  watchers on ringlet's backend (io_uring or epoll), and the iteration ``_run_once``. Its methods shadow the
  Python ones of the same name.
- asyncio's Unix selector loop supplies what runs once per call of a high-level API, unchanged, so its behaviour
  is asyncio's own: run_forever/run_until_complete, futures and tasks, exception handler, debug checks,
  executors, signals, sock_* calls, transports and servers (which reach readiness through ``_add_reader`` and
  friends, i.e. through the C++ core).

Only the selector is replaced: ``_WatchMap`` answers the few questions asyncio asks its selector outside the
iteration (repr of transports, close) from the core's watcher table.
"""

import asyncio
import collections.abc
import os
import selectors
import socket
import sys
import weakref
from asyncio import base_events, format_helpers, unix_events
from asyncio.log import logger

from . import _core, _workers
from ._transport import SocketTransport

__all__ = ("Loop", "new_event_loop", "run", "EventLoopPolicy", "install")


# ---- helpers the C++ core calls on cold paths (error reports, repr, debug mode) ----------------------------

def _handle_repr(handle):
    info = [handle.__class__.__name__]
    if handle._cancelled:
        info.append("cancelled")
    if isinstance(handle, _core.TimerHandle):
        info.insert(1, f"when={handle._when}")
    if handle._callback is not None:
        info.append(format_helpers._format_callback_source(handle._callback, handle._args))
    if handle._source_traceback:
        frame = handle._source_traceback[-1]
        info.append(f"created at {frame[0]}:{frame[1]}")
    return "<{}>".format(" ".join(info))


def _callback_failed(loop, handle, callback, args, exc):
    cb = format_helpers._format_callback_source(callback, args)
    context = {"message": f"Exception in callback {cb}", "exception": exc, "handle": handle}
    if handle._source_traceback:
        context["source_traceback"] = handle._source_traceback
    loop.call_exception_handler(context)


def _debug_check(loop, callback, method, threadsafe):
    if not threadsafe:
        loop._check_thread()
    loop._check_callback(callback, method)


def _extract_stack():
    # Called from C, so frame 1 is the Python code that called call_soon/call_later.
    return format_helpers.extract_stack(sys._getframe(1))


def _slow_callback(loop, handle, seconds):
    logger.warning("Executing %s took %.3f seconds", base_events._format_handle(handle), seconds)


_core._set_buffered_protocol(asyncio.BufferedProtocol)
_core._set_helpers(handle_repr=_handle_repr, callback_failed=_callback_failed, debug_check=_debug_check,
                   extract_stack=_extract_stack, slow_callback=_slow_callback, future_type=asyncio.Future)


class _WatchMap(collections.abc.Mapping):
    """The selector's get_map(): fd -> SelectorKey, read from the core's watcher table."""

    def __init__(self, loop):
        self._loop = loop

    def __len__(self):
        return len(self._loop._watched_fds())

    def __iter__(self):
        return iter(self._loop._watched_fds())

    def __getitem__(self, fileobj):
        info = self._loop._watch_info(fileobj)
        if info is None:
            raise KeyError(f"{fileobj!r} is not registered")
        mask, reader, writer = info
        fd = selectors._fileobj_to_fd(fileobj)
        return selectors.SelectorKey(fileobj, fd, mask, (reader, writer))


class _Selector:
    """Stands where asyncio keeps its selector; the core does the selecting."""

    def __init__(self, loop):
        self._map = _WatchMap(loop)

    def get_map(self):
        return self._map

    def get_key(self, fileobj):
        return self._map[fileobj]

    def select(self, timeout=None):
        raise RuntimeError("ringlet.Loop selects in its C++ core")

    def close(self):
        self._map = {}


_live_loops = weakref.WeakSet()


def _after_fork_in_child():
    for loop in list(_live_loops):
        loop._core_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


class Loop(_core.LoopCore, unix_events.SelectorEventLoop):
    """An asyncio event loop on ringlet's runtime. ``backend`` is 'auto' (io_uring when the kernel allows it,
    else epoll; the environment variable RINGLET_BACKEND overrides it), 'uring' or 'epoll'."""

    def __init__(self, *, backend="auto"):
        self._core_setup(backend)
        unix_events.SelectorEventLoop.__init__(self, _Selector(self))
        _live_loops.add(self)

    @property
    def backend(self):
        """'io_uring' or 'epoll': the kernel interface this loop runs on."""
        return self._backend_name()

    def set_debug(self, enabled):
        super().set_debug(enabled)
        self._core_set_debug(enabled)

    def close(self):
        if self.is_running():
            raise RuntimeError("Cannot close a running event loop")
        if self.is_closed():
            return
        try:
            super().close()
        finally:
            self._core_close()

    def _make_socket_transport(self, sock, protocol, waiter=None, *, extra=None, server=None):
        # Plain TCP and Unix stream sockets; SSL and pipes keep asyncio's transports.
        return SocketTransport(self, sock, protocol, waiter, extra, server)

    async def getaddrinfo(self, host, port, *, family=0, type=0, proto=0, flags=0):
        # Numeric hosts and ports are answered here, without the executor thread (getaddrinfo(3) with
        # AI_NUMERICHOST never touches the network); names go to the executor as in asyncio.
        try:
            return socket.getaddrinfo(host, port, family, type, proto,
                                      flags | socket.AI_NUMERICHOST | socket.AI_NUMERICSERV)
        except (socket.gaierror, UnicodeError):
            pass
        return await super().getaddrinfo(host, port, family=family, type=type, proto=proto, flags=flags)

    async def getnameinfo(self, sockaddr, flags=0):
        numeric = socket.NI_NUMERICHOST | socket.NI_NUMERICSERV
        if flags & numeric == numeric:
            return socket.getnameinfo(sockaddr, flags)
        return await super().getnameinfo(sockaddr, flags)

    def __repr__(self):
        return (f"<{self.__class__.__name__} running={self.is_running()} "
                f"closed={self.is_closed()} debug={self.get_debug()}>")


def new_event_loop(*, backend="auto"):
    """A new ringlet loop (not set as the current loop)."""
    return Loop(backend=backend)


def run(main, *, debug=None, backend="auto", workers=None, grace=5.0, pin=False):
    """asyncio.run(main) on a new ringlet loop: runs the coroutine, then cancels what is left, shuts down async
    generators and the default executor, and closes the loop.

    With ``workers=N`` it runs ``main`` (a coroutine function, or a coroutine) in N forked processes, one ringlet
    loop each, whose servers share their ports with ``reuse_port=True``; crashed workers are restarted and
    SIGTERM or SIGINT stops them all (SIGTERM, then SIGKILL after ``grace`` seconds). ``pin=True`` pins worker i
    to the i-th CPU this process may use. It returns None once stopped or once every worker's ``main`` has
    returned, and raises ringlet.WorkerError when a worker keeps crashing at start (ringlet/_workers.py)."""
    if workers is not None:
        return _workers.run_workers(main, workers, lambda coro: _run_one(coro, debug, backend), grace=grace,
                                    pin=pin)
    return _run_one(main, debug, backend)


def _run_one(main, debug, backend):
    if sys.version_info >= (3, 12):
        return asyncio.run(main, debug=debug, loop_factory=lambda: Loop(backend=backend))
    with asyncio.Runner(debug=debug, loop_factory=lambda: Loop(backend=backend)) as runner:
        return runner.run(main)


class EventLoopPolicy(asyncio.DefaultEventLoopPolicy):
    """A policy whose new_event_loop() makes ringlet loops (for code and test plugins that pick loops by policy)."""

    def _loop_factory(self):
        return Loop()


def install():
    """Make ringlet's policy asyncio's policy: asyncio.new_event_loop() and asyncio.run() then use ringlet."""
    asyncio.set_event_loop_policy(EventLoopPolicy())
