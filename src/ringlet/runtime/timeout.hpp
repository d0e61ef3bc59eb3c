// timeout.hpp — sleeping, and a deadline on any awaitable. Core-local.
//
// with_timeout(awaitable, duration) runs the awaitable; if the duration passes first, it cancels that awaitable
// through the task's cancel slot and waits for it to finish (an I/O op only finishes once the kernel returned its
// buffer). The outcome:
//  - the awaitable's own result when it finished first, or when it finished successfully despite the timer (a
//    read that raced its timeout returns its bytes: no data is lost);
//  - errc::timed_out when the timer fired and the awaitable ended cancelled.
// It works with every ringlet awaitable (I/O, sleep, tasks, join handles, channels, events), because they all
// install a cancel slot while suspended. Results that are not Result<T> come back wrapped in Result<T>.
#pragma once

#include <chrono>
#include <coroutine>
#include <type_traits>
#include <utility>

#include "ringlet/runtime/loop.hpp"

namespace ringlet {

using Duration = std::chrono::nanoseconds;

// Suspends the task until the loop's clock reaches deadline_ns. Returns errc::cancelled when cancelled first.
class [[nodiscard]] SleepAwaitable : TimerNode {
 public:
  SleepAwaitable(Loop& loop, std::int64_t deadline_ns) noexcept : loop_(&loop), deadline_(deadline_ns) {
    on_fire = &SleepAwaitable::fired;
  }
  SleepAwaitable(SleepAwaitable&& o) noexcept : TimerNode(), loop_(o.loop_), deadline_(o.deadline_) {
    on_fire = &SleepAwaitable::fired;
  }
  ~SleepAwaitable() { loop_->timers().stop(*this); }

  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    CancelState* cs = nullptr;
    if (cancelled_before_suspend(h, cs)) {
      cancelled_ = true;
      return false;
    }
    waiter_ = h;
    cancel_ = cs;
    loop_->timers().start(*this, deadline_);
    if (cs != nullptr) cs->install(&SleepAwaitable::cancel_slot, this);
    return true;
  }
  Status await_resume() noexcept {
    if (cancel_ != nullptr) cancel_->clear();
    return cancelled_ ? Status{errc::cancelled} : Status{};
  }

 private:
  static void fired(TimerNode* node) {
    auto* self = static_cast<SleepAwaitable*>(node);
    self->loop_->schedule(self->waiter_);
  }
  static void cancel_slot(void* ctx) noexcept {
    auto* self = static_cast<SleepAwaitable*>(ctx);
    if (!self->armed()) return;  // already fired: the task is scheduled
    self->loop_->timers().stop(*self);
    self->cancelled_ = true;
    self->loop_->schedule(self->waiter_);
  }

  Loop* loop_;
  std::int64_t deadline_;
  std::coroutine_handle<> waiter_;
  CancelState* cancel_ = nullptr;
  bool cancelled_ = false;
};

inline SleepAwaitable sleep_until(std::int64_t deadline_ns) {
  Loop& loop = *Loop::current();
  return SleepAwaitable(loop, deadline_ns);
}
inline SleepAwaitable sleep_for(Duration d) {
  Loop& loop = *Loop::current();
  return SleepAwaitable(loop, loop.clock().now_ns() + d.count());
}

namespace detail {

template <class A>
auto get_awaiter(A&& a) {
  if constexpr (requires { std::forward<A>(a).operator co_await(); }) {
    return std::forward<A>(a).operator co_await();
  } else {
    return std::forward<A>(a);
  }
}

template <class T>
struct IsResult : std::false_type {};
template <class T>
struct IsResult<Result<T>> : std::true_type {};

template <class R>
using TimeoutResult = std::conditional_t<IsResult<R>::value, R, Result<std::conditional_t<std::is_void_v<R>, std::monostate, R>>>;

}  // namespace detail

template <class Awaiter>
class [[nodiscard]] WithTimeout : TimerNode {
  using Inner = decltype(std::declval<Awaiter&>().await_resume());
  using Out = detail::TimeoutResult<Inner>;

 public:
  WithTimeout(Awaiter inner, Loop& loop, std::int64_t deadline_ns)
      : inner_(std::move(inner)), loop_(&loop), deadline_(deadline_ns) {
    on_fire = &WithTimeout::fired;
  }
  WithTimeout(WithTimeout&& o) noexcept
      : TimerNode(), inner_(std::move(o.inner_)), loop_(o.loop_), deadline_(o.deadline_) {
    on_fire = &WithTimeout::fired;
  }
  ~WithTimeout() { loop_->timers().stop(*this); }

  bool await_ready() { return inner_.await_ready(); }

  template <class P>
  auto await_suspend(std::coroutine_handle<P> h) {
    cancel_ = cancel_state_of(h);
    loop_->timers().start(*this, deadline_);
    return inner_.await_suspend(h);
  }

  Out await_resume() {
    loop_->timers().stop(*this);
    if constexpr (std::is_void_v<Inner>) {
      inner_.await_resume();
      if (fired_) return Out{errc::timed_out};
      return Out{std::monostate{}};
    } else if constexpr (detail::IsResult<Inner>::value) {
      Inner r = inner_.await_resume();
      if (fired_ && !r.ok() && r.error() == errc::cancelled) return Out{errc::timed_out};
      return r;
    } else {
      Inner r = inner_.await_resume();
      if (fired_) return Out{errc::timed_out};
      return Out{std::move(r)};
    }
  }

 private:
  static void fired(TimerNode* node) {
    auto* self = static_cast<WithTimeout*>(node);
    self->fired_ = true;
    if (self->cancel_ != nullptr) self->cancel_->fire_slot();
  }

  Awaiter inner_;
  Loop* loop_;
  std::int64_t deadline_;
  CancelState* cancel_ = nullptr;
  bool fired_ = false;
};

template <class A>
auto with_timeout(A&& awaitable, Duration d) {
  Loop& loop = *Loop::current();
  using Awaiter = decltype(detail::get_awaiter(std::forward<A>(awaitable)));
  return WithTimeout<Awaiter>(detail::get_awaiter(std::forward<A>(awaitable)), loop, loop.clock().now_ns() + d.count());
}

}  // namespace ringlet
