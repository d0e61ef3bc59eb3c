// handle.hpp — asyncio's Handle and TimerHandle as C types: what call_soon and call_at return and what the loop
// runs. Core-local: a handle belongs to one loop and is touched with the GIL held.
//
// A Handle holds the callback, its arguments (a tuple), the contextvars.Context it runs in and its loop. Running
// it is one PyContext_Enter, one vectorcall with the tuple's items, one PyContext_Exit: no bound-method or
// Context.run frames in between. An exception other than SystemExit/KeyboardInterrupt goes to the loop's exception
// handler with asyncio's own context dict; those two propagate out of the loop, as in asyncio.
//
// A TimerHandle also carries `when` exactly as the caller gave it (when() returns that float) and an intrusive
// node of ringlet's timer wheel. While armed, the wheel's reference is one strong reference to the handle, so an
// armed timer can never be freed under the wheel; cancel() takes it off the wheel at once (O(1)), unlike
// asyncio's heap, which keeps cancelled timers until they surface.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstdint>

#include "ringlet/runtime/timer_wheel.hpp"

namespace ringlet::py {

struct HandleObject {
  PyObject_HEAD
  PyObject* callback;          // nullptr once cancelled (the references are dropped at once, as asyncio does)
  PyObject* args;              // a tuple
  PyObject* context;           // contextvars.Context
  PyObject* loop;              // the ringlet.Loop it belongs to
  PyObject* source_traceback;  // debug mode: where it was created, else nullptr
  bool cancelled;
};

struct TimerHandleObject;

// The wheel's node, pointing back at the handle that embeds it (TimerNode::on_fire gets only the node).
struct TimerSlot : TimerNode {
  TimerHandleObject* owner = nullptr;
};

struct TimerHandleObject : HandleObject {
  double when;               // exactly as given to call_at
  std::int64_t deadline_ns;  // the first CLOCK_MONOTONIC nanosecond at which loop.time() >= when
  TimerSlot slot;
  TimerHandleObject* prev_armed;  // the loop's list of armed timers (released when the loop closes)
  TimerHandleObject* next_armed;
};

extern PyTypeObject HandleType;
extern PyTypeObject TimerHandleType;

inline bool is_ringlet_handle(PyObject* o) noexcept {
  return Py_IS_TYPE(o, &HandleType) || Py_IS_TYPE(o, &TimerHandleType);
}

// New handles with one reference each. `args` and `context` are borrowed (the handle takes its own references).
HandleObject* handle_create(PyObject* callback, PyObject* args, PyObject* context, PyObject* loop);
TimerHandleObject* timer_handle_create(double when, std::int64_t deadline_ns, PyObject* callback, PyObject* args,
                                       PyObject* context, PyObject* loop);

// Runs the callback in its context. Returns 0 when the loop may go on (the callback returned, or raised and the
// exception handler took it), -1 with the exception set when it must propagate (SystemExit, KeyboardInterrupt,
// or a failing exception handler).
int handle_run(HandleObject* h);

// Marks the handle cancelled and drops its callback and arguments (not the timer's wheel reference: the loop
// does that, see loop_core.cpp).
void handle_mark_cancelled(HandleObject* h) noexcept;

int handle_types_ready(PyObject* module);

}  // namespace ringlet::py
