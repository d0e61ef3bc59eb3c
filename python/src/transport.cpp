// transport.cpp — the hot half of ringlet's stream transport (ringlet/_transport.py holds the other half).
// Core-local: called on the loop's thread with the GIL held.
//
// ringlet._transport.SocketTransport derives from asyncio's own selector socket transport, so everything that
// happens once per connection (set-up, close, abort, connection_lost, server attach/detach, sendfile, start_tls)
// is asyncio's code. The per-message paths are replaced by the functions here:
//
//  - _read_ready: one recv(2). A Protocol gets the bytes received into a loop-wide scratch buffer (copied once
//    into a bytes object of the exact size, instead of allocating max_size and shrinking it: read_into_bytes
//    says why); a BufferedProtocol gets them straight in the buffer its get_buffer() returned (no copy at all).
//  - write / writelines: while nothing is queued, the bytes go on a WriteChain and are sent at once: on io_uring by the
//    loop, as a send operation (sendmsg for several pieces) that rides along in its next wait (start_send: one
//    io_uring_enter for every transport that wrote in the turn, no system call per write), elsewhere with sendmsg(2)
//    right away. Most writes end there. What the kernel did not take waits for writability: _write_ready hands the
//    chain to the kernel with one sendmsg of up to kMaxIov pieces and drops exactly what was sent: a partly sent piece
//    keeps an offset, its tail is never copied.
//
// The WriteChain is the transport's `_buffer`: asyncio's inherited methods only ask it whether it is empty and
// clear it, which it supports.
#include "transport.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <deque>
#include <memory>
#include <tuple>
#include <utility>

#include <structmember.h>

#include "helpers.hpp"
#include "loop_core.hpp"

namespace ringlet::py {
namespace {

// Pieces per sendmsg: enough to drain a burst of small writes in one call, well under IOV_MAX.
constexpr int kMaxIov = 64;
// The receive scratch buffer: asyncio's max_size, so one recv takes as much as asyncio's would.
constexpr Py_ssize_t kScratchSize = 256 * 1024;
// The bytes object a big read receives into (read_big_into_bytes): 100 KiB messages fit, and it stays under
// glibc's mmap threshold (128 KiB by default), so it comes from the heap, not from fresh pages for every read.
constexpr Py_ssize_t kBigReadBytes = 124 * 1024;

// ---- WriteChain -------------------------------------------------------------------------------------------------

struct Piece {
  PyObject* owner;  // a bytes object: immutable, so holding a reference is as good as a copy
  Py_ssize_t offset;
};

struct SendOp;

struct WriteChainObject {
  PyObject_HEAD
  std::deque<Piece>* pieces;
  Py_ssize_t size;  // bytes not yet sent
  SendOp* send;     // allocated on the first send through the loop (io_uring)
  bool sending;     // `send` is in flight: its pieces are the chain's first ones, unless cleared meanwhile
  Py_ssize_t in_flight;  // bytes `send` carries
  std::uint64_t clears;  // how many times the chain was cleared: a send's completion for an older chain is stale
};

// A sendmsg on io_uring for the chain's first pieces (write_impl explains when). It holds its own references to
// what it sends, the chain and the transport, so clearing the chain (abort) or dropping the transport frees
// nothing the kernel may still read; all are released on its completion.
struct SendOp : CoreOp {
  IoHandle io_handle;
  msghdr header{};
  iovec iov[kMaxIov];
  PyObject* owners[kMaxIov];
  int count = 0;
  PyObject* transport = nullptr;
  WriteChainObject* chain = nullptr;
  std::uint64_t clears = 0;  // the chain's `clears` when this send started
};

PyTypeObject WriteChainType{PyVarObject_HEAD_INIT(nullptr, 0)};

void chain_clear(WriteChainObject* c) noexcept {
  if (c->pieces == nullptr) return;
  ++c->clears;
  std::deque<Piece> pieces;
  pieces.swap(*c->pieces);
  c->size = 0;
  for (Piece& p : pieces) Py_DECREF(p.owner);
}

// Appends data[offset:], taking a reference to bytes and copying any other (mutable) buffer.
bool chain_append(WriteChainObject* c, PyObject* data, Py_ssize_t offset) {
  PyObject* owner;
  if (PyBytes_CheckExact(data)) {
    owner = Py_NewRef(data);
  } else {
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0) return false;
    owner = PyBytes_FromStringAndSize(static_cast<const char*>(view.buf) + offset, view.len - offset);
    PyBuffer_Release(&view);
    if (owner == nullptr) return false;
    offset = 0;
  }
  Py_ssize_t len = PyBytes_GET_SIZE(owner) - offset;
  if (len <= 0) {
    Py_DECREF(owner);
    return true;
  }
  c->pieces->push_back(Piece{owner, offset});
  c->size += len;
  return true;
}

// Points iov at the chain's first pieces (at most kMaxIov); returns how many.
int chain_iov(const WriteChainObject* c, iovec* iov) noexcept {
  int n = 0;
  for (const Piece& p : *c->pieces) {
    if (n == kMaxIov) break;
    iov[n].iov_base = PyBytes_AS_STRING(p.owner) + p.offset;
    iov[n].iov_len = static_cast<std::size_t>(PyBytes_GET_SIZE(p.owner) - p.offset);
    ++n;
  }
  return n;
}

// Drops the first `sent` bytes; a piece sent in part keeps its tail in place (an offset, no copy).
void chain_drop(WriteChainObject* c, Py_ssize_t sent) noexcept {
  Py_ssize_t left = sent;
  while (left > 0) {
    Piece& p = c->pieces->front();
    Py_ssize_t avail = PyBytes_GET_SIZE(p.owner) - p.offset;
    if (left < avail) {
      p.offset += left;
      break;
    }
    left -= avail;
    Py_DECREF(p.owner);
    c->pieces->pop_front();
  }
  c->size -= sent;
}

// One sendmsg of up to kMaxIov pieces; one piece (a big write sent at once, write_impl) goes with send(2), which
// spares the kernel copying in a msghdr and importing an iovec. Returns bytes sent, or -errno.
Py_ssize_t chain_send(WriteChainObject* c, int fd) noexcept {
  iovec iov[kMaxIov];
  msghdr msg{};
  msg.msg_iov = iov;
  msg.msg_iovlen = static_cast<std::size_t>(chain_iov(c, iov));
  ssize_t sent;
  do {
    sent = msg.msg_iovlen == 1 ? ::send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL | MSG_DONTWAIT)
                               : ::sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
  } while (sent < 0 && errno == EINTR);
  if (sent < 0) return -errno;
  chain_drop(c, sent);
  return sent;
}

PyObject* chain_new(PyTypeObject* type, PyObject*, PyObject*) {
  auto* c = reinterpret_cast<WriteChainObject*>(type->tp_alloc(type, 0));
  if (c == nullptr) return nullptr;
  c->pieces = new (std::nothrow) std::deque<Piece>();
  c->size = 0;
  c->send = nullptr;
  c->sending = false;
  c->in_flight = 0;
  c->clears = 0;
  if (c->pieces == nullptr) {
    Py_DECREF(c);
    return PyErr_NoMemory();
  }
  return reinterpret_cast<PyObject*>(c);
}

