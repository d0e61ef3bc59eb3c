// transport.hpp — the hot paths of ringlet's stream transport (transport.cpp explains the split with
// ringlet/_transport.py). Core-local.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ringlet::py {

// Registers WriteChain and the transport functions in the module.
int transport_ready(PyObject* module);

// ---- receiving ahead (io_uring) ----
// On io_uring the loop core receives for a transport instead of waiting for readiness: a recv operation whose
// completion carries the bytes, so _read_ready has nothing left to ask the kernel. The bytes wait on the transport
// (attributes _ringlet_rx and _ringlet_rx_end) until its _read_ready hands them to the protocol, so a transport
// paused meanwhile loses nothing.

// Bytes per receive ahead: what one completion can carry. A completion that fills it is followed by one recv(2)
// for the rest, so big messages cost no more calls than before.
constexpr unsigned kReceiveAheadSize = 16 * 1024;

// The transport whose _read_ready `callback` is, when the core may receive ahead for it (its protocol is a plain
// Protocol: a BufferedProtocol's buffer is only valid right after get_buffer()); else nullptr. Borrowed.
PyObject* receive_ahead_transport(PyObject* callback);
// 1 when the transport holds bytes or an end received ahead, 0 when not, -1 on error.
int transport_has_received(PyObject* transport);
// Stores one completed receive on the transport: `result` bytes of `data`, 0 for the end of the stream, or
// -errno. Returns -1 with a Python exception on failure.
int transport_store_received(PyObject* transport, const char* data, int result);

}  // namespace ringlet::py
