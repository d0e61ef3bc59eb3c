"""ringlet's stream transport for plain TCP and Unix sockets.

It is asyncio's selector socket transport with the per-message paths replaced by C++ (python/src/transport.cpp):
``_read_ready`` (one recv, or on io_uring the bytes the loop received ahead; bytes for a Protocol, straight into
get_buffer()'s buffer for a BufferedProtocol),
``write``/``writelines`` (send at once while nothing is queued — on io_uring with the loop's next wait, not a
system call each — else queue references to the caller's bytes)
and ``_write_ready`` (one sendmsg over the queued pieces, no copy of a partly sent tail). Everything done once per
connection — set-up, close, abort, connection_lost, server bookkeeping, sendfile, start_tls — is asyncio's own.
"""

from asyncio import constants, selector_events
from asyncio.log import logger

from . import _core


class SocketTransport(selector_events._SelectorSocketTransport):
    # What the C functions read or write on every message lives in slots, which they access at fixed offsets instead
    # of looking the names up in the instance dictionary (python/src/transport.cpp, "the transport's state, in
    # slots"). asyncio's inherited methods assign them as usual: the slots' descriptors take the assignments.
    __slots__ = ("_conn_lost", "_protocol", "_sock_fd", "_buffer", "_eof", "_empty_waiter", "_closing",
                 "_ringlet_rx", "_ringlet_rx_end", "_ringlet_rx_big")

    _read_ready = _core._instancemethod(_core._transport_read_ready)
    _write_ready = _core._instancemethod(_core._transport_write_ready)
    # write, writelines and is_closing are C method descriptors, which _core._set_transport_class (below) installs:
    # calling one makes no bound method object (an instancemethod's call made one per write).

    def __init__(self, loop, sock, protocol, waiter=None, extra=None, server=None):
        # On io_uring the loop receives ahead for the transport (python/src/transport.hpp): bytes, and the end of
        # the stream (0) or an errno, wait here until _read_ready hands them to the protocol.
        self._ringlet_rx = None
        self._ringlet_rx_end = None
        # The last read was big (python/src/transport.hpp, kBigRead): read by readiness into max_size bytes objects.
        self._ringlet_rx_big = False
        super().__init__(loop, sock, protocol, waiter, extra, server)
        self._buffer = _core.WriteChain()
        # asyncio 3.12+ picks its own writer callback per instance; ours is the class attribute above.
        vars(self).pop("_write_ready", None)

    def get_write_buffer_size(self):
        return len(self._buffer)

    def _write_after_lost(self):
        if self._conn_lost >= constants.LOG_THRESHOLD_FOR_CONNLOST_WRITES:
            logger.warning("socket.send() raised exception.")
        self._conn_lost += 1


_core._set_transport_class(SocketTransport)
