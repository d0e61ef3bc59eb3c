// helpers.hpp — the few Python functions the C types call on cold paths (repr, error reports, debug checks), and
// the interned attribute names they look up. Set once when the package imports (ringlet/_loop.py calls
// _core._set_helpers); read with the GIL held.
//
// These paths format text with asyncio.format_helpers or log through asyncio's logger, so the messages a user
// sees are asyncio's own, word for word; writing them in C would only copy that code and drift from it.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ringlet::py {

struct Helpers {
  PyObject* handle_repr = nullptr;      // (handle) -> str
  PyObject* callback_failed = nullptr;  // (loop, handle, callback, args, exc): calls loop.call_exception_handler
  PyObject* debug_check = nullptr;      // (loop, callback, method, threadsafe): asyncio's debug-mode checks
  PyObject* extract_stack = nullptr;    // () -> the caller's stack, as asyncio records it in debug mode
  PyObject* slow_callback = nullptr;    // (loop, handle, seconds): the "Executing ... took" warning
  PyObject* future_type = nullptr;      // asyncio.Future, which loop.create_future() makes

  // Interned attribute names.
  PyObject* str_stopping = nullptr;
  PyObject* str_cancelled = nullptr;
  PyObject* str_run = nullptr;
  PyObject* str_slow_callback_duration = nullptr;
  PyObject* str_current_handle = nullptr;
  PyObject* str_debug = nullptr;
  PyObject* kwnames_loop = nullptr;  // ("loop",)
};

Helpers& helpers() noexcept;

// Python 3.11 has no PyErr_GetRaisedException; both return the normalized exception with its traceback attached.
inline PyObject* take_raised_exception() noexcept {
#if PY_VERSION_HEX >= 0x030C0000
  return PyErr_GetRaisedException();
#else
  PyObject *type, *value, *tb;
  PyErr_Fetch(&type, &value, &tb);
  PyErr_NormalizeException(&type, &value, &tb);
  if (tb != nullptr && value != nullptr) PyException_SetTraceback(value, tb);
  Py_XDECREF(type);
  Py_XDECREF(tb);
  return value;
#endif
}

}  // namespace ringlet::py
