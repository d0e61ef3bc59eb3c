// task.hpp — Task<T>: a lazily started coroutine returning T, and JoinHandle<T> for spawned tasks. Core-local.
//
// A Task starts when it is awaited (symmetric transfer into it, and back to the awaiter at its end) or when it is
// spawned on a loop (Loop::spawn / spawn_joinable): then it is a *root* task, registered with the loop so the loop
// can count, cancel and wait for it at shutdown.
//
// Cancellation flows down: awaiting a child task (or a join handle) installs a slot in the awaiter that cancels the
// child, and the child's own awaits do the same for their operations. See cancel.hpp.
//
// Frames come from FramePool (no malloc per task in steady state). Spawn named coroutine functions with
// parameters by value; never capturing lambdas (their captures die before the coroutine does).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "ringlet/runtime/cancel.hpp"
#include "ringlet/base/fatal.hpp"
#include "ringlet/runtime/frame_pool.hpp"
#include "ringlet/runtime/intrusive_list.hpp"

namespace ringlet {

template <class T = void>
class Task;
template <class T>
class JoinHandle;
class TaskRegistry;

namespace detail {

enum class TaskKind : unsigned char { child, detached, joinable };

class PromiseBase {
 public:
  static void* operator new(std::size_t size) { return FramePool::allocate(size); }
  static void operator delete(void* p, std::size_t size) noexcept { FramePool::deallocate(p, size); }

  std::suspend_always initial_suspend() const noexcept { return {}; }
  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  CancelState& cancel_state() noexcept { return cancel_; }
  bool done() const noexcept { return done_; }
  void set_kind(TaskKind kind) noexcept { kind_ = kind; }

 protected:
  friend class ringlet::TaskRegistry;
  template <class>
  friend class ringlet::JoinHandle;
  template <class>
  friend class ringlet::Task;
  friend struct FinalAwaiter;

  void rethrow_if_failed() {
    if (exception_) std::rethrow_exception(std::exchange(exception_, nullptr));
  }

  std::coroutine_handle<> continuation_;  // the awaiter (child) or the joiner (joinable root)
  std::exception_ptr exception_;
  // kind_ and done_ sit in cancel_'s tail padding: a frame per connection, so its bytes count.
  [[no_unique_address]] CancelState cancel_;
  TaskKind kind_ = TaskKind::child;
  bool done_ = false;
  // Root-task registration (intrusive list owned by the loop's TaskRegistry).
  TaskRegistry* registry_ = nullptr;
  ListLink<PromiseBase> link_;
};

struct FinalAwaiter {
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept;
  void await_resume() const noexcept {}
};

template <class T>
class Promise : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  FinalAwaiter final_suspend() const noexcept { return {}; }
  template <class U>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    rethrow_if_failed();
    RINGLET_ASSERT(value_.has_value());
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  FinalAwaiter final_suspend() const noexcept { return {}; }
  void return_void() noexcept {}
  void take() { rethrow_if_failed(); }
};

}  // namespace detail

// A set of root tasks: the loop's own, or a group inside it (a server's connections). Core-local.
// A group counts toward its parent (the loop's live_tasks() includes every group) and is reached by the parent's
// cancel_all(). The tasks link through their promises, so tracking a task costs no memory of its own.
class TaskRegistry {
 public:
  TaskRegistry() = default;
  // A group inside `parent`; it must be empty when destroyed.
  explicit TaskRegistry(TaskRegistry& parent) noexcept;
  ~TaskRegistry();
  TaskRegistry(const TaskRegistry&) = delete;
  TaskRegistry& operator=(const TaskRegistry&) = delete;

  std::size_t size() const noexcept { return total_; }  // this registry's tasks and its groups'
  void cancel_all() noexcept;
  void drain_all() noexcept;  // request_drain() on every task (see cancel.hpp)
  // Called when the count drops to zero (a graceful stop waiting for its connections).
  void on_empty(void (*fn)(void*) noexcept, void* ctx) noexcept {
    on_empty_ = fn;
    on_empty_ctx_ = ctx;
  }

  void add(detail::PromiseBase& p) noexcept;
  void remove(detail::PromiseBase& p) noexcept;
  // Called when a detached task ends by an exception: logs it (the process keeps serving).
  static void report_detached_failure(std::exception_ptr e) noexcept;

