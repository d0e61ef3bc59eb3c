// loop_core.cpp — LoopCore: ready queue, timers, readiness watchers and the iteration (loop_core.hpp).
#include "loop_core.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "handle.hpp"
#include "helpers.hpp"
#include "transport.hpp"
#include "ringlet/buf/buffer.hpp"
#include "ringlet/runtime/backend.hpp"
#include "ringlet/runtime/operation.hpp"
#include "ringlet/runtime/timer_wheel.hpp"

namespace ringlet::py {
namespace {

// Timer wheel resolution. A deadline is rounded up to a tick, so a timer fires at most this much after
// loop.time() reaches `when` (never before it). 1 µs: below what Python code can observe, and large timeouts
// still sit only three or four wheel levels up.
constexpr std::int64_t kTimerTickNs = 1'000;
// asyncio's MAXIMUM_SELECT_TIMEOUT: no single wait is longer than a day.
constexpr std::int64_t kMaxWaitNs = 24LL * 3600 * 1'000'000'000;
// Receive buffers of kReceiveAheadSize bytes the io_uring backend registers per loop, shared by every transport it
// receives ahead for (transport.hpp): 512 KiB. A completion's buffer goes back to the ring in the same turn (its
// bytes are copied into a bytes object at once), so the ring only has to cover what arrives during one wait; when it
// runs dry the backend reads the rest with plain recv(2) calls at the next wait (uring_backend.cpp, serve_starved).
constexpr std::uint32_t kProvidedBuffers = 32;

std::int64_t monotonic_ns() noexcept {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

// loop.time(), computed as time.monotonic() computes it, so the two agree to the bit.
double seconds_of(std::int64_t ns) noexcept { return static_cast<double>(ns) / 1e9; }

// The first nanosecond at which loop.time() >= when. The float `when` and the integer clock meet exactly here:
// round up, then step to the boundary, so "due" means exactly asyncio's "loop.time() >= when".
std::int64_t deadline_for(double when) noexcept {
  double ns = when * 1e9;
  if (!(ns < 4e18)) return INT64_MAX / 2;  // far future (also NaN): never due
  if (ns < 0) return 0;                    // in the past: due at once
  auto n = static_cast<std::int64_t>(std::ceil(ns));
  while (n > 0 && seconds_of(n - 1) >= when) --n;
  while (seconds_of(n) < when) ++n;
  return n;
}

struct Watch;

// One direction of a watched descriptor: the callback and the poll operation that tells when to queue it.
// A reader whose callback is a ringlet transport's _read_ready receives ahead on io_uring (transport.hpp): its
// operation is a multishot receive into the loop's provided buffers instead of a poll — armed once, it completes
// once per arrival and stays armed, so a message costs no new submission and no poll armed and disarmed in the
// kernel — and `rx_transport` (strong) is where the bytes go. It is held while the receive is in flight (until its
// final completion): a receive cancelled by remove_reader may still complete with bytes, which belong to the
// transport.
struct PollOp : Operation {
  Watch* watch = nullptr;
  PyObject* handle = nullptr;  // the reader's or writer's handle (strong), nullptr when not watched
  PyObject* rx_transport = nullptr;
  std::uint64_t queued_pass = 0;  // the deliver() pass that last queued the handle (once per pass, however many came)
  bool write = false;
  bool rearm_queued = false;
};

struct Watch {
  Core* core = nullptr;
  IoHandle io;
  PollOp reader;
  PollOp writer;
  bool dying = false;  // both callbacks removed; freed once no operation is in flight

  Watch() = default;
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;
  ~Watch() {  // with the GIL held, as every path that frees a watch has it
    Py_XDECREF(reader.rx_transport);
  }
};

// One completion of a watcher's operation, as the backend reported it (inside its wait, without the GIL). A multishot
// receive completes several times per wait, each with its own buffer (one reference, released once delivered).
struct Completion {
  PollOp* op;
  int result;
  Buffer* buffer;  // a receive's bytes, else nullptr
  bool final;      // the operation is over (not kMore)
};

// The read on the wake-up eventfd (call_soon_threadsafe from another thread writes it).
struct WakeRead : Operation {
  std::uint64_t value = 0;
};

}  // namespace

struct Core {
  BackendKind kind = BackendKind::auto_select;
  std::unique_ptr<Backend> backend;
  std::thread::id owner;  // the thread the backend was created on (io_uring: the only one that may submit)
  std::string backend_reason;

  TimerWheel timers{monotonic_ns(), kTimerTickNs};
  TimerHandleObject* armed = nullptr;  // every armed timer, each holding one reference (the wheel's)
  std::vector<TimerHandleObject*> fired;

  std::deque<PyObject*> ready;  // handles, one reference each

  std::unordered_map<int, Watch*> watches;
  std::vector<Watch*> dying;
  std::vector<PollOp*> rearm;      // ops to (re)submit at the start of the next iteration
  std::vector<PollOp*> rearming;   // rearm, as taken over by the running arm phase
  std::vector<Completion> completed;  // filled by completion callbacks (no GIL), emptied by deliver()
  std::uint64_t deliver_pass = 0;      // deliver() calls so far (PollOp::queued_pass)
  CoreOp* ops_in_flight = nullptr;   // transports' operations (loop_core.hpp, CoreOp), newest first
  std::vector<CoreOp*> ops_done;     // their completions, like `completed`
  std::size_t ops_held = 0;          // what ops in flight hold (kMaxHeldBytes)

  int wake_fd = -1;
  IoHandle wake_io;
  WakeRead wake_op;

