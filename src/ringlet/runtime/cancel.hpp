// cancel.hpp — how cancellation reaches whatever a task is suspended on. Core-local.
//
// Every task promise owns a CancelState. While a task is suspended, the awaitable it waits on may install a
// cancel slot: a function that asks that awaitable to finish early (an I/O operation asks the kernel to cancel
// it; a timer stops; a child task is cancelled in turn). The slot only *requests*: the awaitable still completes
// through its normal path, and an I/O buffer is only released after the kernel has returned it.
//
// request() is sticky: once a task is cancelled, every later await fails fast with errc::cancelled, so the task
// unwinds. fire_slot() cancels only the current wait and is what with_timeout uses.
//
// request_drain() is the gentle form, used by a graceful stop: it ends only *input* waits (a stream waiting for
// bytes, a listener waiting for a connection), which then report end of input; a task in the middle of work
// (writing a reply) is left alone, and sees end of input the next time it waits for some.
#pragma once

#include <concepts>
#include <coroutine>

namespace ringlet {

enum class WaitKind : bool { other = false, input = true };

class CancelState {
 public:
  using SlotFn = void (*)(void* ctx) noexcept;

  bool requested() const noexcept { return requested_; }
  bool drain_requested() const noexcept { return drain_requested_; }

  void request_drain() noexcept {
    drain_requested_ = true;
    if (slot_kind_ == WaitKind::input) fire_slot();
  }

  void request() noexcept {
    if (requested_) return;
    requested_ = true;
    fire_slot();
  }

  void fire_slot() noexcept {
    if (fn_ == nullptr) return;
    SlotFn fn = fn_;
    fn_ = nullptr;  // one-shot: an awaitable is cancelled at most once per wait
    fn(ctx_);
  }

  void install(SlotFn fn, void* ctx, WaitKind kind = WaitKind::other) noexcept {
    fn_ = fn;
    ctx_ = ctx;
    slot_kind_ = kind;
  }
  void clear() noexcept { fn_ = nullptr; }

 private:
  SlotFn fn_ = nullptr;
  void* ctx_ = nullptr;
  bool requested_ = false;
  bool drain_requested_ = false;
  WaitKind slot_kind_ = WaitKind::other;  // the flags last, so a promise can reuse the tail padding
};

// Implemented by promises whose tasks can be cancelled; awaitables use it to find the slot.
template <class P>
concept Cancellable = requires(P& p) {
  { p.cancel_state() } -> std::same_as<CancelState&>;
};

// The cancel state of the coroutine behind `h`, or nullptr for foreign coroutines.
template <class P>
CancelState* cancel_state_of(std::coroutine_handle<P> h) noexcept {
  if constexpr (Cancellable<P>) {
    return &h.promise().cancel_state();
  } else {
    return nullptr;
  }
}

// The check every awaitable's await_suspend starts with: sets `cs` to the awaiting task's cancel state (nullptr for
// a foreign coroutine) and returns true when that task is already cancelled. The awaitable then starts nothing and
// reports errc::cancelled (or its own form of it) without suspending.
template <class P>
bool cancelled_before_suspend(std::coroutine_handle<P> h, CancelState*& cs) noexcept {
  cs = cancel_state_of(h);
  return cs != nullptr && cs->requested();
}

}  // namespace ringlet