void chain_dealloc(PyObject* self) {
  auto* c = reinterpret_cast<WriteChainObject*>(self);
  chain_clear(c);
  delete c->pieces;
  delete c->send;  // not in flight: a send in flight holds a reference to the chain
  Py_TYPE(self)->tp_free(self);
}

Py_ssize_t chain_len(PyObject* self) { return reinterpret_cast<WriteChainObject*>(self)->size; }

PyObject* chain_py_clear(PyObject* self, PyObject*) {
  chain_clear(reinterpret_cast<WriteChainObject*>(self));
  Py_RETURN_NONE;
}

PyObject* chain_py_append(PyObject* self, PyObject* data) {
  if (!chain_append(reinterpret_cast<WriteChainObject*>(self), data, 0)) return nullptr;
  Py_RETURN_NONE;
}

PyMethodDef chain_methods[] = {
    {"clear", chain_py_clear, METH_NOARGS, "Drop everything not yet sent."},
    {"append", chain_py_append, METH_O, "Queue a bytes-like object (bytes by reference, others copied)."},
    {nullptr, nullptr, 0, nullptr},
};

PySequenceMethods chain_as_sequence = {chain_len};

// ---- names ------------------------------------------------------------------------------------------------------

struct Names {
  PyObject *fatal_error, *on_eof, *data_received, *get_buffer, *buffer_updated, *add_writer, *remove_writer,
      *maybe_pause, *maybe_resume, *call_connection_lost, *write_after_lost, *max_size, *set_result, *set_exception;
};
Names names;
PyObject* g_buffered_protocol = nullptr;  // asyncio.BufferedProtocol
PyObject* g_read_ready_fn = nullptr;      // _core._transport_read_ready, which SocketTransport._read_ready binds
PyObject* g_write_ready_fn = nullptr;     // _core._transport_write_ready, SocketTransport._write_ready's
char* g_scratch = nullptr;
PyObject* g_big_spare = nullptr;  // a kBigReadBytes bytes object no one else references (read_big_into_bytes)

// ---- the transport's state, in slots ------------------------------------------------------------------------------

// The attributes the per-message paths read and write are slots of SocketTransport (ringlet/_transport.py's
// __slots__; _loop, _protocol_paused and _high_water are already slots of asyncio's _FlowControlMixin). asyncio's
// inherited Python code assigns them through the slots' member descriptors as it would assign instance attributes,
// and the functions here read and write the same object pointers at the slots' offsets, found once when the class
// is registered (_set_transport_class): no dictionary lookup per access, where a PyObject_GetAttr each was ~17 per
// echoed message (issue 13). A slot never assigned is NULL, which reads as the AttributeError getattr would raise.
struct Field {
  const char* text;
  PyObject* name = nullptr;
  Py_ssize_t offset = 0;
};

struct Fields {
  Field conn_lost{"_conn_lost"}, protocol{"_protocol"}, sock_fd{"_sock_fd"}, buffer{"_buffer"}, eof{"_eof"},
      empty_waiter{"_empty_waiter"}, loop{"_loop"}, closing{"_closing"}, protocol_paused{"_protocol_paused"},
      high_water{"_high_water"}, rx{"_ringlet_rx"}, rx_end{"_ringlet_rx_end"}, rx_big{"_ringlet_rx_big"};

  // Every field, for set_transport_class to find its slot: a field left out would keep offset 0 and read the
  // object's reference count as a pointer, hence the size check.
  std::array<Field*, 13> all() noexcept {
    return {&conn_lost, &protocol, &sock_fd, &buffer, &eof, &empty_waiter, &loop, &closing, &protocol_paused,
            &high_water, &rx, &rx_end, &rx_big};
  }
};
static_assert(sizeof(Fields) == std::tuple_size_v<decltype(std::declval<Fields>().all())> * sizeof(Field),
              "Fields::all() must list every field");
Fields fields;
PyTypeObject* g_transport_type = nullptr;  // SocketTransport

PyObject*& field_slot(PyObject* self, const Field& f) noexcept {
  return *reinterpret_cast<PyObject**>(reinterpret_cast<char*>(self) + f.offset);
}

// self.<f>: a borrowed reference, or nullptr with AttributeError when the slot was never assigned (or deleted).
PyObject* field_peek(PyObject* self, const Field& f) {
  PyObject* v = field_slot(self, f);
  if (v == nullptr) PyErr_Format(PyExc_AttributeError, "'%.100s' object has no attribute '%U'", Py_TYPE(self)->tp_name, f.name);
  return v;
}

// self.<f> as a new reference: for values used across a Python call, which may assign the slot meanwhile.
PyObject* field_get(PyObject* self, const Field& f) { return Py_XNewRef(field_peek(self, f)); }

// self.<f> = value. The old value is released after the store, as the member descriptor does.
void field_set(PyObject* self, const Field& f, PyObject* value) noexcept {
  Py_XSETREF(field_slot(self, f), Py_NewRef(value));
}

// Whether `self` has the slots' layout: the functions below are bound as SocketTransport's methods, but nothing
// stops a caller from passing another object.
bool is_transport(PyObject* self) noexcept {
  return g_transport_type != nullptr && PyObject_TypeCheck(self, g_transport_type);
}

PyObject* not_a_transport(PyObject* self) {
  return PyErr_Format(PyExc_TypeError, "ringlet transport method called on '%.100s'", Py_TYPE(self)->tp_name);
}

bool install_methods(PyTypeObject* cls);

// _core._set_transport_class(cls): finds each field's slot in cls (a member descriptor of an object slot).
PyObject* set_transport_class(PyObject*, PyObject* cls) {
  if (!PyType_Check(cls)) return PyErr_Format(PyExc_TypeError, "a class is required");
  for (Field* f : fields.all()) {
    if (f->name == nullptr && (f->name = PyUnicode_InternFromString(f->text)) == nullptr) return nullptr;
    PyObject* d = PyObject_GetAttr(cls, f->name);
    if (d == nullptr) return nullptr;
    bool slot = Py_IS_TYPE(d, &PyMemberDescr_Type) &&
                reinterpret_cast<PyMemberDescrObject*>(d)->d_member->type == T_OBJECT_EX;
    if (slot) f->offset = reinterpret_cast<PyMemberDescrObject*>(d)->d_member->offset;
    Py_DECREF(d);
    if (!slot) return PyErr_Format(PyExc_TypeError, "%U is not an object slot of the transport class", f->name);
  }
  if (!install_methods(reinterpret_cast<PyTypeObject*>(cls))) return nullptr;
  Py_INCREF(cls);
  Py_XSETREF(g_transport_type, reinterpret_cast<PyTypeObject*>(cls));
  Py_RETURN_NONE;
}