  bool polling = false;  // in a wait that may block, GIL released: call_soon_threadsafe must write the eventfd
  bool receive_ahead = false;  // the backend completes receives with their bytes (io_uring): transport.hpp
  bool debug = false;
  bool closed = false;
};

namespace {

Core* core_of(PyObject* self) noexcept { return reinterpret_cast<LoopCoreObject*>(self)->core; }

PyObject* closed_error() {
  PyErr_SetString(PyExc_RuntimeError, "Event loop is closed");
  return nullptr;
}

// ---- timers ---------------------------------------------------------------------------------------------------

void armed_link(Core* c, TimerHandleObject* t) noexcept {
  t->prev_armed = nullptr;
  t->next_armed = c->armed;
  if (c->armed != nullptr) c->armed->prev_armed = t;
  c->armed = t;
}

void armed_unlink(Core* c, TimerHandleObject* t) noexcept {
  if (t->prev_armed != nullptr) {
    t->prev_armed->next_armed = t->next_armed;
  } else {
    c->armed = t->next_armed;
  }
  if (t->next_armed != nullptr) t->next_armed->prev_armed = t->prev_armed;
  t->prev_armed = t->next_armed = nullptr;
}

void timer_fired(TimerNode* node) {
  TimerHandleObject* t = static_cast<TimerSlot*>(node)->owner;
  Core* c = core_of(t->loop);
  armed_unlink(c, t);
  c->fired.push_back(t);  // the wheel's reference moves to `fired`, then to the ready queue
}

void arm_timer(Core* c, TimerHandleObject* t) noexcept {
  Py_INCREF(t);
  armed_link(c, t);
  t->slot.on_fire = timer_fired;
  c->timers.start(t->slot, t->deadline_ns);
}

void expire_timers(Core* c) {
  c->timers.expire(monotonic_ns());
  if (c->fired.empty()) return;
  // The wheel fires in tick order, equal ticks in arming order; two deadlines inside one microsecond tick are put
  // back into `when` order here (stable: equal `when`s keep arming order, which asyncio's heap does not promise).
  if (c->fired.size() > 1) {
    std::stable_sort(c->fired.begin(), c->fired.end(),
                     [](const TimerHandleObject* a, const TimerHandleObject* b) { return a->when < b->when; });
  }
  for (TimerHandleObject* t : c->fired) c->ready.push_back(reinterpret_cast<PyObject*>(t));
  c->fired.clear();
}

// ---- the backend and the wake-up eventfd ----------------------------------------------------------------------

void arm_wake(Core* c) noexcept {
  // Epoll tries the read first: it succeeds inline while writes are counted, and goes again until it parks.
  while (c->wake_op.state == Operation::State::idle && c->backend->submit(c->wake_op)) {
    if (c->wake_op.result <= 0) break;  // cannot happen on an eventfd we own; never spin on it
  }
}

void queue_rearm(Core* c, PollOp* op) {
  if (op->rearm_queued) return;
  op->rearm_queued = true;
  c->rearm.push_back(op);
}

void free_dying(Core* c, bool all) noexcept {
  auto keep = c->dying.begin();
  for (Watch* w : c->dying) {
    bool idle = w->reader.state == Operation::State::idle && w->writer.state == Operation::State::idle;
    if (all || (idle && !w->reader.rearm_queued && !w->writer.rearm_queued)) {
      if (!all && c->backend) c->backend->detach(w->io);
      for (PollOp* p : {&w->reader, &w->writer}) {
        if (p->rearm_queued) std::erase(c->rearm, p);
      }
      delete w;
    } else {
      *keep++ = w;
    }
  }
  c->dying.erase(keep, c->dying.end());
}

enum class Drop { destroy, forget };

void op_unlink(Core* c, CoreOp* op) noexcept {
  if (op->prev != nullptr) op->prev->next = op->next;
  if (op->next != nullptr) op->next->prev = op->prev;
  if (c->ops_in_flight == op) c->ops_in_flight = op->next;
  op->prev = op->next = nullptr;
}

// The backend is going away: no op in flight will complete, and none completed is delivered.
void abandon_ops(Core* c) noexcept {
  std::vector<CoreOp*> lost;
  lost.swap(c->ops_done);
  while (CoreOp* op = c->ops_in_flight) {
    op_unlink(c, op);
    lost.push_back(op);
  }
  c->ops_held = 0;
  for (CoreOp* op : lost) {
    op->state = Operation::State::idle;
    new (&op->wait_link) ListLink<Operation>();
    op->abandon(op);
  }
}

// Drops the backend with whatever it has in flight (closing an io_uring ends every operation on it; closing
// the epoll descriptor forgets every registration). Operations are idle again afterwards.
//
// Drop::forget is for a child process after fork(): the ring or epoll set is then the parent's, shared through
// the inherited descriptor, so the child must neither tear it down (io_uring would unregister the parent's
// buffers) nor change it (epoll_ctl on a shared set edits the parent's registrations). It is leaked instead: a
// little memory and two descriptors, and the next run creates the child's own backend.
void drop_backend(Core* c, Drop how = Drop::destroy) noexcept {
  if (!c->backend) return;
  // Buffers of completions not delivered go back first, while their ring exists (after fork the ring is the
  // parent's: its buffers are left alone; plain reads' pooled buffers are the child's own).
  for (const Completion& e : c->completed) {
    if (e.buffer != nullptr && (how == Drop::destroy || !e.buffer->source->shared_ring())) buffer_unref(e.buffer);
  }
  c->completed.clear();
  if (how == Drop::forget) {
    (void)c->backend.release();
  } else {
    c->backend.reset();
  }
  abandon_ops(c);
  for (auto& [fd, w] : c->watches) {
    for (PollOp* op : {&w->reader, &w->writer}) {
      op->state = Operation::State::idle;
      new (&op->wait_link) ListLink<Operation>();
    }
    // A receive in flight ends with the ring (its bytes, if the kernel had taken any, with it: a loop moved to
    // another thread or process while its peers send can lose what was received but not yet reaped).
    Py_CLEAR(w->reader.rx_transport);
    w->io.epoll_registered = false;
    new (&w->io.readers) OpWaitList();
    new (&w->io.writers) OpWaitList();
  }
  c->wake_op.state = Operation::State::idle;
  new (&c->wake_op.wait_link) ListLink<Operation>();
  c->wake_io.epoll_registered = false;
  new (&c->wake_io.readers) OpWaitList();
  new (&c->wake_io.writers) OpWaitList();
  free_dying(c, /*all=*/true);
}

// The backend is created on the thread that first runs the loop, and again if a later run is on another thread:
// io_uring is set up SINGLE_ISSUER (only its creating thread may submit), and asyncio lets a loop be created in
// one thread and run in another (loop.run_forever in a worker thread is common).
bool ensure_backend(Core* c) {
  std::thread::id self = std::this_thread::get_id();
  if (c->backend && c->owner == self) return true;
  if (c->backend) {
    drop_backend(c);
    for (auto& [fd, w] : c->watches) {
      if (w->reader.handle != nullptr) queue_rearm(c, &w->reader);
      if (w->writer.handle != nullptr) queue_rearm(c, &w->writer);
    }
  }
  BackendOptions options;
  options.kind = c->kind;
  options.ring_entries = 256;
  options.provided_buffer_count = kProvidedBuffers;
  options.provided_buffer_size = kReceiveAheadSize;
  auto choice = create_backend(options);
  if (!choice) {
    PyErr_Format(PyExc_OSError, "ringlet: no event backend available (%s): %s",
                 std::string(backend_kind_name(c->kind)).c_str(), std::string(choice.error().message()).c_str());
    return false;
  }
  c->backend = std::move(choice->backend);
  c->backend_reason = std::move(choice->reason);
  // On epoll a recv operation is a recv(2) tried at once, then readiness and another recv(2): no gain there.
  c->receive_ahead = c->backend->name() == "io_uring";
  c->owner = self;
  arm_wake(c);
  return true;
}

// ---- readiness watchers -----------------------------------------------------------------------------------------

void poll_complete(Operation& op, int result, std::uint32_t flags) noexcept {
  // Runs inside the backend's wait, without the GIL: record only.
  auto& p = static_cast<PollOp&>(op);
  p.result = result;
  Buffer* buffer = nullptr;
  if (op.kind == OpKind::recv_provided) {
    buffer = op.buffer;
    op.buffer = nullptr;
  }
  p.watch->core->completed.push_back(Completion{&p, result, buffer, (flags & Operation::kMore) == 0});
}

// A receive ahead completed: its outcome goes to the transport whether or not it is still watched (the bytes
// left the socket), then the reader's callback is queued as a readiness event's would be, once per deliver pass
// however many completions came. A transport that was paused and resumed meanwhile may be watched by a new Watch
// of the same descriptor: its callback is queued. The receive stays armed until its final completion; then it is
// armed again if its reader is still watched and the stream did not end.
void deliver_received(Core* c, const Completion& e) {
  PollOp* op = e.op;
  PyObject* transport = op->rx_transport;
  int result = e.result;
  bool outcome = result != -ECANCELED && result != -EAGAIN && result != -EINTR && result != -ENOBUFS &&
                 (result <= 0 || e.buffer != nullptr);
  if (outcome) {
    const char* data = result > 0 ? reinterpret_cast<const char*>(e.buffer->data) : nullptr;
    if (transport_store_received(transport, data, result) < 0) PyErr_WriteUnraisable(transport);
  }
  // A full buffer says big messages (transport.hpp, kBigRead): end the receive, so that the transport, which
  // marks itself when it hands these bytes on, is armed next for readiness reads.
  if (!e.final && result >= static_cast<int>(kReceiveAheadSize)) c->backend->cancel(*op);
  Watch* w = op->watch;
  PollOp* target = (!w->dying && op->handle != nullptr) ? op : nullptr;
  if (target == nullptr && outcome) {
    auto it = c->watches.find(w->io.fd);
    if (it != c->watches.end() && it->second != w && it->second->reader.handle != nullptr) target = &it->second->reader;
  }
  if (e.final) {
    op->rx_transport = nullptr;
    Py_DECREF(transport);
  }
  if (target == nullptr) return;
  if (outcome && target->queued_pass != c->deliver_pass) {
    target->queued_pass = c->deliver_pass;
    c->ready.push_back(Py_NewRef(target->handle));
  }
  if (e.final && target == op && (result > 0 || !outcome)) queue_rearm(c, op);
}

void deliver_one(Core* c, const Completion& e) {
  PollOp* op = e.op;
  int result = e.result;
  if (op->kind == OpKind::recv_provided && op->rx_transport != nullptr) {
    deliver_received(c, e);
    return;
  }
  Watch* w = op->watch;
  if (w->dying || op->handle == nullptr) return;
  if (result == -ECANCELED) {  // cancelled, then watched again before the cancellation completed
    queue_rearm(c, op);
    return;
  }
  // A poll error (the descriptor is gone) or POLLNVAL: a selector drops closed descriptors silently, so the
  // watcher goes dormant instead of calling back forever. Removing and adding it again re-arms it.
  if (result < 0 || (result & POLLNVAL) != 0) return;
  c->ready.push_back(Py_NewRef(op->handle));
  queue_rearm(c, op);
}

void core_op_complete(Operation& op, int result, std::uint32_t) noexcept {
  // Runs inside the backend's wait or submit, without the GIL: record only.
  auto& p = static_cast<CoreOp&>(op);
  p.result = result;
  op_unlink(p.core, &p);
  p.core->ops_held -= p.held;
  p.core->ops_done.push_back(&p);
}

void deliver(Core* c) {
  ++c->deliver_pass;
  // Index loop over copies: a delivery may cancel a receive, and a cancel the backend finishes at once (a receive
  // waiting for ring buffers) appends its final completion here.
  for (std::size_t i = 0; i < c->completed.size(); ++i) {
    Completion e = c->completed[i];
    deliver_one(c, e);
    if (e.buffer != nullptr) buffer_unref(e.buffer);
  }
  c->completed.clear();
  // Index loop: a delivery may start another op, and its submit may reap (a full submission queue) into ops_done.
  for (std::size_t i = 0; i < c->ops_done.size(); ++i) {
    CoreOp* op = c->ops_done[i];
    op->deliver(op, op->result);
  }
  c->ops_done.clear();
  if (!c->dying.empty()) free_dying(c, false);
}

// Submits op's poll. Returns false with a Python exception when the backend refused the descriptor at once.
bool submit_poll(Core* c, PollOp* op, bool raise) {
  op->io = &op->watch->io;
  op->on_complete = poll_complete;
  PyObject* transport = nullptr;
  if (c->receive_ahead && !op->write && op->handle != nullptr) {
    PyObject* callback = reinterpret_cast<HandleObject*>(op->handle)->callback;
    transport = callback != nullptr ? receive_ahead_transport(callback) : nullptr;
    if (transport != nullptr && transport_reads_big(transport)) transport = nullptr;  // transport.hpp, kBigRead
  }
  if (transport != nullptr) {
    Py_XSETREF(op->rx_transport, Py_NewRef(transport));
    op->kind = OpKind::recv_provided;
    op->multishot = true;
    op->buffer = nullptr;
    op->len = 0;  // no limit: it runs until cancelled or the stream ends
    op->msg_flags = 0;
    c->backend->submit(*op);  // a multishot operation never completes inline
    return true;
  }
  op->kind = OpKind::poll;
  op->multishot = false;
  op->poll_events = op->write ? POLLOUT : POLLIN;
  if (!c->backend->submit(*op)) return true;
  int r = op->result;  // done inline (epoll tried poll(2) first)
  if (r < 0 && r != -ECANCELED && raise) {
    errno = -r;
    PyErr_SetFromErrno(PyExc_OSError);
    return false;
  }
  deliver_one(c, Completion{op, r, nullptr, true});
  return true;
}

void arm_watchers(Core* c) {
  if (c->rearm.empty()) return;
  c->rearming.swap(c->rearm);
  for (PollOp* op : c->rearming) {
    op->rearm_queued = false;
    if (op->handle == nullptr || op->watch->dying || op->state != Operation::State::idle) continue;
    submit_poll(c, op, /*raise=*/false);
  }
  c->rearming.clear();
}

bool same_thread_backend(Core* c) noexcept { return c->backend && c->owner == std::this_thread::get_id(); }

// add_reader/add_writer: returns the new handle, or nullptr with an exception.
PyObject* watch_add(PyObject* self, PyObject* const* args, Py_ssize_t nargs, bool write) {
  Core* c = core_of(self);
  if (c->closed) return closed_error();
  if (nargs < 2) {
    PyErr_SetString(PyExc_TypeError, "add_reader/add_writer need fd and callback");
    return nullptr;
  }
  int fd = PyObject_AsFileDescriptor(args[0]);
  if (fd < 0) return nullptr;
  PyObject* cb_args = PyTuple_New(nargs - 2);
  if (cb_args == nullptr) return nullptr;
  for (Py_ssize_t i = 2; i < nargs; ++i) PyTuple_SET_ITEM(cb_args, i - 2, Py_NewRef(args[i]));
  HandleObject* h = handle_create(args[1], cb_args, nullptr, self);
  Py_DECREF(cb_args);
  if (h == nullptr) return nullptr;

  Watch*& slot = c->watches[fd];
  if (slot == nullptr) {
    slot = new Watch();
    slot->core = c;
    slot->io.fd = fd;
    slot->reader.watch = slot;
    slot->writer.watch = slot;
    slot->writer.write = true;
  }
  PollOp* op = write ? &slot->writer : &slot->reader;
  if (op->handle != nullptr) {
    handle_mark_cancelled(reinterpret_cast<HandleObject*>(op->handle));
    Py_DECREF(op->handle);
  }
  op->handle = Py_NewRef(reinterpret_cast<PyObject*>(h));
  if (!write) {
    // Bytes received ahead while the transport was paused: its callback runs next, as readiness would call it.
    PyObject* transport = receive_ahead_transport(args[1]);
    int held = transport != nullptr ? transport_has_received(transport) : 0;
    if (held < 0) PyErr_Clear();
    if (held > 0) c->ready.push_back(Py_NewRef(reinterpret_cast<PyObject*>(h)));
  }
  if (op->state == Operation::State::idle && !op->rearm_queued) {
    // Arm at once when we may (so a descriptor epoll refuses, a regular file, fails here as with a selector);
    // otherwise the next iteration arms it, on the thread that runs the loop.
    if (same_thread_backend(c)) {
      if (!submit_poll(c, op, /*raise=*/true)) {
        Py_CLEAR(op->handle);
        if (slot->reader.handle == nullptr && slot->writer.handle == nullptr) {
          Watch* w = slot;
          c->watches.erase(fd);
          c->backend->detach(w->io);
          delete w;
        }
        Py_DECREF(h);
        return nullptr;
      }
    } else {
      queue_rearm(c, op);
    }
  }
  return reinterpret_cast<PyObject*>(h);
}

// remove_reader/remove_writer: true when a callback was registered.
bool watch_remove(Core* c, int fd, bool write) {
  auto it = c->watches.find(fd);
  if (it == c->watches.end()) return false;
  Watch* w = it->second;
  PollOp* op = write ? &w->writer : &w->reader;
  if (op->handle == nullptr) return false;
  handle_mark_cancelled(reinterpret_cast<HandleObject*>(op->handle));
  Py_CLEAR(op->handle);
  // io_uring: a pending poll holds a reference to the file, so the socket would stay open after the caller
  // closes it; cancel now (epoll ends it at once, io_uring with the next submission).
  if (op->state == Operation::State::pending && same_thread_backend(c)) {
    c->backend->cancel(*op);
    // io_uring: hand the cancellation to the kernel now and let it finish the poll, so the file is released
    // before the caller's close() (a listener must refuse connections as soon as server.close() returns). The
    // completion only lands in `completed`, delivered next turn.
    if (op->state != Operation::State::idle) c->backend->wait(0);
  }
  if (w->reader.handle == nullptr && w->writer.handle == nullptr) {
    c->watches.erase(it);
    w->dying = true;
    // Forget the descriptor before the caller closes it (epoll: the number may be reused at once).
    if (c->backend && w->reader.state == Operation::State::idle && w->writer.state == Operation::State::idle) {
      c->backend->detach(w->io);
    }
    if (!c->backend) {
      for (PollOp* p : {&w->reader, &w->writer}) {
        if (p->rearm_queued) std::erase(c->rearm, p);
      }
      delete w;
    } else {
      c->dying.push_back(w);
    }
  }
  return true;
}

// ---- closing ------------------------------------------------------------------------------------------------------

void release_python_refs(Core* c) {
  while (TimerHandleObject* t = c->armed) {
    c->timers.stop(t->slot);
    armed_unlink(c, t);
    Py_DECREF(t);
  }
  for (TimerHandleObject* t : c->fired) Py_DECREF(t);
  c->fired.clear();
  std::deque<PyObject*> ready;
  ready.swap(c->ready);
  for (PyObject* h : ready) Py_DECREF(h);
  for (auto& [fd, w] : c->watches) {
    Py_CLEAR(w->reader.handle);
    Py_CLEAR(w->writer.handle);
    Py_CLEAR(w->reader.rx_transport);
  }
}

void core_close(Core* c) {
  c->closed = true;
  release_python_refs(c);
  drop_backend(c);
  for (auto& [fd, w] : c->watches) delete w;
  c->watches.clear();
  c->rearm.clear();
  if (c->wake_fd >= 0) {
    ::close(c->wake_fd);
    c->wake_fd = -1;
  }
}

// ---- the iteration ----------------------------------------------------------------------------------------------

int run_foreign_handle(PyObject* h) {
  // asyncio.Handle objects reach the queue through _add_callback (signal handlers): run them as asyncio would.
  PyObject* cancelled = PyObject_GetAttr(h, helpers().str_cancelled);
  if (cancelled == nullptr) return -1;
  int is_cancelled = PyObject_IsTrue(cancelled);
  Py_DECREF(cancelled);
  if (is_cancelled != 0) return is_cancelled < 0 ? -1 : 0;
  PyObject* r = PyObject_CallMethodNoArgs(h, helpers().str_run);
  if (r == nullptr) return -1;
  Py_DECREF(r);
  return 0;
}

int run_ready(PyObject* self, Core* c) {
  std::size_t n = c->ready.size();
  for (std::size_t i = 0; i < n && !c->ready.empty(); ++i) {
    PyObject* h = c->ready.front();
    c->ready.pop_front();
    int rc;
    if (c->debug) {
      PyObject_SetAttr(self, helpers().str_current_handle, h);
      std::int64_t t0 = monotonic_ns();
      rc = is_ringlet_handle(h) ? handle_run(reinterpret_cast<HandleObject*>(h)) : run_foreign_handle(h);
      double took = seconds_of(monotonic_ns() - t0);
      PyObject_SetAttr(self, helpers().str_current_handle, Py_None);
      if (rc == 0) {
        PyObject* limit = PyObject_GetAttr(self, helpers().str_slow_callback_duration);
        double seconds = limit != nullptr ? PyFloat_AsDouble(limit) : 0.1;
        Py_XDECREF(limit);
        PyErr_Clear();
        if (took >= seconds && helpers().slow_callback != nullptr) {
          PyObject* dt = PyFloat_FromDouble(took);
          PyObject* a[] = {self, h, dt};
          PyObject* r = dt != nullptr ? PyObject_Vectorcall(helpers().slow_callback, a, 3, nullptr) : nullptr;
          Py_XDECREF(dt);
          if (r == nullptr) rc = -1;
          Py_XDECREF(r);
        }
      }
    } else {
      rc = is_ringlet_handle(h) ? handle_run(reinterpret_cast<HandleObject*>(h)) : run_foreign_handle(h);
    }
    Py_DECREF(h);
    if (rc < 0) return -1;
  }
  return 0;
}

// The turn's sends (transport.cpp, start_send) are about to go out with a wait that may sleep. They complete in
// the submission itself (MSG_DONTWAIT), and a completion ends a wait: the wait would return at once with nothing
// but them, and the loop would go round again — a second Python iteration and io_uring_enter — before it sleeps.
// So they are submitted and delivered first, without sleeping. Returns true when that made work (bytes that had
// arrived meanwhile, a send the socket did not take in full): then the wait must not sleep.
bool loop_stopping(PyObject* self) {
  PyObject* stopping = PyObject_GetAttr(self, helpers().str_stopping);
  if (stopping == nullptr) PyErr_Clear();
  bool on = stopping != nullptr && PyObject_IsTrue(stopping) == 1;
  Py_XDECREF(stopping);
  return on;
}

bool submit_before_sleeping(Core* c) {
  c->backend->wait(0);
  deliver(c);
  return !c->ready.empty() || !c->completed.empty() || !c->ops_done.empty() || !c->rearm.empty();
}

PyObject* loop_run_once(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  if (c->closed) return closed_error();
  if (!ensure_backend(c)) return nullptr;
  arm_watchers(c);

  std::int64_t timeout = -1;
  if (!c->ready.empty() || loop_stopping(self) || !c->completed.empty() || !c->ops_done.empty()) {
    timeout = 0;
  } else if (c->timers.size() != 0) {
    timeout = std::min(c->timers.next_timeout_ns(monotonic_ns()), kMaxWaitNs);
  }
  bool submitted = false;
  if (timeout != 0 && c->ops_in_flight != nullptr) {
    submitted = true;
    // What the delivery ran (a protocol's pause_writing, an error handler) may have stopped or closed the loop.
    if (submit_before_sleeping(c) || loop_stopping(self)) timeout = 0;
    if (c->closed) Py_RETURN_NONE;
    if (timeout != 0 && c->timers.size() != 0) {
      timeout = std::min(c->timers.next_timeout_ns(monotonic_ns()), kMaxWaitNs);
    }
  }
  if (timeout == 0) {
    if (!submitted) c->backend->wait(0);
  } else {
    c->polling = true;
    Backend* backend = c->backend.get();
    Py_BEGIN_ALLOW_THREADS
    backend->wait(timeout);
    Py_END_ALLOW_THREADS
    c->polling = false;
  }
  deliver(c);
  arm_wake(c);
  // A signal that ended the wait: run its Python handler now (KeyboardInterrupt leaves the loop from here).
  if (PyErr_CheckSignals() < 0) return nullptr;
  if (c->closed) Py_RETURN_NONE;  // a signal handler closed it
  expire_timers(c);
  if (run_ready(self, c) < 0) return nullptr;
  Py_RETURN_NONE;
}

// ---- scheduling calls -------------------------------------------------------------------------------------------

// Splits (callback, *args, context=None) as asyncio's call_soon takes it. Returns a new tuple of args.
PyObject* split_call(PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames, PyObject*& context,
                     const char* method) {
  context = nullptr;
  if (kwnames != nullptr) {
    Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
    for (Py_ssize_t i = 0; i < nk; ++i) {
      PyObject* name = PyTuple_GET_ITEM(kwnames, i);
      if (PyUnicode_CompareWithASCIIString(name, "context") != 0) {
        PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument '%U'", method, name);
        return nullptr;
      }
      context = args[nargs + i];
    }
  }
  if (nargs < 1) {
    PyErr_Format(PyExc_TypeError, "%s() missing the callback argument", method);
    return nullptr;
  }
  PyObject* tuple = PyTuple_New(nargs - 1);
  if (tuple == nullptr) return nullptr;
  for (Py_ssize_t i = 1; i < nargs; ++i) PyTuple_SET_ITEM(tuple, i - 1, Py_NewRef(args[i]));
  return tuple;
}

bool debug_check(PyObject* self, PyObject* callback, const char* method, bool threadsafe) {
  if (helpers().debug_check == nullptr) return true;
  PyObject* name = PyUnicode_FromString(method);
  if (name == nullptr) return false;
  PyObject* a[] = {self, callback, name, threadsafe ? Py_True : Py_False};
  PyObject* r = PyObject_Vectorcall(helpers().debug_check, a, 4, nullptr);
  Py_DECREF(name);
  Py_XDECREF(r);
  return r != nullptr;
}

PyObject* schedule_soon(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                        const char* method, bool threadsafe) {
  Core* c = core_of(self);
  if (c->closed) return closed_error();
  PyObject* context;
  PyObject* cb_args = split_call(args, nargs, kwnames, context, method);
  if (cb_args == nullptr) return nullptr;
  if (c->debug && !debug_check(self, args[0], method, threadsafe)) {
    Py_DECREF(cb_args);
    return nullptr;
  }
  HandleObject* h = handle_create(args[0], cb_args, context, self);
  Py_DECREF(cb_args);
  if (h == nullptr) return nullptr;
  c->ready.push_back(Py_NewRef(reinterpret_cast<PyObject*>(h)));
  return reinterpret_cast<PyObject*>(h);
}

PyObject* loop_call_soon(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  return schedule_soon(self, args, nargs, kwnames, "call_soon", false);
}

PyObject* loop_call_soon_threadsafe(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  PyObject* h = schedule_soon(self, args, nargs, kwnames, "call_soon_threadsafe", true);
  if (h == nullptr) return nullptr;
  // The caller holds the GIL, so the loop's thread is either waiting with the GIL released (polling: wake it) or
  // will look at the ready queue before it next waits.
  Core* c = core_of(self);
  if (c->polling && c->wake_fd >= 0) {
    std::uint64_t one = 1;
    ssize_t ignored = ::write(c->wake_fd, &one, sizeof one);
    (void)ignored;
  }
  return h;
}

PyObject* schedule_at(PyObject* self, double when, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames,
                      const char* method) {
  Core* c = core_of(self);
  if (c->closed) return closed_error();
  PyObject* context;
  PyObject* cb_args = split_call(args, nargs, kwnames, context, method);
  if (cb_args == nullptr) return nullptr;
  if (c->debug && !debug_check(self, args[0], method, false)) {
    Py_DECREF(cb_args);
    return nullptr;
  }
  TimerHandleObject* t = timer_handle_create(when, deadline_for(when), args[0], cb_args, context, self);
  Py_DECREF(cb_args);
  if (t == nullptr) return nullptr;
  arm_timer(c, t);
  return reinterpret_cast<PyObject*>(t);
}

bool number_arg(PyObject* o, const char* what, double& out) {
  if (o == Py_None) {
    PyErr_Format(PyExc_TypeError, "%s must not be None", what);
    return false;
  }
  out = PyFloat_AsDouble(o);
  return !(out == -1.0 && PyErr_Occurred());
}

PyObject* loop_call_at(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  double when;
  if (nargs < 1) return PyErr_Format(PyExc_TypeError, "call_at() missing the when argument");
  if (!number_arg(args[0], "when", when)) return nullptr;
  return schedule_at(self, when, args + 1, nargs - 1, kwnames, "call_at");
}

PyObject* loop_call_later(PyObject* self, PyObject* const* args, Py_ssize_t nargs, PyObject* kwnames) {
  double delay;
  if (nargs < 1) return PyErr_Format(PyExc_TypeError, "call_later() missing the delay argument");
  if (!number_arg(args[0], "delay", delay)) return nullptr;
  return schedule_at(self, seconds_of(monotonic_ns()) + delay, args + 1, nargs - 1, kwnames, "call_later");
}

PyObject* loop_time(PyObject*, PyObject*) { return PyFloat_FromDouble(seconds_of(monotonic_ns())); }

// asyncio's C Future and Task call loop.get_debug() every time one is made, and streams make a future per wait:
// answered here, without a Python frame. It reads the `_debug` attribute asyncio's own code reads.
PyObject* loop_get_debug(PyObject* self, PyObject*) { return PyObject_GetAttr(self, helpers().str_debug); }

// asyncio.Future(loop=self), as BaseEventLoop.create_future makes it, without a Python frame.
PyObject* loop_create_future(PyObject* self, PyObject*) {
  PyObject* args[] = {self};
  return PyObject_Vectorcall(helpers().future_type, args, 0, helpers().kwnames_loop);
}

PyObject* loop_add_callback(PyObject* self, PyObject* handle) {
  Core* c = core_of(self);
  if (c->closed) Py_RETURN_NONE;
  if (is_ringlet_handle(handle)) {
    if (reinterpret_cast<HandleObject*>(handle)->cancelled) Py_RETURN_NONE;
  } else {
    PyObject* cancelled = PyObject_GetAttr(handle, helpers().str_cancelled);
    if (cancelled == nullptr) return nullptr;
    int is_cancelled = PyObject_IsTrue(cancelled);
    Py_DECREF(cancelled);
    if (is_cancelled < 0) return nullptr;
    if (is_cancelled) Py_RETURN_NONE;
  }
  c->ready.push_back(Py_NewRef(handle));
  Py_RETURN_NONE;
}

PyObject* loop_add_reader(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return watch_add(self, args, nargs, false);
}
PyObject* loop_add_writer(PyObject* self, PyObject* const* args, Py_ssize_t nargs) {
  return watch_add(self, args, nargs, true);
}

PyObject* watch_remove_py(PyObject* self, PyObject* fileobj, bool write) {
  Core* c = core_of(self);
  if (c->closed) Py_RETURN_FALSE;
  int fd = PyObject_AsFileDescriptor(fileobj);
  if (fd < 0) return nullptr;
  return PyBool_FromLong(watch_remove(c, fd, write));
}
PyObject* loop_remove_reader(PyObject* self, PyObject* fd) { return watch_remove_py(self, fd, false); }
PyObject* loop_remove_writer(PyObject* self, PyObject* fd) { return watch_remove_py(self, fd, true); }

// (mask, reader handle, writer handle) for the selector shim's get_key(), or None when fd is not watched.
PyObject* loop_watch_info(PyObject* self, PyObject* fileobj) {
  Core* c = core_of(self);
  int fd = PyObject_AsFileDescriptor(fileobj);
  if (fd < 0) return nullptr;
  auto it = c->watches.find(fd);
  if (it == c->watches.end()) Py_RETURN_NONE;
  Watch* w = it->second;
  long mask = (w->reader.handle != nullptr ? 1 : 0) | (w->writer.handle != nullptr ? 2 : 0);
  return Py_BuildValue("(lOO)", mask, w->reader.handle != nullptr ? w->reader.handle : Py_None,
                       w->writer.handle != nullptr ? w->writer.handle : Py_None);
}

PyObject* loop_watched_fds(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  PyObject* list = PyList_New(0);
  if (list == nullptr) return nullptr;
  for (auto& [fd, w] : c->watches) {
    PyObject* n = PyLong_FromLong(fd);
    if (n == nullptr || PyList_Append(list, n) < 0) {
      Py_XDECREF(n);
      Py_DECREF(list);
      return nullptr;
    }
    Py_DECREF(n);
  }
  return list;
}

// ---- set-up, state and statistics ------------------------------------------------------------------------------

PyObject* loop_core_setup(PyObject* self, PyObject* arg) {
  Core* c = core_of(self);
  const char* name = PyUnicode_AsUTF8(arg);
  if (name == nullptr) return nullptr;
  if (!parse_backend_kind(name, c->kind)) {
    return PyErr_Format(PyExc_ValueError, "backend must be 'auto', 'uring' or 'epoll', not %R", arg);
  }
  if (c->backend) return PyErr_Format(PyExc_RuntimeError, "the backend is already chosen");
  Py_RETURN_NONE;
}

PyObject* loop_core_after_fork(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  if (c->closed || !c->backend) Py_RETURN_NONE;
  drop_backend(c, Drop::forget);
  for (auto& [fd, w] : c->watches) {
    if (w->reader.handle != nullptr) queue_rearm(c, &w->reader);
    if (w->writer.handle != nullptr) queue_rearm(c, &w->writer);
  }
  Py_RETURN_NONE;
}

PyObject* loop_core_close(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  if (!c->closed) core_close(c);
  Py_RETURN_NONE;
}

PyObject* loop_core_set_debug(PyObject* self, PyObject* flag) {
  int on = PyObject_IsTrue(flag);
  if (on < 0) return nullptr;
  core_of(self)->debug = on != 0;
  Py_RETURN_NONE;
}

PyObject* loop_backend_name(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  if (c->closed) return closed_error();
  if (!ensure_backend(c)) return nullptr;
  std::string_view name = c->backend->name();
  return PyUnicode_FromStringAndSize(name.data(), static_cast<Py_ssize_t>(name.size()));
}

// What the loop holds, for tests that prove nothing is left behind.
PyObject* loop_core_stats(PyObject* self, PyObject*) {
  Core* c = core_of(self);
  std::size_t pending = c->backend ? c->backend->pending() : 0;
  if (c->backend && c->wake_op.state != Operation::State::idle) --pending;
  return Py_BuildValue("{s:n,s:n,s:n,s:n,s:n}", "ready", static_cast<Py_ssize_t>(c->ready.size()), "timers",
                       static_cast<Py_ssize_t>(c->timers.size()), "watchers",
                       static_cast<Py_ssize_t>(c->watches.size()), "retiring",
                       static_cast<Py_ssize_t>(c->dying.size()), "operations", static_cast<Py_ssize_t>(pending));
}

PyMethodDef loop_methods[] = {
    {"time", loop_time, METH_NOARGS, "The loop's clock: time.monotonic()."},
    {"get_debug", loop_get_debug, METH_NOARGS, "Whether the loop is in debug mode."},
    {"create_future", loop_create_future, METH_NOARGS, "A new asyncio.Future attached to the loop."},
    {"call_soon", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_call_soon)),
     METH_FASTCALL | METH_KEYWORDS, "call_soon(callback, *args, context=None) -> Handle"},
    {"call_soon_threadsafe", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_call_soon_threadsafe)),
     METH_FASTCALL | METH_KEYWORDS, "Like call_soon, from any thread; wakes the loop."},
    {"call_at", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_call_at)),
     METH_FASTCALL | METH_KEYWORDS, "call_at(when, callback, *args, context=None) -> TimerHandle"},
    {"call_later", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_call_later)),
     METH_FASTCALL | METH_KEYWORDS, "call_later(delay, callback, *args, context=None) -> TimerHandle"},
    {"_run_once", loop_run_once, METH_NOARGS, "One iteration (loop_core.hpp lists its phases)."},
    {"_add_callback", loop_add_callback, METH_O, "Queue a handle unless it is cancelled."},
    {"_add_reader", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_add_reader)), METH_FASTCALL,
     "Watch fd for reading."},
    {"_add_writer", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(loop_add_writer)), METH_FASTCALL,
     "Watch fd for writing."},
    {"_remove_reader", loop_remove_reader, METH_O, "Stop watching fd for reading."},
    {"_remove_writer", loop_remove_writer, METH_O, "Stop watching fd for writing."},
    {"_watch_info", loop_watch_info, METH_O, "(mask, reader, writer) of a watched fd, or None."},
    {"_watched_fds", loop_watched_fds, METH_NOARGS, "The watched descriptors."},
    {"_core_setup", loop_core_setup, METH_O, "Choose the backend: 'auto', 'uring' or 'epoll'."},
    {"_core_after_fork", loop_core_after_fork, METH_NOARGS, "In a forked child: leave the parent's backend."},
    {"_core_close", loop_core_close, METH_NOARGS, "Release every handle, timer, watcher and the backend."},
    {"_core_set_debug", loop_core_set_debug, METH_O, "Follow asyncio debug mode."},
    {"_core_stats", loop_core_stats, METH_NOARGS, "Counts of what the loop holds."},
    {"_backend_name", loop_backend_name, METH_NOARGS, "'io_uring' or 'epoll'."},
    {nullptr, nullptr, 0, nullptr},
};

