"""CPython's own asyncio tests (Debian's libpython3.11-testsuite) run against ringlet.Loop, on both backends.

The loop-agnostic parts of the suite are mixins or test cases that ask a hook for their loop (create_event_loop,
new_loop, the policy); each class below plugs ringlet in there, the way CPython plugs in its selector and proactor
loops. Whatever stdlib asyncio passes here must pass on ringlet, or be listed in KNOWN_DIFFERENCES with the
reason. The suite is skipped when it is not installed (scripts/install-deps.sh installs it for Debian's 3.11)."""

import asyncio
import unittest

import pytest

import ringlet

# Debian's 3.11 has it from libpython3.11-testsuite; interpreters built from source (pyenv) carry their own.
test_asyncio = pytest.importorskip("test.test_asyncio", reason="CPython's test suite is not installed")
from test.test_asyncio import test_buffered_proto, test_events, test_sendfile  # noqa: E402
from test.test_asyncio import test_server, test_sock_lowlevel, test_ssl, test_sslproto  # noqa: E402
from test.test_asyncio import test_streams, test_subprocess  # noqa: E402
from test.test_asyncio import test_taskgroups, test_timeouts  # noqa: E402
from test.test_asyncio import utils as test_utils  # noqa: E402

# test name -> why ringlet differs from stdlib asyncio there (empty: no known difference).
KNOWN_DIFFERENCES = {}


def _skip_known(cls):
    for name, why in KNOWN_DIFFERENCES.items():
        if hasattr(cls, name):
            setattr(cls, name, unittest.skip(why)(getattr(cls, name)))
    return cls


def _classes_for(backend, with_ssl):
    def make():
        return ringlet.Loop(backend=backend)

    class Events(test_events.UnixEventLoopTestsMixin, test_utils.TestCase):
        def create_event_loop(self):
            return make()

    class SockLowlevel(test_sock_lowlevel.BaseSockTestsMixin, test_utils.TestCase):
        def create_event_loop(self):
            return make()

    class Sendfile(test_sendfile.SendfileTestsBase, test_utils.TestCase):
        def create_event_loop(self):
            return make()

    class BufferedProto(test_buffered_proto.BaseTestBufferedProtocol, unittest.TestCase):
        def new_loop(self):
            return make()

    class StartServer(test_server.BaseStartServer, unittest.TestCase):
        def new_loop(self):
            return make()

    class StartTLS(test_sslproto.BaseStartTLS, unittest.TestCase):
        def new_loop(self):
            return make()

    class SSL(test_ssl.TestSSL):
        # asyncio's SSL over ringlet's readiness, with start_tls over ringlet's stream transport.
        def setUp(self):
            super().setUp()
            self.loop.close()
            self.loop = make()
            self.set_event_loop(self.loop)

        def new_loop(self):
            return make()

    class Streams(test_streams.StreamTests):
        def setUp(self):
            super().setUp()
            self.loop.close()
            self.loop = make()
            self.set_event_loop(self.loop)

    class Policy(ringlet.EventLoopPolicy):
        def _loop_factory(self):
            return make()

    class WithPolicy:
        # Tests that take their loop from the policy (asyncio.Runner, IsolatedAsyncioTestCase, watchers).
        @classmethod
        def setUpClass(cls):
            cls._old_policy = asyncio.get_event_loop_policy()
            asyncio.set_event_loop_policy(Policy())
            super().setUpClass()

        @classmethod
        def tearDownClass(cls):
            super().tearDownClass()
            asyncio.set_event_loop_policy(cls._old_policy)

    class Subprocess(WithPolicy, test_subprocess.SubprocessThreadedWatcherTests):
        pass

    class TaskGroups(WithPolicy, test_taskgroups.TestTaskGroup):
        pass

    class Timeouts(WithPolicy, test_timeouts.TimeoutTests):
        pass

    classes = [Events, SockLowlevel, Sendfile, BufferedProto, StartServer, StartTLS, Streams, Subprocess,
               TaskGroups, Timeouts]
    if with_ssl:
        # test_ssl takes ~25 s per backend and tests asyncio's SSL layer more than the loop; once is enough (the
        # readiness and transport paths under it run on both backends in the other classes).
        classes.append(SSL)
    for cls in classes:
        cls.__name__ = cls.__qualname__ = f"{cls.__name__}_{backend}"
        _skip_known(cls)
    return classes


def _available(backend):
    try:
        loop = ringlet.Loop(backend=backend)
    except OSError:
        return False
    try:
        loop.backend
        return True
    except OSError:
        return False
    finally:
        loop.close()


_backends = [b for b in ("uring", "epoll") if _available(b)]  # a kernel without io_uring runs the epoll half only


def _install_classes():
    # A function, so no loop variable stays a module attribute: pytest would collect the last class a second time
    # under that name.
    for backend in _backends:
        for cls in _classes_for(backend, with_ssl=backend == _backends[0]):
            globals()[cls.__name__] = cls


_install_classes()