bool init_names() {
  struct {
    PyObject** slot;
    const char* text;
  } table[] = {
      {&names.fatal_error, "_fatal_error"}, {&names.on_eof, "_read_ready__on_eof"},
      {&names.data_received, "data_received"}, {&names.get_buffer, "get_buffer"},
      {&names.buffer_updated, "buffer_updated"}, {&names.add_writer, "_add_writer"},
      {&names.remove_writer, "_remove_writer"},
      {&names.maybe_pause, "_maybe_pause_protocol"}, {&names.maybe_resume, "_maybe_resume_protocol"},
      {&names.call_connection_lost, "_call_connection_lost"},
      {&names.write_after_lost, "_write_after_lost"}, {&names.max_size, "max_size"},
      {&names.set_result, "set_result"}, {&names.set_exception, "set_exception"},
  };
  for (auto& e : table) {
    *e.slot = PyUnicode_InternFromString(e.text);
    if (*e.slot == nullptr) return false;
  }
  return true;
}

// ---- small helpers ----------------------------------------------------------------------------------------------

// self.<f> as a truth value; -1 on error.
int attr_true(PyObject* self, const Field& f) {
  PyObject* v = field_peek(self, f);
  return v == nullptr ? -1 : PyObject_IsTrue(v);
}

int attr_fd(PyObject* self) {
  PyObject* v = field_peek(self, fields.sock_fd);
  return v == nullptr ? -1 : static_cast<int>(PyLong_AsLong(v));
}

WriteChainObject* attr_chain(PyObject* self) {
  PyObject* v = field_peek(self, fields.buffer);
  if (v == nullptr) return nullptr;
  if (!Py_IS_TYPE(v, &WriteChainType)) {
    PyErr_SetString(PyExc_TypeError, "ringlet transport: _buffer is not a WriteChain");
    return nullptr;
  }
  return reinterpret_cast<WriteChainObject*>(Py_NewRef(v));  // new reference
}

