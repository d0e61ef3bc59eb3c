// loop_core.hpp — ringlet._core.LoopCore: the C half of ringlet.Loop. Core-local (one loop, the GIL held),
// except call_soon_threadsafe, which any thread may call.
//
// ringlet.Loop (ringlet/_loop.py) derives from LoopCore and from asyncio's Unix selector loop. Everything a loop
// does on every turn lives here, in C++: the ready queue, the timers (ringlet's timer wheel), readiness watchers
// (add_reader/add_writer as poll operations on ringlet's backend, io_uring or epoll) and the iteration itself
// (_run_once). asyncio's Python classes keep what runs once per connection or per call of a high-level API:
// run_forever's set-up, futures and tasks, servers, executors, signals, the per-connection parts of transports
// (their per-message paths are transport.cpp's). Their methods reach the C half through the private names
// asyncio's loops call on themselves (_run_once, _add_reader, _add_callback, ...).
//
// One iteration (_run_once), in asyncio's order:
//   1. arm watchers   — poll operations for readers and writers whose callbacks ran since their last event
//                       (level-triggered, like a selector: still readable means called again next turn); on
//                       io_uring a transport's reader is a receive instead, its bytes kept for the transport
//                       (transport.hpp)
//   2. wait           — one backend wait: 0 when callbacks are ready or the loop is stopping, else until the
//                       next timer; the GIL is released while it may block
//   3. deliver        — each fired watcher queues its callback once
//   4. expire timers  — every timer with loop.time() >= when queues its callback, in `when` order
//   5. run ready      — the callbacks queued before this phase began, each once (one queued meanwhile waits a turn)
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

namespace ringlet::py {

struct Core;
struct TimerHandleObject;

struct LoopCoreObject {
  PyObject_HEAD
  Core* core;
};

extern PyTypeObject LoopCoreType;

// Whether `loop` (a LoopCore) is in asyncio debug mode.
bool loop_core_debug(PyObject* loop) noexcept;
// A timer handle was cancelled: take it off the wheel now.
void loop_core_timer_cancelled(TimerHandleObject* t) noexcept;

int loop_core_type_ready(PyObject* module);

}  // namespace ringlet::py