// ---- the type ---------------------------------------------------------------------------------------------------

PyObject* loop_new(PyTypeObject* type, PyObject*, PyObject*) {
  PyObject* self = type->tp_alloc(type, 0);
  if (self == nullptr) return nullptr;
  auto* c = new (std::nothrow) Core();
  if (c == nullptr) {
    Py_DECREF(self);
    return PyErr_NoMemory();
  }
  c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (c->wake_fd < 0) {
    delete c;
    Py_DECREF(self);
    return PyErr_SetFromErrno(PyExc_OSError);
  }
  c->wake_io.fd = c->wake_fd;
  c->wake_op.kind = OpKind::read;
  c->wake_op.io = &c->wake_io;
  c->wake_op.buf = &c->wake_op.value;
  c->wake_op.len = sizeof c->wake_op.value;
  c->wake_op.on_complete = [](Operation&, int, std::uint32_t) noexcept {};  // arm_wake() re-arms it
  reinterpret_cast<LoopCoreObject*>(self)->core = c;
  return self;
}

int loop_traverse(PyObject* self, visitproc visit, void* arg) {
  Core* c = core_of(self);
  if (c == nullptr) return 0;
  for (PyObject* h : c->ready) Py_VISIT(h);
  for (TimerHandleObject* t = c->armed; t != nullptr; t = t->next_armed) Py_VISIT(reinterpret_cast<PyObject*>(t));
  for (TimerHandleObject* t : c->fired) Py_VISIT(reinterpret_cast<PyObject*>(t));
  for (auto& [fd, w] : c->watches) {
    Py_VISIT(w->reader.handle);
    Py_VISIT(w->writer.handle);
  }
  return 0;
}