PyObject* call_method0(PyObject* self, PyObject* name) {
  PyObject* a[] = {self};
  return PyObject_VectorcallMethod(name, a, 1 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

PyObject* call_method1(PyObject* self, PyObject* name, PyObject* arg) {
  PyObject* a[] = {self, arg};
  return PyObject_VectorcallMethod(name, a, 2 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

PyObject* call_method2(PyObject* self, PyObject* name, PyObject* a1, PyObject* a2) {
  PyObject* a[] = {self, a1, a2};
  return PyObject_VectorcallMethod(name, a, 3 | PY_VECTORCALL_ARGUMENTS_OFFSET, nullptr);
}

// isinstance(protocol, asyncio.BufferedProtocol), asked on every read. For a protocol that is not one, isinstance
// also looks up protocol.__class__ (~190 instructions a message); the answer for the last such class is
// remembered while its version tag (which changes with its bases or attributes) stays and its __class__ is
// object's own, so that the instance's type is all isinstance would have looked at.
int is_buffered_protocol(PyObject* protocol) {
  static PyTypeObject* plain_type = nullptr;  // strong: a freed type's address must not match a new one
  static unsigned int plain_tag = 0;
  PyTypeObject* t = Py_TYPE(protocol);
  if (t == plain_type && t->tp_version_tag == plain_tag) return 0;
  int buffered = PyObject_IsInstance(protocol, g_buffered_protocol);
  if (buffered != 0) return buffered;
  static PyObject* class_name = PyUnicode_InternFromString("__class__");
  static PyObject* object_class = class_name != nullptr ? _PyType_Lookup(&PyBaseObject_Type, class_name) : nullptr;
  if (object_class != nullptr && t->tp_getattro == PyObject_GenericGetAttr &&
      _PyType_Lookup(t, class_name) == object_class && t->tp_version_tag != 0) {
    Py_INCREF(t);
    Py_XSETREF(plain_type, t);
    plain_tag = t->tp_version_tag;
  }
  return 0;
}

// The pending exception goes to self._fatal_error(exc, message), as asyncio's transport does in its `except
// BaseException` arms. SystemExit and KeyboardInterrupt stay set and propagate. Returns 0 or -1.
int fatal_from_pending(PyObject* self, const char* message) {
  if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) return -1;
  PyObject* exc = take_raised_exception();
  PyObject* msg = PyUnicode_FromString(message);
  PyObject* r = msg != nullptr ? call_method2(self, names.fatal_error, exc, msg) : nullptr;
  Py_XDECREF(msg);
  Py_XDECREF(exc);
  if (r == nullptr) return -1;
  Py_DECREF(r);
  return 0;
}

// Sets OSError (its errno subclass: ConnectionResetError, BrokenPipeError, ...) for -err.
void set_os_error(int err) {
  errno = err;
  PyErr_SetFromErrno(PyExc_OSError);
}

bool would_block(int err) { return err == EAGAIN || err == EWOULDBLOCK || err == EINTR; }

// ---- reading ----------------------------------------------------------------------------------------------------

PyObject* read_into_protocol_buffer(PyObject* self, PyObject* protocol, int fd) {
  PyObject* minus_one = PyLong_FromLong(-1);
  PyObject* buf = minus_one != nullptr ? call_method1(protocol, names.get_buffer, minus_one) : nullptr;
  Py_XDECREF(minus_one);
  Py_buffer view;
  bool have_view = false;
  if (buf != nullptr) {
    if (PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) == 0) {
      have_view = true;
      if (view.len == 0) PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    }
  }
  if (!have_view || view.len == 0) {
    if (have_view) PyBuffer_Release(&view);
    Py_XDECREF(buf);
    if (fatal_from_pending(self, "Fatal error: protocol.get_buffer() call failed.") < 0) return nullptr;
    Py_RETURN_NONE;
  }
  ssize_t n = ::recv(fd, view.buf, static_cast<std::size_t>(view.len), 0);
  int err = errno;
  PyBuffer_Release(&view);
  Py_DECREF(buf);
  if (n < 0) {
    if (would_block(err)) Py_RETURN_NONE;
    set_os_error(err);
    if (fatal_from_pending(self, "Fatal read error on socket transport") < 0) return nullptr;
    Py_RETURN_NONE;
  }
  if (n == 0) return call_method0(self, names.on_eof);
  PyObject* count = PyLong_FromSsize_t(n);
  PyObject* r = count != nullptr ? call_method1(protocol, names.buffer_updated, count) : nullptr;
  Py_XDECREF(count);
  if (r == nullptr) {
    if (fatal_from_pending(self, "Fatal error: protocol.buffer_updated() call failed.") < 0) return nullptr;
    Py_RETURN_NONE;
  }
  Py_DECREF(r);
  Py_RETURN_NONE;
}

// The transport's max_size (asyncio's 256 KiB unless a subclass changed it), capped at the scratch buffer's size.
Py_ssize_t transport_max_size(PyObject* self) {
  Py_ssize_t max_size = kScratchSize;
  if (PyObject* v = PyObject_GetAttr(self, names.max_size)) {
    max_size = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    if (max_size <= 0 || max_size > kScratchSize) {
      PyErr_Clear();
      max_size = kScratchSize;
    }
  } else {
    PyErr_Clear();
  }
  return max_size;
}

// protocol.data_received(data); a failure goes to _fatal_error, as in asyncio.
PyObject* deliver_bytes(PyObject* self, PyObject* protocol, PyObject* data) {
  PyObject* r = call_method1(protocol, names.data_received, data);
  if (r == nullptr) {
    if (fatal_from_pending(self, "Fatal error: protocol.data_received() call failed.") < 0) return nullptr;
    Py_RETURN_NONE;
  }
  Py_DECREF(r);
  Py_RETURN_NONE;
}

// Keeps _ringlet_rx_big in step with the read just done (transport.hpp, kBigRead). Returns false on error.
bool note_read_size(PyObject* self, Py_ssize_t n) {
  bool big = n >= kBigRead;
  int was_big = attr_true(self, fields.rx_big);
  if (was_big < 0) return false;
  if (big == (was_big != 0)) return true;
  field_set(self, fields.rx_big, big ? Py_True : Py_False);
  return true;
}

PyObject* read_big_into_bytes(PyObject* self, PyObject* protocol, int fd, Py_ssize_t max_size);

// One recv(2) for a Protocol, into the scratch buffer, then copied into a bytes object of the exact size (unless
// its reads are big: read_big_into_bytes).
//
// Why not receive straight into a bytes object of max_size and shrink it, as asyncio does: glibc serves 256 KiB
// with mmap, shrinking it is an mremap, and the shrunk chunk is too small, when freed, to raise glibc's mmap
// threshold, so every read maps, faults in and unmaps fresh pages (asyncio escapes only once some 256 KiB chunk is
// freed unshrunk: a read that returns the end of a stream). Measured on a 100 KiB echo in a VM, where page faults
// are dear: about 1.2 ms of CPU per message for that variant of this function, against 31-33 µs with the copy.
PyObject* read_into_bytes(PyObject* self, PyObject* protocol, int fd) {
  Py_ssize_t max_size = transport_max_size(self);
  int big = attr_true(self, fields.rx_big);
  if (big < 0) return nullptr;
  if (big > 0) return read_big_into_bytes(self, protocol, fd, max_size);
  if (g_scratch == nullptr) {
    g_scratch = static_cast<char*>(PyMem_RawMalloc(kScratchSize));
    if (g_scratch == nullptr) return PyErr_NoMemory();
  }
  ssize_t n = ::recv(fd, g_scratch, static_cast<std::size_t>(max_size), 0);
  if (n < 0) {
    int err = errno;
    if (would_block(err)) Py_RETURN_NONE;
    set_os_error(err);
    if (fatal_from_pending(self, "Fatal read error on socket transport") < 0) return nullptr;
    Py_RETURN_NONE;
  }
  if (n == 0) return call_method0(self, names.on_eof);
  PyObject* data = PyBytes_FromStringAndSize(g_scratch, n);
  if (data == nullptr) return nullptr;
  PyObject* r = note_read_size(self, n) ? deliver_bytes(self, protocol, data) : nullptr;
  Py_DECREF(data);
  return r;
}

// One recv(2) for a Protocol whose reads are big (kBigRead), straight into a bytes object that becomes the
// message: no copy from the scratch buffer (a 100 KiB memcpy per message, ~5% of the server's CPU on 100 KiB echo,
// where asyncio's recv fills its bytes directly). The bytes object holds kBigReadBytes and is shrunk to what came.
//
// The object is reused while no one kept it: when data_received returns and this function holds the only
// reference (an echo's write went out whole, or was copied), nothing else can see it, so it is grown back and
// filled again by the next big read. That spares a malloc and free of 100 KiB per message, and with them glibc's
// trap for heap tops (a free that leaves more than M_TRIM_THRESHOLD at the top gives the pages back with brk and
// the next message faults them in again: docs/design/python.md, "100 KiB and glibc's heap"). A message the
// protocol kept (a queued write, a stream's buffer) stays its own, and the next read takes a fresh object.
PyObject* read_big_into_bytes(PyObject* self, PyObject* protocol, int fd, Py_ssize_t max_size) {
  PyObject* data = g_big_spare;  // taken out while in use: data_received may run another transport's read
  g_big_spare = nullptr;
  if (data == nullptr) {
    data = PyBytes_FromStringAndSize(nullptr, kBigReadBytes);
    if (data == nullptr) return nullptr;
  }
  auto* object = reinterpret_cast<PyBytesObject*>(data);
  ssize_t n = ::recv(fd, object->ob_sval, static_cast<std::size_t>(std::min(max_size, kBigReadBytes)), 0);
  int err = errno;
  PyObject* r;
  if (n < 0) {
    r = Py_NewRef(Py_None);
    if (!would_block(err)) {
      Py_DECREF(r);
      set_os_error(err);
      r = fatal_from_pending(self, "Fatal read error on socket transport") < 0 ? nullptr : Py_NewRef(Py_None);
    }
  } else if (n == 0) {
    r = call_method0(self, names.on_eof);
  } else {
    // Shrunk in place: the allocation keeps its size (the allocator needs none), the object says n bytes, with
    // the terminating NUL every bytes object has, and no cached hash from an earlier message.
    Py_SET_SIZE(data, n);
    object->ob_sval[n] = '\0';
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
#endif
    object->ob_shash = -1;
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif
    r = note_read_size(self, n) ? deliver_bytes(self, protocol, data) : nullptr;
  }
  if (Py_REFCNT(data) == 1 && g_big_spare == nullptr) {
    Py_SET_SIZE(data, kBigReadBytes);
    g_big_spare = data;
  } else {
    Py_DECREF(data);
  }
  return r;
}

// Bytes received ahead, for a BufferedProtocol (the protocol changed after the receive was started: start_tls):
// copied into as many get_buffer() buffers as they need.
PyObject* received_into_protocol_buffer(PyObject* self, PyObject* protocol, PyObject* data) {
  const char* p = PyBytes_AS_STRING(data);
  Py_ssize_t left = PyBytes_GET_SIZE(data);
  while (left > 0) {
    PyObject* hint = PyLong_FromSsize_t(left);
    PyObject* buf = hint != nullptr ? call_method1(protocol, names.get_buffer, hint) : nullptr;
    Py_XDECREF(hint);
    Py_buffer view;
    bool have_view = buf != nullptr && PyObject_GetBuffer(buf, &view, PyBUF_WRITABLE) == 0;
    if (have_view && view.len == 0) PyErr_SetString(PyExc_RuntimeError, "get_buffer() returned an empty buffer");
    if (!have_view || view.len == 0) {
      if (have_view) PyBuffer_Release(&view);
      Py_XDECREF(buf);
      if (fatal_from_pending(self, "Fatal error: protocol.get_buffer() call failed.") < 0) return nullptr;
      Py_RETURN_NONE;
    }
    Py_ssize_t n = std::min(left, view.len);
    std::memcpy(view.buf, p, static_cast<std::size_t>(n));
    PyBuffer_Release(&view);
    Py_DECREF(buf);
    p += n;
    left -= n;
    PyObject* count = PyLong_FromSsize_t(n);
    PyObject* r = count != nullptr ? call_method1(protocol, names.buffer_updated, count) : nullptr;
    Py_XDECREF(count);
    if (r == nullptr) {
      if (fatal_from_pending(self, "Fatal error: protocol.buffer_updated() call failed.") < 0) return nullptr;
      Py_RETURN_NONE;
    }
    Py_DECREF(r);
  }
  Py_RETURN_NONE;
}

// Bytes received ahead, for a Protocol. A receive that filled its buffer may have left more in the socket: one
// recv(2) takes it, so the protocol gets what a readiness-driven read would have given it, in one bytes object
// (each part copied once). Such a transport carries big messages: it is marked (kBigRead), and its next reads
// are by readiness (read_into_bytes), not ahead into the 16 KiB buffer and copied again from there.
PyObject* received_into_bytes(PyObject* self, PyObject* protocol, PyObject* data, int fd) {
  Py_ssize_t head = PyBytes_GET_SIZE(data);
  if (head < static_cast<Py_ssize_t>(kReceiveAheadSize)) return deliver_bytes(self, protocol, data);
  if (g_scratch == nullptr) {
    g_scratch = static_cast<char*>(PyMem_RawMalloc(kScratchSize));
    if (g_scratch == nullptr) return PyErr_NoMemory();
  }
  Py_ssize_t room = transport_max_size(self) - head;
  ssize_t n = room > 0 ? ::recv(fd, g_scratch, static_cast<std::size_t>(room), MSG_DONTWAIT) : 0;
  int err = errno;
  Py_ssize_t tail = std::max<Py_ssize_t>(n, 0);
  PyObject* joined = PyBytes_FromStringAndSize(nullptr, head + tail);
  if (joined == nullptr) return nullptr;
  std::memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(data), static_cast<std::size_t>(head));
  std::memcpy(PyBytes_AS_STRING(joined) + head, g_scratch, static_cast<std::size_t>(tail));
  if (n < 0 && !would_block(err)) {
    // A reset comes after these bytes, and the socket reports it only once: keep it as a received end, for the
    // next _read_ready (an end of the stream needs no keeping: every later read sees it again).
    PyObject* code = PyLong_FromLong(err);
    if (code != nullptr) field_set(self, fields.rx_end, code);
    Py_XDECREF(code);
    if (code == nullptr) {
      Py_DECREF(joined);
      return nullptr;
    }
  }
  PyObject* r = note_read_size(self, head + tail) ? deliver_bytes(self, protocol, joined) : nullptr;
  Py_DECREF(joined);
  return r;
}

// Hands what the core received ahead to the protocol: the bytes, then the end of the stream or an error. Returns
// nullptr with an exception, Py_None when it delivered something, or a borrowed Py_False when nothing waited.
PyObject* deliver_received(PyObject* self, PyObject* protocol, int buffered, int fd) {
  PyObject* data = field_get(self, fields.rx);
  if (data == nullptr) return nullptr;
  PyObject* end = field_get(self, fields.rx_end);
  if (end == nullptr) {
    Py_DECREF(data);
    return nullptr;
  }
  if (data == Py_None && end == Py_None) {
    Py_DECREF(data);
    Py_DECREF(end);
    return Py_False;
  }
  PyObject* r = Py_NewRef(Py_None);
  if (data != Py_None) {
    field_set(self, fields.rx, Py_None);
    Py_DECREF(r);
    r = buffered ? received_into_protocol_buffer(self, protocol, data) : received_into_bytes(self, protocol, data, fd);
  }
  Py_DECREF(data);
  if (r != nullptr && end != Py_None) {
    int lost = attr_true(self, fields.conn_lost);  // data_received may have closed the transport
    if (lost < 0) {
      Py_CLEAR(r);
    } else {
      field_set(self, fields.rx_end, Py_None);
      if (lost == 0) {
        long err = PyLong_AsLong(end);
        Py_DECREF(r);
        if (err == 0) {
          r = call_method0(self, names.on_eof);
        } else {
          set_os_error(static_cast<int>(err));
          r = fatal_from_pending(self, "Fatal read error on socket transport") < 0 ? nullptr : Py_NewRef(Py_None);
        }
      }
    }
  }
  Py_DECREF(end);
  return r;
}

// The reader callback: self._read_ready().
PyObject* transport_read_ready(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) return PyErr_Format(PyExc_TypeError, "_read_ready() takes no arguments");
  PyObject* self = args[0];
  if (!is_transport(self)) return not_a_transport(self);
  int lost = attr_true(self, fields.conn_lost);
  if (lost != 0) {
    if (lost < 0) return nullptr;
    Py_RETURN_NONE;
  }
  int fd = attr_fd(self);
  if (fd < 0) return PyErr_Occurred() ? nullptr : Py_NewRef(Py_None);
  PyObject* protocol = field_get(self, fields.protocol);
  if (protocol == nullptr) return nullptr;
  int buffered = is_buffered_protocol(protocol);
  PyObject* r = buffered < 0 ? nullptr : deliver_received(self, protocol, buffered, fd);
  if (r == Py_False) {  // nothing received ahead: readiness, read now
    r = buffered > 0 ? read_into_protocol_buffer(self, protocol, fd) : read_into_bytes(self, protocol, fd);
  }
  Py_DECREF(protocol);
  return r;
}

