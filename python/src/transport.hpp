// transport.hpp — the hot paths of ringlet's stream transport (transport.cpp explains the split with
// ringlet/_transport.py). Core-local.
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ringlet::py {

// Registers WriteChain and the transport functions in the module.
int transport_ready(PyObject* module);

}  // namespace ringlet::py
