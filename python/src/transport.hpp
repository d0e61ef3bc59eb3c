// transport.hpp — the hot paths of ringlet's stream transport (transport.cpp explains the split with
// ringlet/_transport.py). Core-local.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ringlet::py {

// Registers WriteChain and the transport functions in the module.
int transport_ready(PyObject* module);

// ---- receiving ahead (io_uring) ----
// On io_uring the loop core receives for a transport instead of waiting for readiness: a multishot receive into the
// loop's provided buffers (armed once; each completion carries the bytes), so _read_ready has nothing left to ask
// the kernel. The bytes wait on the transport
// (attributes _ringlet_rx and _ringlet_rx_end) until its _read_ready hands them to the protocol, so a transport
// paused meanwhile loses nothing.

// Bytes per receive ahead: the size of the loop's provided buffers, what one completion can carry. A completion that
// fills it is followed by one recv(2) for the rest, so big messages cost no more calls than before.
constexpr unsigned kReceiveAheadSize = 16 * 1024;

// Big messages are not received ahead. A read of at least kBigRead bytes marks the transport (_ringlet_rx_big)
// until a smaller one; while marked, its reader waits for readiness and _read_ready's recv(2) takes the whole
// message at once. A 100 KiB message so costs one copy in user space (scratch buffer to bytes, as on epoll) where
// the receive ahead cost three (16 KiB buffer to bytes; the rest to bytes; both joined), and as many recv(2) calls
// (a full receive ahead is followed by one). Small messages keep the receive ahead.
constexpr Py_ssize_t kBigRead = kReceiveAheadSize;

// The transport whose _read_ready `callback` is, when the core may receive ahead for it (its protocol is a plain
// Protocol: a BufferedProtocol's buffer is only valid right after get_buffer()); else nullptr. Borrowed.
PyObject* receive_ahead_transport(PyObject* callback);
// Whether the transport's last read was big (kBigRead): then it reads by readiness, not ahead.
bool transport_reads_big(PyObject* transport);
// 1 when the transport holds bytes or an end received ahead, 0 when not, -1 on error.
int transport_has_received(PyObject* transport);
// Stores one completed receive on the transport: `result` bytes of `data`, 0 for the end of the stream, or
// -errno. Returns -1 with a Python exception on failure.
int transport_store_received(PyObject* transport, const char* data, int result);

}  // namespace ringlet::py