// ---- writing ----------------------------------------------------------------------------------------------------

// asyncio's checks before a write; returns 1 to go on, 0 when the write is a no-op, -1 on error.
int check_writable(PyObject* self, PyObject* data, Py_ssize_t& length) {
  if (!PyBytes_Check(data) && !PyByteArray_Check(data) && !PyMemoryView_Check(data)) {
    PyErr_Format(PyExc_TypeError, "data argument must be a bytes-like object, not '%s'", Py_TYPE(data)->tp_name);
    return -1;
  }
  int eof = attr_true(self, fields.eof);
  if (eof != 0) {
    if (eof > 0) PyErr_SetString(PyExc_RuntimeError, "Cannot call write() after write_eof()");
    return -1;
  }
  PyObject* waiter = field_get(self, fields.empty_waiter);
  if (waiter == nullptr) return -1;
  bool sendfile_running = waiter != Py_None;
  Py_DECREF(waiter);
  if (sendfile_running) {
    PyErr_SetString(PyExc_RuntimeError, "unable to write; sendfile is in progress");
    return -1;
  }
  if (PyBytes_Check(data)) {
    length = PyBytes_GET_SIZE(data);
  } else if (PyByteArray_Check(data)) {
    length = PyByteArray_GET_SIZE(data);
  } else {
    length = PyMemoryView_GET_BUFFER(data)->len;  // bytes, not items
  }
  if (length == 0) return 0;
  int lost = attr_true(self, fields.conn_lost);
  if (lost != 0) {
    if (lost < 0) return -1;
    PyObject* r = call_method0(self, names.write_after_lost);  // logs and counts, as asyncio does
    Py_XDECREF(r);
    return r == nullptr ? -1 : 0;
  }
  return 1;
}

