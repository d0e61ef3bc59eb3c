// io_awaitable.hpp — awaiting one single-shot Operation from a task. Core-local.
//
// Contract for every awaitable built on it:
//  - Buffers named by the operation belong to the kernel from submission until the task resumes; the caller keeps
//    them alive (they usually live in the same coroutine frame).
//  - It can complete inline (epoll tried the syscall and it did not block): the task then does not suspend.
//  - Cancellation (task cancel or with_timeout) asks the backend to cancel; the task resumes only after the
//    kernel's final completion, with -ECANCELED or with the result that won the race (bytes are never lost).
//  - A task that is already cancelled does not submit at all: the result is -ECANCELED at once.
//  - The raw result is kernel-style: >= 0 on success, -errno on failure.
#pragma once

#include <coroutine>

#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/operation.hpp"

namespace ringlet {

class [[nodiscard]] IoAwaitable : public Operation {
 public:
  explicit IoAwaitable(Loop& loop) noexcept : loop_(&loop) { on_complete = &IoAwaitable::complete; }
  IoAwaitable(IoAwaitable&& o) noexcept : Operation(o), loop_(o.loop_) {
    RINGLET_ASSERT(o.state == State::idle);  // only an op not yet started may move
  }
  IoAwaitable(const IoAwaitable&) = delete;
  IoAwaitable& operator=(const IoAwaitable&) = delete;

  bool await_ready() const noexcept { return false; }

  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    CancelState* cs = nullptr;
    if (cancelled_before_suspend(h, cs)) {
      result = -ECANCELED;
      return false;
    }
    if (loop_->backend().submit(*this)) return false;
    waiter_ = h;
    cancel_ = cs;
    if (cs != nullptr) cs->install(&IoAwaitable::cancel_slot, this);
    return true;
  }

  int await_resume() noexcept {
    if (cancel_ != nullptr) cancel_->clear();
    return result;
  }

  Loop& loop() const noexcept { return *loop_; }

 protected:
  static void complete(Operation& op, int res, std::uint32_t) noexcept {
    auto& self = static_cast<IoAwaitable&>(op);
    self.result = res;
    self.loop_->schedule(self.waiter_);
  }
  static void cancel_slot(void* ctx) noexcept {
    auto* self = static_cast<IoAwaitable*>(ctx);
    self->loop_->backend().cancel(*self);
  }

  Loop* loop_;
  std::coroutine_handle<> waiter_;
  CancelState* cancel_ = nullptr;
};

// The same, with the result as Result<std::size_t> (byte counts, descriptors).
class [[nodiscard]] SizeAwaitable : public IoAwaitable {
 public:
  using IoAwaitable::IoAwaitable;
  Result<std::size_t> await_resume() noexcept {
    int r = IoAwaitable::await_resume();
    if (r < 0) return error_from_result(r);
    return static_cast<std::size_t>(r);
  }
};

}  // namespace ringlet