int loop_clear(PyObject* self) {
  Core* c = core_of(self);
  if (c != nullptr) release_python_refs(c);
  return 0;
}

void loop_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  auto* o = reinterpret_cast<LoopCoreObject*>(self);
  if (o->core != nullptr) {
    core_close(o->core);
    delete o->core;
    o->core = nullptr;
  }
  Py_TYPE(self)->tp_free(self);
}

}  // namespace

int loop_core_start(PyObject* loop, CoreOp* op) noexcept {
  if (!PyObject_TypeCheck(loop, &LoopCoreType)) return 0;
  Core* c = core_of(loop);
  if (c == nullptr || c->closed || !c->receive_ahead || !same_thread_backend(c)) return 0;
  if (op->held > kMaxHeldPerOp || op->held > kMaxHeldBytes - c->ops_held) return 0;
  c->ops_held += op->held;
  op->core = c;
  op->on_complete = core_op_complete;
  op->prev = nullptr;
  op->next = c->ops_in_flight;
  if (op->next != nullptr) op->next->prev = op;
  c->ops_in_flight = op;
  if (c->backend->submit(*op)) core_op_complete(*op, op->result, 0);  // finished inline: delivered like the rest
  return 1;
}

PyTypeObject LoopCoreType = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "ringlet._core.LoopCore";
  t.tp_basicsize = sizeof(LoopCoreObject);
  t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC;
  t.tp_doc = "The C half of ringlet.Loop: ready queue, timers, readiness and the iteration.";
  t.tp_new = loop_new;
  t.tp_dealloc = loop_dealloc;
  t.tp_traverse = loop_traverse;
  t.tp_clear = loop_clear;
  t.tp_methods = loop_methods;
  return t;
}();

bool loop_core_debug(PyObject* loop) noexcept {
  return loop != nullptr && PyObject_TypeCheck(loop, &LoopCoreType) && core_of(loop) != nullptr &&
         core_of(loop)->debug;
}

void loop_core_timer_cancelled(TimerHandleObject* t) noexcept {
  if (!t->slot.armed()) return;
  Core* c = core_of(t->loop);
  c->timers.stop(t->slot);
  armed_unlink(c, t);
  Py_DECREF(t);  // the wheel's reference; the caller holds its own
}

int loop_core_type_ready(PyObject* module) {
  if (PyType_Ready(&LoopCoreType) < 0) return -1;
  return PyModule_AddObjectRef(module, "LoopCore", reinterpret_cast<PyObject*>(&LoopCoreType));
}

}  // namespace ringlet::py