bool register_writer(PyObject* self, int fd) {
  PyObject* loop = field_get(self, fields.loop);
  if (loop == nullptr) return false;
  // The class's writer, bound here: asyncio 3.12+ sets the instance's _write_ready to None in close(), and a
  // send the loop finishes after a close may still need the writer (to send the rest, then close).
  PyObject* cb = PyMethod_New(g_write_ready_fn, self);
  PyObject* fd_obj = PyLong_FromLong(fd);
  PyObject* r = nullptr;
  if (cb != nullptr && fd_obj != nullptr) r = call_method2(loop, names.add_writer, fd_obj, cb);
  Py_XDECREF(fd_obj);
  Py_XDECREF(cb);
  Py_DECREF(loop);
  Py_XDECREF(r);
  return r != nullptr;
}

bool unregister_writer(PyObject* self, int fd) {
  PyObject* loop = field_get(self, fields.loop);
  if (loop == nullptr) return false;
  PyObject* fd_obj = PyLong_FromLong(fd);
  PyObject* r = fd_obj != nullptr ? call_method1(loop, names.remove_writer, fd_obj) : nullptr;
  Py_XDECREF(fd_obj);
  Py_DECREF(loop);
  Py_XDECREF(r);
  return r != nullptr;
}

// asyncio's _maybe_pause_protocol, called only when the bytes queued beyond the loop's send in flight are over the
// high-water mark. Those in flight count as sent, as a write that sent at once would have: the send is tried at
// the next wait, and what the socket does not take then comes back here (after_send). So a protocol sees
// pause_writing when asyncio's loop would have paused it, not on every write (with limits of 0, every one). The
// check in C also spares a Python call per write. Returns false on error.
bool maybe_pause(PyObject* self, WriteChainObject* chain) {
  if (chain->size == chain->in_flight) return true;  // the common case, without a lookup: all of it in flight
  if (PyObject* v = field_get(self, fields.high_water)) {
    Py_ssize_t high = PyLong_Check(v) ? PyLong_AsSsize_t(v) : -1;
    Py_DECREF(v);
    if (high >= 0 && chain->size - chain->in_flight <= high) return true;
  }
  PyErr_Clear();
  PyObject* r = call_method0(self, names.maybe_pause);
  Py_XDECREF(r);
  return r != nullptr;
}

void send_release(SendOp* op) noexcept {
  for (int i = 0; i < op->count; ++i) Py_DECREF(op->owners[i]);
  op->count = 0;
  op->chain->sending = false;
  op->chain->in_flight = 0;
  Py_CLEAR(op->transport);
  Py_CLEAR(op->chain);  // last: it may free the chain, which owns op
}

void send_delivered(CoreOp* base, int result);

void send_abandoned(CoreOp* base) { send_release(static_cast<SendOp*>(base)); }

// Hands the chain's first pieces to the loop as one send (or sendmsg) on io_uring, which the loop submits with its next
// wait (one io_uring_enter for every transport that wrote this turn, instead of a sendmsg(2) each). MSG_DONTWAIT makes
// io_uring try it once at submission and complete with what the socket took, or -EAGAIN, instead of waiting in the
// kernel for room: the send is over by the end of that wait, so a transport closed afterwards leaves nothing in flight
// that would hold its socket open. Returns 1 when started, 0 when this loop cannot (epoll, another thread, a send over
// kMaxHeldPerOp or one that would take its sends in flight past kMaxHeldBytes: then a send(2) now is cheaper), -1 on
// error. A transport that reads big (kBigRead) is not held either: a held echo keeps the message, so the big read's
// bytes object is never free for the next read (a fresh 124 KiB object per message, the heap grown and trimmed: 16 KiB
// Protocol echo took 57-85 us of server CPU per message instead of 16-22; issue 13, docs/design/python.md).
int start_send(PyObject* self, WriteChainObject* chain, int fd) {
  if (transport_reads_big(self)) return 0;  // above: a big reader's reply goes out at once
  PyObject* loop = field_get(self, fields.loop);
  if (loop == nullptr) return -1;
  if (chain->send == nullptr) chain->send = new (std::nothrow) SendOp();
  SendOp* op = chain->send;
  if (op == nullptr) {
    Py_DECREF(loop);
    return 0;
  }
  op->io_handle.fd = fd;
  op->io = &op->io_handle;
  op->count = chain_iov(chain, op->iov);
  if (op->count == 1 && op->iov[0].iov_len <= kMaxHeldPerOp) {
    // One piece (an echo's reply, most writes): IORING_OP_SEND, which spares the kernel copying in a msghdr and
    // importing an iovec for every message.
    op->kind = OpKind::send;
    op->buf = op->iov[0].iov_base;
    op->len = static_cast<std::uint32_t>(op->iov[0].iov_len);
  } else {
    op->kind = OpKind::sendmsg;
    op->header = msghdr{};
    op->header.msg_iov = op->iov;
    op->header.msg_iovlen = static_cast<std::size_t>(op->count);
    op->msg = &op->header;
  }
  op->msg_flags = MSG_DONTWAIT;
  op->deliver = send_delivered;
  op->abandon = send_abandoned;
  auto it = chain->pieces->begin();
  for (int i = 0; i < op->count; ++i, ++it) op->owners[i] = Py_NewRef(it->owner);
  op->transport = Py_NewRef(self);
  op->chain = reinterpret_cast<WriteChainObject*>(Py_NewRef(reinterpret_cast<PyObject*>(chain)));
  op->clears = chain->clears;
  chain->sending = true;
  chain->in_flight = 0;
  for (int i = 0; i < op->count; ++i) chain->in_flight += static_cast<Py_ssize_t>(op->iov[i].iov_len);
  op->held = static_cast<std::size_t>(chain->in_flight);
  int started = loop_core_start(loop, op);
  Py_DECREF(loop);
  if (started == 0) send_release(op);
  return started;
}

