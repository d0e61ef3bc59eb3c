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
//                       io_uring a transport's reader is a multishot receive instead, armed once and kept armed,
//                       its bytes kept for the transport (transport.hpp)
//   2. wait           — one backend wait: 0 when callbacks are ready or the loop is stopping, else until the
//                       next timer; the GIL is released while it may block. A wait that may block after the turn
//                       started sends first submits them and delivers their completions without blocking, and
//                       blocks only if that made no work (submit_before_sleeping)
//   3. deliver        — each fired watcher queues its callback once; each transport operation that completed
//                       (io_uring: a write's send, transport.cpp) is finished
//   4. expire timers  — every timer with loop.time() >= when queues its callback, in `when` order
//   5. run ready      — the callbacks queued before this phase began, each once (one queued meanwhile waits a turn)
#pragma once

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <cstddef>

#include "ringlet/runtime/operation.hpp"

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

// An operation a transport starts on the loop's backend (transport.cpp's sends on io_uring). The core keeps each
// one on its in-flight list until the completion, which it hands to `deliver` in the deliver phase (with the GIL,
// like a fired watcher). When the core loses its backend (close, fork, a run on another thread) no completion
// will come: it calls `abandon` instead, for each op still in flight or completed but not yet delivered.
struct CoreOp : ringlet::Operation {
  void (*deliver)(CoreOp* op, int result) = nullptr;
  void (*abandon)(CoreOp* op) = nullptr;
  std::size_t held = 0;  // bytes of Python memory the op keeps alive until it completes (kMaxHeldBytes)
  Core* core = nullptr;
  CoreOp* prev = nullptr;  // the core's in-flight list
  CoreOp* next = nullptr;
};

// The most bytes the loop's ops in flight may keep alive at once (CoreOp::held), and the most one op may. Why
// bounds: what they hold was allocated during the turn and is freed together after the wait. glibc keeps
// M_TOP_PAD (128 KiB by default) free above the heap's top when it grows or trims it; a turn whose held bytes fit
// in that slack neither grows the heap nor leaves a top over the trim threshold (also 128 KiB) to give back. Past
// it, every turn gives pages back (brk) and faults them in again: 100 KiB echo messages, held by their sends, cost
// ~20x the CPU of sending each at once (brk twice a message in strace); 64 KiB ones with a 256 KiB total, brk
// every few messages. 112 KiB leaves the turn's other allocations 16 KiB of the slack and holds ten 10 KiB
// replies (10 KiB echo over ten connections: under the old 64 KiB total, four of ten went out as a sendto(2)
// each, ~40% of the messages). One op holds at most 64 KiB: a bigger write is sent at once (its bytes are freed
// before the next is received, so the heap reuses them).
constexpr std::size_t kMaxHeldBytes = 112 * 1024;
constexpr std::size_t kMaxHeldPerOp = 64 * 1024;

// Starts `op` on `loop`'s backend when that is io_uring, created on this thread, and what it holds fits in
// kMaxHeldPerOp and kMaxHeldBytes: 1 when started, 0 when not (the caller does the work itself, as on epoll).
int loop_core_start(PyObject* loop, CoreOp* op) noexcept;

int loop_core_type_ready(PyObject* module);

}  // namespace ringlet::py
