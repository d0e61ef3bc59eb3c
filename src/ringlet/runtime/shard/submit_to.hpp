// submit_to.hpp — the awaitable ways a task reaches another shard. Shard-local: awaited on a shard's own thread.
//
//   co_await submit_to(shard, fn)  runs fn() on `shard` and yields its result (fn may return a Task<R>, which then
//                                  runs there as a task). The caller waits for room when the ring is full.
//   co_await post_to(shard, fn)    the same without a result: resumes once the message is in the ring.
// Neither is cancellable: a message once accepted is delivered, and remote work is not undone. Code that is not a
// task uses Shard::send (shard_set.hpp), which never waits.
#pragma once

#include <coroutine>
#include <optional>
#include <type_traits>
#include <utility>

#include "ringlet/base/fatal.hpp"
#include "ringlet/runtime/shard/mailbox.hpp"
#include "ringlet/runtime/shard/message.hpp"
#include "ringlet/runtime/shard/shard_set.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

// Waits until fn's message is in `target`'s ring (there is room), then resumes. Not cancellable: a message once
// accepted is delivered. Yields nothing; fn runs later, on the target. Must be awaited on a shard.
class [[nodiscard]] PostTo final : detail::RoomWaiter {
 public:
  template <class F>
  PostTo(unsigned target, F&& fn) : target_(target), message_(std::forward<F>(fn)) {}

  bool await_ready() {
    Shard& self = *Shard::current();
    if (target_ == self.id()) {  // to ourselves: run it now
      message_.run();
      return true;
    }
    Shard::Outbound& out = self.outbound(target_);
    return self.try_push(out, message_);
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    Shard& self = *Shard::current();
    self.add_waiter(self.outbound(target_), this);
  }
  void await_resume() const noexcept {}

 private:
  void push_now(detail::Mailbox& mailbox) override {
    bool pushed = mailbox.ring.try_emplace(std::move(message_));
    RINGLET_ASSERT(pushed);
    Shard::current()->loop().schedule(waiter_);
  }
  unsigned target_;
  Message message_;
  std::coroutine_handle<> waiter_;
};

namespace detail {
template <class T>
struct TaskResult {
  using type = void;
  static constexpr bool is_task = false;
};
template <class T>
struct TaskResult<Task<T>> {
  using type = T;
  static constexpr bool is_task = true;
};
template <class F>
using SubmitResult = std::conditional_t<TaskResult<std::invoke_result_t<F&>>::is_task,
                                        typename TaskResult<std::invoke_result_t<F&>>::type, std::invoke_result_t<F&>>;
}  // namespace detail

// Runs fn on `target` and yields its result (fn returning Task<R> yields R). The awaiting task stays suspended
// until the answer is back; not cancellable (the remote work is not undone). Waits for room when the ring is full.
template <class R>
class [[nodiscard]] SubmitTo final : detail::RoomWaiter {
 public:
  template <class F>
  SubmitTo(unsigned target, F&& fn) : target_(target), source_(Shard::current()->id()) {
    using Fn = std::decay_t<F>;
    if constexpr (detail::TaskResult<std::invoke_result_t<Fn&>>::is_task) {
      message_.emplace([this, fn = Fn(std::forward<F>(fn))]() mutable {
        Shard::current()->loop().spawn(run_task(this, fn()));
      });
    } else {
      message_.emplace([this, fn = Fn(std::forward<F>(fn))]() mutable {
        if constexpr (std::is_void_v<R>) {
          fn();
        } else {
          result_.emplace(fn());
        }
        reply();
      });
    }
  }
  SubmitTo(const SubmitTo&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    Shard& self = *Shard::current();
    if (target_ == self.id()) {  // to ourselves: run it now (a task-returning fn becomes a local task)
      message_->run();
      return;
    }
    Shard::Outbound& out = self.outbound(target_);
    if (!self.try_push(out, *message_)) self.add_waiter(out, this);
  }
  R await_resume() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  template <class T>
  static Task<void> run_task(SubmitTo* self, Task<T> task) {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
    } else {
      self->result_.emplace(co_await std::move(task));
    }
    self->reply();
  }
  // On the target: hand the continuation back to the source shard (to the loop directly when it is us).
  void reply() {
    Shard& here = *Shard::current();
    if (here.id() == source_) {
      here.loop().schedule(waiter_);
      return;
    }
    std::coroutine_handle<> h = waiter_;
    here.send(source_, [h] { Shard::current()->loop().schedule(h); });
  }
  void push_now(detail::Mailbox& mailbox) override {
    bool pushed = mailbox.ring.try_emplace(std::move(*message_));
    RINGLET_ASSERT(pushed);
  }

  unsigned target_;
  unsigned source_;
  std::optional<Message> message_;
  std::conditional_t<std::is_void_v<R>, char, std::optional<std::conditional_t<std::is_void_v<R>, char, R>>> result_;
  std::coroutine_handle<> waiter_;
};

template <class F>
PostTo post_to(unsigned target, F&& fn) {
  return PostTo(target, std::forward<F>(fn));
}

template <class F>
SubmitTo<detail::SubmitResult<std::decay_t<F>>> submit_to(unsigned target, F&& fn) {
  return SubmitTo<detail::SubmitResult<std::decay_t<F>>>(target, std::forward<F>(fn));
}

}  // namespace ringlet