// What follows a send the loop did for the transport (start_send), in the deliver phase. The common ending — all
// sent, nothing else to do — costs no Python call. Anything else goes to asyncio's way: the writer callback
// (_write_ready), which sends the rest when the socket takes it, resumes a paused protocol, wakes a sendfile
// waiting for the buffer to empty, and ends a close or write_eof. Returns false on error.
bool after_send(PyObject* self, WriteChainObject* chain, int result, Py_ssize_t submitted, bool current) {
  int lost = attr_true(self, fields.conn_lost);
  if (lost != 0) return lost > 0;  // aborted meanwhile: nothing more goes out
  if (current && result < 0 && !would_block(-result)) {
    chain_clear(chain);
    set_os_error(-result);
    return fatal_from_pending(self, "Fatal write error on socket transport") == 0;
  }
  bool whole = current && result == submitted;
  if (whole && chain->size == 0) {
    bool more = false;
    for (const Field* f : {&fields.closing, &fields.eof, &fields.protocol_paused}) {
      int set = attr_true(self, *f);
      if (set < 0) return false;
      more = more || set > 0;
    }
    PyObject* waiter = field_get(self, fields.empty_waiter);
    if (waiter == nullptr) return false;
    more = more || waiter != Py_None;
    Py_DECREF(waiter);
    if (!more) return true;
  } else if (chain->size == 0 && !whole) {
    return true;  // cleared meanwhile, nothing written since
  }
  // The descriptor is looked up only now: the common ending above needs none.
  int fd = attr_fd(self);
  if (fd < 0) return !PyErr_Occurred();
  if ((whole || !current) && chain->size != 0) {
    int started = start_send(self, chain, fd);  // written meanwhile (or after a clear): send that too
    if (started != 0) return started > 0 && maybe_pause(self, chain);
  }
  return maybe_pause(self, chain) && register_writer(self, fd);
}

void send_delivered(CoreOp* base, int result) {
  auto* op = static_cast<SendOp*>(base);
  Py_ssize_t submitted = 0;
  for (int i = 0; i < op->count; ++i) submitted += static_cast<Py_ssize_t>(op->iov[i].iov_len);
  PyObject* self = Py_NewRef(op->transport);
  auto* chain = reinterpret_cast<WriteChainObject*>(Py_NewRef(reinterpret_cast<PyObject*>(op->chain)));
  bool current = op->clears == chain->clears;
  send_release(op);
  if (current && result > 0) chain_drop(chain, result);
  if (!after_send(self, chain, result, submitted, current)) PyErr_WriteUnraisable(self);
  Py_DECREF(reinterpret_cast<PyObject*>(chain));
  Py_DECREF(self);
}

// Queues `data[offset:]` (or every item of `items`) and starts waiting for writability if the chain was empty.
PyObject* write_impl(PyObject* self, PyObject* const* items, Py_ssize_t count) {
  WriteChainObject* chain = attr_chain(self);
  if (chain == nullptr) return nullptr;
  bool was_empty = chain->size == 0 && !chain->sending;
  PyObject* result = nullptr;
  int fd = -1;
  for (Py_ssize_t i = 0; i < count; ++i) {
    if (!chain_append(chain, items[i], 0)) goto done;
  }
  if (was_empty && chain->size != 0) {
    // Nothing was queued: on io_uring the loop sends it with its next wait (start_send); else send now. Most
    // writes end here, without waiting for writability.
    fd = attr_fd(self);
    if (fd < 0 && PyErr_Occurred()) goto done;
    int started = start_send(self, chain, fd);
    if (started < 0) goto done;
    if (started > 0) {
      if (maybe_pause(self, chain)) result = Py_NewRef(Py_None);
      goto done;
    }
    Py_ssize_t sent = chain_send(chain, fd);
    if (sent < 0 && !would_block(static_cast<int>(-sent))) {
      chain_clear(chain);
      set_os_error(static_cast<int>(-sent));
      if (fatal_from_pending(self, "Fatal write error on socket transport") < 0) goto done;
      result = Py_NewRef(Py_None);
      goto done;
    }
    if (chain->size == 0) {
      result = Py_NewRef(Py_None);
      goto done;
    }
    if (!register_writer(self, fd)) goto done;
  }
  if (maybe_pause(self, chain)) result = Py_NewRef(Py_None);
done:
  Py_DECREF(chain);
  return result;
}

// transport.write(data). write, writelines and is_closing are method descriptors of SocketTransport
// (set_transport_class): the interpreter calls them with `self` apart, and a call from Python code
// (`self.transport.write(data)`) makes no bound method object, which an instancemethod made on every call.
PyObject* transport_write(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) return PyErr_Format(PyExc_TypeError, "write() takes exactly one argument");
  Py_ssize_t length = 0;
  int go = check_writable(self, args[0], length);
  if (go < 0) return nullptr;
  if (go == 0) Py_RETURN_NONE;
  return write_impl(self, args, 1);
}

// transport.writelines(list_of_data): everything is queued first, then one sendmsg takes as much as it can.
PyObject* transport_writelines(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) return PyErr_Format(PyExc_TypeError, "writelines() takes exactly one argument");
  PyObject* seq = PySequence_Fast(args[0], "writelines() argument must be iterable");
  if (seq == nullptr) return nullptr;
  Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
  PyObject** items = PySequence_Fast_ITEMS(seq);
  Py_ssize_t total = 0;
  int go = 1;
  for (Py_ssize_t i = 0; i < n && go > 0; ++i) {
    Py_ssize_t length = 0;
    go = check_writable(self, items[i], length);
    total += length;
  }
  PyObject* r = go < 0 ? nullptr : (go == 0 || total == 0) ? Py_NewRef(Py_None) : write_impl(self, items, n);
  Py_DECREF(seq);
  return r;
}

// The writer callback: self._write_ready().
PyObject* transport_write_ready(PyObject*, PyObject* const* args, Py_ssize_t nargs) {
  if (nargs != 1) return PyErr_Format(PyExc_TypeError, "_write_ready() takes no arguments");
  PyObject* self = args[0];
  if (!is_transport(self)) return not_a_transport(self);
  int lost = attr_true(self, fields.conn_lost);
  if (lost != 0) {
    if (lost < 0) return nullptr;
    Py_RETURN_NONE;
  }
  WriteChainObject* chain = attr_chain(self);
  if (chain == nullptr) return nullptr;
  int fd = attr_fd(self);
  PyObject* result = nullptr;
  PyObject* waiter = nullptr;
  if (chain->sending) {  // the loop's send is in flight; its completion goes on (after_send)
    result = Py_NewRef(Py_None);
    goto done;
  }
  {
    // An empty chain: after_send left the ending to this callback (or the chain was cleared, when _conn_lost
    // is set and this returned above).
    Py_ssize_t sent = chain->size != 0 ? chain_send(chain, fd) : 0;
    waiter = field_get(self, fields.empty_waiter);
    if (waiter == nullptr) goto done;
    if (sent < 0) {
      if (would_block(static_cast<int>(-sent))) {
        result = Py_NewRef(Py_None);
        goto done;
      }
      if (!unregister_writer(self, fd)) goto done;
      chain_clear(chain);
      set_os_error(static_cast<int>(-sent));
      PyObject* exc = take_raised_exception();
      PyObject* msg = PyUnicode_FromString("Fatal write error on socket transport");
      PyObject* r = msg != nullptr ? call_method2(self, names.fatal_error, exc, msg) : nullptr;
      Py_XDECREF(msg);
      if (r != nullptr && waiter != Py_None) {
        Py_DECREF(r);
        r = call_method1(waiter, names.set_exception, exc);
      }
      Py_DECREF(exc);
      if (r != nullptr) {
        Py_DECREF(r);
        result = Py_NewRef(Py_None);
      }
      goto done;
    }
    if (PyObject* r = call_method0(self, names.maybe_resume)) {  // may write more
      Py_DECREF(r);
    } else {
      goto done;
    }
    if (chain->size == 0) {
      if (!unregister_writer(self, fd)) goto done;
      if (waiter != Py_None) {
        PyObject* r = call_method1(waiter, names.set_result, Py_None);
        if (r == nullptr) goto done;
        Py_DECREF(r);
      }
      int closing = attr_true(self, fields.closing);
      if (closing < 0) goto done;
      if (closing) {
        PyObject* r = call_method1(self, names.call_connection_lost, Py_None);
        if (r == nullptr) goto done;
        Py_DECREF(r);
      } else {
        int eof = attr_true(self, fields.eof);
        if (eof < 0) goto done;
        if (eof && ::shutdown(fd, SHUT_WR) != 0) {
          PyErr_SetFromErrno(PyExc_OSError);
          goto done;
        }
      }
    }
    result = Py_NewRef(Py_None);
  }
done:
  Py_XDECREF(waiter);
  Py_DECREF(chain);
  return result;
}

