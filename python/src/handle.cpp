// handle.cpp — Handle and TimerHandle (handle.hpp).
#include "handle.hpp"

#include <new>

#include "helpers.hpp"
#include "loop_core.hpp"

namespace ringlet::py {
namespace {

void handle_clear_refs(HandleObject* h) noexcept {
  Py_CLEAR(h->callback);
  Py_CLEAR(h->args);
  Py_CLEAR(h->context);
  Py_CLEAR(h->loop);
  Py_CLEAR(h->source_traceback);
}

int handle_traverse(PyObject* self, visitproc visit, void* arg) {
  auto* h = reinterpret_cast<HandleObject*>(self);
  Py_VISIT(h->callback);
  Py_VISIT(h->args);
  Py_VISIT(h->context);
  Py_VISIT(h->loop);
  Py_VISIT(h->source_traceback);
  return 0;
}

int handle_clear(PyObject* self) {
  handle_clear_refs(reinterpret_cast<HandleObject*>(self));
  return 0;
}

// An armed timer keeps its loop: the wheel is reached through it (cancel() from a finalizer during collection
// must still find it). The cycle loop -> armed timer -> loop is broken by the loop's tp_clear, which disarms.
int timer_handle_clear(PyObject* self) {
  auto* t = reinterpret_cast<TimerHandleObject*>(self);
  Py_CLEAR(t->callback);
  Py_CLEAR(t->args);
  Py_CLEAR(t->context);
  Py_CLEAR(t->source_traceback);
  if (!t->slot.armed()) Py_CLEAR(t->loop);
  return 0;
}

void handle_dealloc(PyObject* self) {
  PyObject_GC_UnTrack(self);
  handle_clear_refs(reinterpret_cast<HandleObject*>(self));
  PyObject_GC_Del(self);
}

void timer_handle_dealloc(PyObject* self) {
  auto* t = reinterpret_cast<TimerHandleObject*>(self);
  PyObject_GC_UnTrack(self);
  handle_clear_refs(t);
  // Armed timers are kept alive by the wheel's reference, so the node is never armed here.
  t->slot.~TimerSlot();
  PyObject_GC_Del(self);
}

bool init_fields(HandleObject* h, PyObject* callback, PyObject* args, PyObject* context, PyObject* loop) {
  h->callback = Py_NewRef(callback);
  h->args = Py_NewRef(args);
  h->context = nullptr;
  h->loop = Py_NewRef(loop);
  h->source_traceback = nullptr;
  h->cancelled = false;
  if (context == nullptr || context == Py_None) {
    h->context = PyContext_CopyCurrent();
    if (h->context == nullptr) return false;
  } else {
    h->context = Py_NewRef(context);
  }
  if (loop_core_debug(loop) && helpers().extract_stack != nullptr) {
    h->source_traceback = PyObject_CallNoArgs(helpers().extract_stack);
    if (h->source_traceback == nullptr) return false;
  }
  return true;
}

PyObject* handle_cancel(PyObject* self, PyObject*) {
  auto* h = reinterpret_cast<HandleObject*>(self);
  if (!h->cancelled) {
    if (Py_IS_TYPE(self, &TimerHandleType)) loop_core_timer_cancelled(reinterpret_cast<TimerHandleObject*>(h));
    handle_mark_cancelled(h);
  }
  Py_RETURN_NONE;
}

PyObject* handle_cancelled(PyObject* self, PyObject*) {
  return PyBool_FromLong(reinterpret_cast<HandleObject*>(self)->cancelled);
}

PyObject* handle_get_context(PyObject* self, PyObject*) {
  auto* h = reinterpret_cast<HandleObject*>(self);
  if (h->context == nullptr) Py_RETURN_NONE;
  return Py_NewRef(h->context);
}

PyObject* handle_py_run(PyObject* self, PyObject*) {
  if (handle_run(reinterpret_cast<HandleObject*>(self)) < 0) return nullptr;
  Py_RETURN_NONE;
}

PyObject* handle_repr(PyObject* self) {
  if (helpers().handle_repr == nullptr) return PyUnicode_FromFormat("<%s object at %p>", Py_TYPE(self)->tp_name, self);
  return PyObject_CallOneArg(helpers().handle_repr, self);
}

PyObject* get_or_none(PyObject* o) { return Py_NewRef(o != nullptr ? o : Py_None); }
PyObject* handle_get_callback(PyObject* self, void*) {
  return get_or_none(reinterpret_cast<HandleObject*>(self)->callback);
}
PyObject* handle_get_args(PyObject* self, void*) { return get_or_none(reinterpret_cast<HandleObject*>(self)->args); }
PyObject* handle_get_loop(PyObject* self, void*) { return get_or_none(reinterpret_cast<HandleObject*>(self)->loop); }
PyObject* handle_get_source_traceback(PyObject* self, void*) {
  return get_or_none(reinterpret_cast<HandleObject*>(self)->source_traceback);
}
PyObject* handle_get_cancelled(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<HandleObject*>(self)->cancelled);
}

PyMethodDef handle_methods[] = {
    {"cancel", handle_cancel, METH_NOARGS, "Cancel the call. A cancelled callback is never run."},
    {"cancelled", handle_cancelled, METH_NOARGS, "True once cancel() was called."},
    {"get_context", handle_get_context, METH_NOARGS, "The contextvars.Context the callback runs in."},
    {"_run", handle_py_run, METH_NOARGS, "Run the callback now (as the loop does)."},
    {nullptr, nullptr, 0, nullptr},
};

// The private attributes asyncio's own helpers read (format_helpers, base_events._format_handle, tests).
PyGetSetDef handle_getset[] = {
    {"_callback", handle_get_callback, nullptr, nullptr, nullptr},
    {"_args", handle_get_args, nullptr, nullptr, nullptr},
    {"_loop", handle_get_loop, nullptr, nullptr, nullptr},
    {"_source_traceback", handle_get_source_traceback, nullptr, nullptr, nullptr},
    {"_cancelled", handle_get_cancelled, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

PyObject* timer_when(PyObject* self, PyObject*) {
  return PyFloat_FromDouble(reinterpret_cast<TimerHandleObject*>(self)->when);
}
PyObject* timer_get_when(PyObject* self, void*) { return timer_when(self, nullptr); }
PyObject* timer_get_scheduled(PyObject* self, void*) {
  return PyBool_FromLong(reinterpret_cast<TimerHandleObject*>(self)->slot.armed());
}

PyMethodDef timer_methods[] = {
    {"when", timer_when, METH_NOARGS, "The loop.time() value the call is scheduled for, exactly as given."},
    {nullptr, nullptr, 0, nullptr},
};

PyGetSetDef timer_getset[] = {
    {"_when", timer_get_when, nullptr, nullptr, nullptr},
    {"_scheduled", timer_get_scheduled, nullptr, nullptr, nullptr},
    {nullptr, nullptr, nullptr, nullptr, nullptr},
};

// Ordering by when, as asyncio.TimerHandle orders; equality also compares callback, arguments and state.
PyObject* timer_richcompare(PyObject* a, PyObject* b, int op) {
  if (!PyObject_TypeCheck(b, &TimerHandleType)) Py_RETURN_NOTIMPLEMENTED;
  auto* x = reinterpret_cast<TimerHandleObject*>(a);
  auto* y = reinterpret_cast<TimerHandleObject*>(b);
  switch (op) {
    case Py_LT: return PyBool_FromLong(x->when < y->when);
    case Py_LE: return PyBool_FromLong(x->when < y->when || a == b || x->when == y->when);
    case Py_GT: return PyBool_FromLong(x->when > y->when);
    case Py_GE: return PyBool_FromLong(x->when > y->when || a == b || x->when == y->when);
    case Py_EQ:
    case Py_NE: {
      bool eq = a == b;
      if (!eq && x->when == y->when && x->callback == y->callback && x->cancelled == y->cancelled) {
        int r = x->args == y->args ? 1 : PyObject_RichCompareBool(x->args != nullptr ? x->args : Py_None,
                                                                   y->args != nullptr ? y->args : Py_None, Py_EQ);
        if (r < 0) return nullptr;
        eq = r == 1;
      }
      return PyBool_FromLong(op == Py_EQ ? eq : !eq);
    }
  }
  Py_RETURN_NOTIMPLEMENTED;
}

Py_hash_t timer_hash(PyObject* self) {
  PyObject* f = PyFloat_FromDouble(reinterpret_cast<TimerHandleObject*>(self)->when);
  if (f == nullptr) return -1;
  Py_hash_t h = PyObject_Hash(f);
  Py_DECREF(f);
  return h;
}

}  // namespace

PyTypeObject HandleType = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "ringlet.Handle";
  t.tp_basicsize = sizeof(HandleObject);
  t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  t.tp_doc = "A callback scheduled with call_soon (asyncio.Handle's interface).";
  t.tp_dealloc = handle_dealloc;
  t.tp_traverse = handle_traverse;
  t.tp_clear = handle_clear;
  t.tp_repr = handle_repr;
  t.tp_methods = handle_methods;
  t.tp_getset = handle_getset;
  return t;
}();

PyTypeObject TimerHandleType = [] {
  PyTypeObject t{PyVarObject_HEAD_INIT(nullptr, 0)};
  t.tp_name = "ringlet.TimerHandle";
  t.tp_basicsize = sizeof(TimerHandleObject);
  t.tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC;
  t.tp_doc = "A callback scheduled with call_later or call_at (asyncio.TimerHandle's interface).";
  t.tp_base = &HandleType;
  t.tp_dealloc = timer_handle_dealloc;
  t.tp_traverse = handle_traverse;
  t.tp_clear = timer_handle_clear;
  t.tp_repr = handle_repr;
  t.tp_richcompare = timer_richcompare;
  t.tp_hash = timer_hash;
  t.tp_methods = timer_methods;
  t.tp_getset = timer_getset;
  return t;
}();

HandleObject* handle_create(PyObject* callback, PyObject* args, PyObject* context, PyObject* loop) {
  HandleObject* h = PyObject_GC_New(HandleObject, &HandleType);
  if (h == nullptr) return nullptr;
  bool ok = init_fields(h, callback, args, context, loop);
  PyObject_GC_Track(h);
  if (!ok) {
    Py_DECREF(h);
    return nullptr;
  }
  return h;
}

TimerHandleObject* timer_handle_create(double when, std::int64_t deadline_ns, PyObject* callback, PyObject* args,
                                       PyObject* context, PyObject* loop) {
  TimerHandleObject* t = PyObject_GC_New(TimerHandleObject, &TimerHandleType);
  if (t == nullptr) return nullptr;
  new (&t->slot) TimerSlot();
  t->slot.owner = t;
  t->when = when;
  t->deadline_ns = deadline_ns;
  t->prev_armed = nullptr;
  t->next_armed = nullptr;
  bool ok = init_fields(t, callback, args, context, loop);
  PyObject_GC_Track(t);
  if (!ok) {
    Py_DECREF(t);
    return nullptr;
  }
  return t;
}

void handle_mark_cancelled(HandleObject* h) noexcept {
  h->cancelled = true;
  // As asyncio does: drop the references at once, so a cancelled timer does not keep a large closure alive.
  Py_CLEAR(h->callback);
  Py_CLEAR(h->args);
}

int handle_run(HandleObject* h) {
  if (h->cancelled || h->callback == nullptr) return 0;
  // Own references for the call: the callback may cancel its own handle, which drops the handle's.
  PyObject* callback = Py_NewRef(h->callback);
  PyObject* args = Py_NewRef(h->args);
  PyObject* context = Py_NewRef(h->context);
  PyObject* result = nullptr;
  if (PyContext_Enter(context) == 0) {
    result = PyObject_Vectorcall(callback, PySequence_Fast_ITEMS(args), PyTuple_GET_SIZE(args), nullptr);
    if (PyContext_Exit(context) < 0) Py_CLEAR(result);
  }
  int rc = 0;
  if (result != nullptr) {
    Py_DECREF(result);
  } else if (PyErr_ExceptionMatches(PyExc_SystemExit) || PyErr_ExceptionMatches(PyExc_KeyboardInterrupt)) {
    rc = -1;
  } else {
    PyObject* exc = take_raised_exception();
    PyObject* call_args[] = {h->loop, reinterpret_cast<PyObject*>(h), callback, args, exc};
    PyObject* r = helpers().callback_failed != nullptr
                      ? PyObject_Vectorcall(helpers().callback_failed, call_args, 5, nullptr)
                      : (PyErr_SetString(PyExc_RuntimeError, "ringlet: helpers not set"), nullptr);
    Py_XDECREF(exc);
    if (r == nullptr) {
      rc = -1;
    } else {
      Py_DECREF(r);
    }
  }
  Py_DECREF(callback);
  Py_DECREF(args);
  Py_DECREF(context);
  return rc;
}

int handle_types_ready(PyObject* module) {
  if (PyType_Ready(&HandleType) < 0 || PyType_Ready(&TimerHandleType) < 0) return -1;
  if (PyModule_AddObjectRef(module, "Handle", reinterpret_cast<PyObject*>(&HandleType)) < 0) return -1;
  if (PyModule_AddObjectRef(module, "TimerHandle", reinterpret_cast<PyObject*>(&TimerHandleType)) < 0) return -1;
  return 0;
}

}  // namespace ringlet::py
