// module.cpp — ringlet._core: the extension module. Registers the C types (Handle, TimerHandle, LoopCore,
// WriteChain) and the transport functions,
// and takes the Python helpers the cold paths call (helpers.hpp). The package ringlet/ wraps it.
#include "handle.hpp"
#include "helpers.hpp"
#include "loop_core.hpp"
#include "transport.hpp"

namespace ringlet::py {
namespace {

Helpers g_helpers;  // set once at import; the types are process-wide too, as every extension's are

PyObject* set_helpers(PyObject*, PyObject* args, PyObject* kwargs) {
  static const char* names[] = {"handle_repr", "callback_failed", "debug_check", "extract_stack", "slow_callback",
                                "future_type", nullptr};
  PyObject *repr, *failed, *check, *stack, *slow, *future;
  if (!PyArg_ParseTupleAndKeywords(args, kwargs, "OOOOOO:_set_helpers", const_cast<char**>(names), &repr, &failed,
                                   &check, &stack, &slow, &future)) {
    return nullptr;
  }
  Py_XSETREF(g_helpers.handle_repr, Py_NewRef(repr));
  Py_XSETREF(g_helpers.callback_failed, Py_NewRef(failed));
  Py_XSETREF(g_helpers.debug_check, Py_NewRef(check));
  Py_XSETREF(g_helpers.extract_stack, Py_NewRef(stack));
  Py_XSETREF(g_helpers.slow_callback, Py_NewRef(slow));
  Py_XSETREF(g_helpers.future_type, Py_NewRef(future));
  Py_RETURN_NONE;
}

PyMethodDef module_methods[] = {
    {"_set_helpers", reinterpret_cast<PyCFunction>(reinterpret_cast<void (*)()>(set_helpers)),
     METH_VARARGS | METH_KEYWORDS, "Install the Python helpers of the cold paths (ringlet/_loop.py does)."},
    {nullptr, nullptr, 0, nullptr},
};

PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "ringlet._core", "The C++ core of ringlet's asyncio event loop.", -1, module_methods,
    nullptr, nullptr, nullptr, nullptr,
};

bool intern(PyObject*& slot, const char* text) {
  slot = PyUnicode_InternFromString(text);
  return slot != nullptr;
}

}  // namespace

Helpers& helpers() noexcept { return g_helpers; }

}  // namespace ringlet::py

PyMODINIT_FUNC PyInit__core() {
  using namespace ringlet::py;
  Helpers& h = helpers();
  if (!intern(h.str_stopping, "_stopping") || !intern(h.str_cancelled, "_cancelled") || !intern(h.str_run, "_run") ||
      !intern(h.str_slow_callback_duration, "slow_callback_duration") ||
      !intern(h.str_current_handle, "_current_handle") || !intern(h.str_debug, "_debug")) {
    return nullptr;
  }
  h.kwnames_loop = Py_BuildValue("(s)", "loop");
  if (h.kwnames_loop == nullptr) return nullptr;
  PyObject* m = PyModule_Create(&module_def);
  if (m == nullptr) return nullptr;
  if (handle_types_ready(m) < 0 || loop_core_type_ready(m) < 0 || transport_ready(m) < 0) {
    Py_DECREF(m);
    return nullptr;
  }
  return m;
}