// transport.is_closing(): StreamWriter.drain() asks it on every call.
PyObject* transport_is_closing(PyObject* self, PyObject*) {
  int closing = attr_true(self, fields.closing);
  if (closing < 0) return nullptr;
  return Py_NewRef(closing ? Py_True : Py_False);
}

PyObject* instancemethod(PyObject*, PyObject* func) { return PyInstanceMethod_New(func); }

PyObject* set_buffered_protocol(PyObject*, PyObject* cls) {
  Py_XSETREF(g_buffered_protocol, Py_NewRef(cls));
  Py_RETURN_NONE;
}

// Installed on SocketTransport as method descriptors by set_transport_class (transport_write says why).
PyMethodDef transport_methods[] = {
    {"write", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(transport_write)), METH_FASTCALL,
     "Send data: at once, or with the loop's next wait, or queued until the socket takes it."},
    {"writelines", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(transport_writelines)), METH_FASTCALL,
     "Send every item of a list of bytes-like objects, as write() does their concatenation."},
    {"is_closing", transport_is_closing, METH_NOARGS, "Whether the transport is closing or closed."},
    {nullptr, nullptr, 0, nullptr},
};

bool install_methods(PyTypeObject* cls) {
  for (PyMethodDef* def = transport_methods; def->ml_name != nullptr; ++def) {
    PyObject* descr = PyDescr_NewMethod(cls, def);
    int rc = descr != nullptr ? PyObject_SetAttrString(reinterpret_cast<PyObject*>(cls), def->ml_name, descr) : -1;
    Py_XDECREF(descr);
    if (rc < 0) return false;
  }
  return true;
}

PyMethodDef transport_functions[] = {
    {"_transport_read_ready", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(transport_read_ready)),
     METH_FASTCALL, "SocketTransport._read_ready"},
    {"_transport_write_ready", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(transport_write_ready)),
     METH_FASTCALL, "SocketTransport._write_ready"},
    {"_instancemethod", instancemethod, METH_O, "Make a C function bind like a method."},
    {"_set_buffered_protocol", set_buffered_protocol, METH_O, "Tell the core which class is BufferedProtocol."},
    {"_set_transport_class", set_transport_class, METH_O, "Tell the core where SocketTransport's slots are."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyObject* receive_ahead_transport(PyObject* callback) {
  if (!PyMethod_Check(callback) || PyMethod_GET_FUNCTION(callback) != g_read_ready_fn) return nullptr;
  PyObject* transport = PyMethod_GET_SELF(callback);
  if (!is_transport(transport)) return nullptr;
  PyObject* protocol = field_get(transport, fields.protocol);
  if (protocol == nullptr) {
    PyErr_Clear();
    return nullptr;
  }
  int buffered = is_buffered_protocol(protocol);
  Py_DECREF(protocol);
  if (buffered != 0) {
    PyErr_Clear();
    return nullptr;
  }
  return transport;
}

bool transport_reads_big(PyObject* transport) {
  int big = attr_true(transport, fields.rx_big);
  if (big < 0) PyErr_Clear();
  return big > 0;
}

int transport_has_received(PyObject* transport) {
  for (const Field* f : {&fields.rx, &fields.rx_end}) {
    PyObject* v = field_peek(transport, *f);
    if (v == nullptr) return -1;
    bool held = v != Py_None;
    if (held) return 1;
  }
  return 0;
}

int transport_store_received(PyObject* transport, const char* data, int result) {
  if (result <= 0) {
    PyObject* end = PyLong_FromLong(-result);
    if (end == nullptr) return -1;
    field_set(transport, fields.rx_end, end);
    Py_DECREF(end);
    return 0;
  }
  PyObject* held = field_get(transport, fields.rx);
  if (held == nullptr) return -1;
  PyObject* bytes = PyBytes_FromStringAndSize(data, result);
  if (bytes != nullptr && held != Py_None) {
    // Bytes still waiting (the transport was paused): this receive comes after them.
    Py_INCREF(held);
    PyObject* joined = held;
    PyBytes_ConcatAndDel(&joined, bytes);
    bytes = joined;
  }
  Py_DECREF(held);
  if (bytes == nullptr) return -1;
  field_set(transport, fields.rx, bytes);
  Py_DECREF(bytes);
  return 0;
}

int transport_ready(PyObject* module) {
  if (!init_names()) return -1;
  WriteChainType.tp_name = "ringlet._core.WriteChain";
  WriteChainType.tp_basicsize = sizeof(WriteChainObject);
  WriteChainType.tp_flags = Py_TPFLAGS_DEFAULT;
  WriteChainType.tp_doc = "A transport's unsent output: references to the caller's bytes, sent with sendmsg.";
  WriteChainType.tp_new = chain_new;
  WriteChainType.tp_dealloc = chain_dealloc;
  WriteChainType.tp_methods = chain_methods;
  WriteChainType.tp_as_sequence = &chain_as_sequence;
  if (PyType_Ready(&WriteChainType) < 0) return -1;
  if (PyModule_AddObjectRef(module, "WriteChain", reinterpret_cast<PyObject*>(&WriteChainType)) < 0) return -1;
  if (PyModule_AddFunctions(module, transport_functions) < 0) return -1;
  g_read_ready_fn = PyObject_GetAttrString(module, "_transport_read_ready");
  g_write_ready_fn = PyObject_GetAttrString(module, "_transport_write_ready");
  return g_read_ready_fn == nullptr || g_write_ready_fn == nullptr ? -1 : 0;
}

}  // namespace ringlet::py