 private:
  void adjust_total(long delta) noexcept;

  IntrusiveList<detail::PromiseBase, &detail::PromiseBase::link_> tasks_;
  std::size_t total_ = 0;
  TaskRegistry* parent_ = nullptr;
  TaskRegistry* first_group_ = nullptr;
  TaskRegistry* next_group_ = nullptr;
  void (*on_empty_)(void*) noexcept = nullptr;
  void* on_empty_ctx_ = nullptr;
};

template <class T>
class [[nodiscard]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using Handle = std::coroutine_handle<promise_type>;

  Task() = default;
  explicit Task(Handle h) noexcept : h_(h) {}
  Task(Task&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  Task& operator=(Task&& o) noexcept {
    if (this != &o) {
      reset();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~Task() { reset(); }

  bool valid() const noexcept { return static_cast<bool>(h_); }
  Handle release() noexcept { return std::exchange(h_, nullptr); }

  // Awaiting a task starts it and resumes the awaiter when it ends. Cancelling the awaiter cancels the task.
  class Awaiter {
   public:
    // The awaiter owns the task's frame from here on, so `with_timeout(some_task(), d)` stays valid even when
    // the Task temporary is gone; the frame is freed when the awaiter is.
    explicit Awaiter(Handle h) noexcept : h_(h) {}
    Awaiter(Awaiter&& o) noexcept : h_(std::exchange(o.h_, nullptr)), parent_(o.parent_) {}
    Awaiter(const Awaiter&) = delete;
    ~Awaiter() {
      if (h_) h_.destroy();
    }
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> awaiter) noexcept {
      h_.promise().continuation_ = awaiter;
      if (CancelState* cs = cancel_state_of(awaiter)) {
        if (cs->requested()) h_.promise().cancel_.request();
        cs->install(&cancel_child, h_.address());
        parent_ = cs;
      }
      return h_;
    }
    T await_resume() {
      if (parent_ != nullptr) parent_->clear();
      return h_.promise().take();
    }

   private:
    static void cancel_child(void* ctx) noexcept {
      Handle::from_address(ctx).promise().cancel_.request();
    }
    Handle h_;
    CancelState* parent_ = nullptr;
  };

  Awaiter operator co_await() && noexcept {
    RINGLET_ASSERT(h_ && !h_.promise().done_);
    return Awaiter{std::exchange(h_, nullptr)};
  }

 private:
  void reset() noexcept {
    if (h_) h_.destroy();  // a child task is either never started or finished when its Task dies
    h_ = nullptr;
  }
  Handle h_;
};

// A spawned task's result, awaitable once. Destroying the handle detaches the task (it keeps running).
// Awaiting it from a task that gets cancelled cancels the spawned task and waits for it to end.
template <class T>
class [[nodiscard]] JoinHandle {
 public:
  using Handle = std::coroutine_handle<detail::Promise<T>>;

  JoinHandle() = default;
  explicit JoinHandle(Handle h) noexcept : h_(h) {}
  JoinHandle(JoinHandle&& o) noexcept : h_(std::exchange(o.h_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      detach();
      h_ = std::exchange(o.h_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() { detach(); }

  bool valid() const noexcept { return static_cast<bool>(h_); }
  bool done() const noexcept { return h_ && h_.promise().done_; }
  void cancel() noexcept {
    if (h_ && !h_.promise().done_) h_.promise().cancel_.request();
  }
  // Lets the task run on by itself; it frees itself when it ends.
  void detach() noexcept {
    if (!h_) return;
    if (h_.promise().done_) {
      h_.destroy();
    } else {
      h_.promise().kind_ = detail::TaskKind::detached;
    }
    h_ = nullptr;
  }

  class Awaiter {
   public:
    explicit Awaiter(JoinHandle& j) noexcept : j_(j) {}
    bool await_ready() const noexcept { return j_.h_.promise().done_; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> awaiter) noexcept {
      auto& p = j_.h_.promise();
      RINGLET_ASSERT(!p.continuation_);
      p.continuation_ = awaiter;
      if (CancelState* cs = cancel_state_of(awaiter)) {
        if (cs->requested()) p.cancel_.request();
        cs->install(&cancel_task, j_.h_.address());
        parent_ = cs;
      }
      return true;
    }
    T await_resume() {
      if (parent_ != nullptr) parent_->clear();
      Handle h = std::exchange(j_.h_, nullptr);
      struct Destroy {
        Handle h;
        ~Destroy() { h.destroy(); }
      } destroy{h};
      return h.promise().take();
    }

   private:
    static void cancel_task(void* ctx) noexcept { Handle::from_address(ctx).promise().cancel_.request(); }
    JoinHandle& j_;
    CancelState* parent_ = nullptr;
  };

  Awaiter operator co_await() & noexcept {
    RINGLET_ASSERT(h_);
    return Awaiter{*this};
  }
  Awaiter operator co_await() && noexcept {
    RINGLET_ASSERT(h_);
    return Awaiter{*this};
  }

 private:
  Handle h_;
};

// `co_await as_input_wait(child())`: awaits a child task that reads on the awaiter's behalf (a TLS record reader,
// a connection's command loop behind a handshake). A plain child only hears cancel; this one also hears a
// graceful stop's drain request (cancel.hpp), which it forwards, so the input waits inside the child end with end
// of input as they would in the awaiter itself. Cancel and timeouts reach the child as with a plain await.
template <class T>
class [[nodiscard]] InputWait {
 public:
  explicit InputWait(Task<T> task) noexcept : inner_(std::move(task).operator co_await()) {}
  bool await_ready() const noexcept { return false; }
  template <class P>
  std::coroutine_handle<> await_suspend(std::coroutine_handle<P> h) noexcept {
    std::coroutine_handle<> child = inner_.await_suspend(h);
    child_ = &Task<T>::Handle::from_address(child.address()).promise().cancel_state();
    if (CancelState* cs = cancel_state_of(h)) {
      if (cs->drain_requested()) child_->request_drain();  // it sees the drain at its first input wait
      parent_ = cs;
      cs->install(&InputWait::forward, this, WaitKind::input);  // replaces the plain child slot
    }
    return child;
  }
  T await_resume() { return inner_.await_resume(); }  // the inner awaiter clears the slot

 private:
  static void forward(void* ctx) noexcept {
    auto* self = static_cast<InputWait*>(ctx);
    if (self->parent_->drain_requested() && !self->parent_->requested() && !self->drained_) {
      self->drained_ = true;
      // A slot fires once: install it again so that a later cancel (a stop's timeout) still reaches the child.
      self->parent_->install(&InputWait::forward, self, WaitKind::input);
      self->child_->request_drain();
      return;
    }
    self->child_->request();
  }
  typename Task<T>::Awaiter inner_;
  CancelState* child_ = nullptr;
  CancelState* parent_ = nullptr;
  bool drained_ = false;
};

template <class T>
InputWait<T> as_input_wait(Task<T> task) noexcept {
  return InputWait<T>(std::move(task));
}

// `CancelState& cs = co_await this_task_cancel_state();` — the running task's own cancel state, without
// suspending; lets a supervisor (a server tracking its connections) cancel the task later via cs.request().
struct [[nodiscard]] ThisTaskCancelState {
  CancelState* state = nullptr;
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) noexcept {
    state = cancel_state_of(h);
    return false;
  }
  CancelState& await_resume() const noexcept { return *state; }
};
inline ThisTaskCancelState this_task_cancel_state() noexcept { return {}; }

// ---- implementation ----------------------------------------------------------------------------------------

namespace detail {

template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>{std::coroutine_handle<Promise<T>>::from_promise(*this)};
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>{std::coroutine_handle<Promise<void>>::from_promise(*this)};
}

template <class P>
std::coroutine_handle<> FinalAwaiter::await_suspend(std::coroutine_handle<P> h) noexcept {
  PromiseBase& p = h.promise();
  p.done_ = true;
  if (p.registry_ != nullptr) p.registry_->remove(p);
  switch (p.kind_) {
    case TaskKind::child:
    case TaskKind::joinable:  // the awaiter, or the joiner if one already waits
      return p.continuation_ ? p.continuation_ : std::noop_coroutine();
    case TaskKind::detached:
      if (p.exception_) TaskRegistry::report_detached_failure(p.exception_);
      h.destroy();
      return std::noop_coroutine();
  }
  return std::noop_coroutine();
}

}  // namespace detail

}  // namespace ringlet
