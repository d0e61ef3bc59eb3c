// cancel.hpp — how cancellation reaches whatever a task is suspended on. Core-local.
//
// Every task promise owns a CancelState. While a task is suspended, the awaitable it waits on may install a
// cancel slot: a function that asks that awaitable to finish early (an I/O operation asks the kernel to cancel
// it; a timer stops; a child task is cancelled in turn). The slot only *requests*: the awaitable still completes
// through its normal path, and an I/O buffer is only released after the kernel has returned it.
//
// request() is sticky: once a task is cancelled, every later await fails fast with errc::cancelled, so the task
// unwinds. fire_slot() cancels only the current wait and is what with_timeout uses.
#pragma once

#include <concepts>
#include <coroutine>

namespace ringlet {

class CancelState {
 public:
  using SlotFn = void (*)(void* ctx) noexcept;

  bool requested() const noexcept { return requested_; }

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

  void install(SlotFn fn, void* ctx) noexcept {
    fn_ = fn;
    ctx_ = ctx;
  }
  void clear() noexcept { fn_ = nullptr; }

 private:
  bool requested_ = false;
  SlotFn fn_ = nullptr;
  void* ctx_ = nullptr;
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

}  // namespace ringlet
