// loop.hpp — one event loop per thread: timers, a ready queue of tasks, and a backend. Core-local, except post(),
// stop() and wake(), which any thread may call.
//
// Wake-ups: the loop owns an eventfd and keeps one ordinary read operation armed on it through the backend, so a
// write from another thread ends a blocked wait on either backend; neither backend carries a wake-up of its own.
//
// One iteration (docs/design/loop.md is the spec; run_once() follows it one statement per phase):
//   1. submit and wait      — one kernel entry: hand over queued ops, wait for completions until the next timer is
//                             due (not at all when tasks are ready), deliver them (completions schedule tasks)
//   2. expire timers        — due timers schedule their tasks. After the completions, on purpose: when the process
//                             was descheduled past a deadline, data that arrived meanwhile wins over the timeout
//                             (a woken reader no longer waits, so its timer finds nothing to do)
//   3. take posted work     — re-arm the wake-up read; run the inbox (shard messages) and functions other threads
//                             posted
//   4. run ready tasks      — at most kReadyBudget woken tasks, then at most kSpawnedBudget new ones (spawned
//                             before or during this phase; past it the oldest share and the newest), then at most
//                             kHeavyBudget woken by completions of heavily served descriptors, then kYieldedBudget
//                             that yielded, then back to the kernel (fairness for I/O, timers and busy connections)
//   5. turn-end checks      — queues that kept receive buffers through the tasks' turn give them back (streams
//                             copy loans from the shared receive ring out; docs/design/buffers.md)
//   6. flush output         — each stream written to this turn starts one send of its whole output chain; each
//                             shard mailbox pushed to wakes its receiver once
//   7. follow-up submit     — ops the tasks just queued go to the kernel now, not after the next wait
//   8. deferred closes      — descriptors whose last operation has finally completed are closed
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "ringlet/runtime/backend.hpp"
#include "ringlet/runtime/clock.hpp"
#include "ringlet/runtime/ready_queue.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timer_wheel.hpp"

namespace ringlet {

struct LoopOptions {
  BackendOptions backend;
  const Clock* clock = nullptr;  // nullptr: the monotonic clock. A ManualClock makes timers deterministic.
};

struct LoopStats {
  std::uint64_t iterations = 0;
  std::uint64_t tasks_resumed = 0;
  std::uint64_t timers_fired = 0;
  std::uint64_t posted_run = 0;
  std::int64_t kernel_wait_ns = 0;  // time spent in waits that could block (as the loop's clock sees it)
  std::uint64_t wake_writes = 0;    // eventfd writes that reached the loop: at most one per batch of post()/wake()
                                    // calls, none while the loop was awake
};

// Something to finish once the kernel has let go of it (a socket whose last op completed after close).
class DeferredClose {
 public:
  virtual void close_now() noexcept = 0;

 protected:
  ~DeferredClose() = default;
};

// Something with output gathered during this turn (a stream's chain), sent in phase 6 as one writev/sendmsg.
class Flushable {
 public:
  virtual void flush_now() noexcept = 0;

 protected:
  ~Flushable() = default;

 private:
  friend class Loop;
  Flushable* next_flush_ = nullptr;
  bool flush_queued_ = false;
};

// Work arriving from other threads besides post(): the shard message rings (shard/mailbox.cpp). Drained in phase 3 each
// time the loop is woken.
class Inbox {
 public:
  // Runs what has arrived. Returns true when more is left (a drain is bounded, for fairness): the loop then
  // drains again next turn without sleeping in the kernel.
  virtual bool drain() noexcept = 0;

 protected:
  ~Inbox() = default;
};

class Loop {
 public:
  // Tasks run per iteration before the loop polls the kernel again. Large enough that a burst of completions is
  // handled in one pass (each task usually just queues its next op), small enough that a task that keeps
  // re-scheduling itself (yield in a loop) cannot starve I/O and timers.
  static constexpr std::size_t kReadyBudget = 1024;
  // Tasks that yielded (a connection that spent its turn's budget with more input waiting) resumed per iteration,
  // after the tasks woken by I/O, timers or messages. A thousand connections that pipeline without end would
  // otherwise each answer a budget's worth in every turn, a fresh client's request waiting behind all of them
  // (#15); this way a turn holds at most this many such bursts and what woke since the last one comes first.
  static constexpr std::size_t kYieldedBudget = 64;
  // Tasks spawned in this turn's phase 4 (or before it) that start in it, after the woken ones and before the
  // yielded ones. A new connection's first steps are spawns (the acceptor starts its task, the proxy's task starts
  // its relay's two directions); started a turn later, each cost a whole turn, and during a flood of a thousand
  // connections a turn lasts tens of milliseconds (#15). Bounded, so a task that spawns in a loop cannot make one
  // turn long: the rest start in the next turn, before what is spawned then. As large as the woken tasks' budget:
  // a burst of a thousand accepts spawns a thousand connection tasks (and the proxy two relay directions each),
  // and at 256 a turn a connection accepted behind them waited 3-5 turns (25-135 ms) to start (#15).
  static constexpr std::size_t kSpawnedBudget = kReadyBudget;
  // When more new tasks wait than one turn starts, the turn starts this many of the oldest, then the newest for the
  // rest of kSpawnedBudget, each group in arrival order; those in between wait (adaptive LIFO, as release_held does
  // for held submissions). During a burst of a thousand connections the new tasks are their set-up steps (the
  // connection tasks, the relays' directions), and a client that came after them would start only once all of them
  // had (#15). Nothing starves: the oldest share moves the queue's front every turn, so a task with p tasks ahead
  // of it starts within p / kOldestShare turns, however many arrive after it.
  static constexpr std::size_t kOldestShare = kSpawnedBudget / 8;
  // Tasks woken by completions of heavily served descriptors (those that moved Backend::kHeavyBytes in the current
  // service window: flooders, bulk transfers) resumed per iteration, after the woken light ones and the new ones
  // (only those queued when the phase began). A thousand flooders then cost a turn an eighth of their number, and a
  // new connection's next step waits for a turn that short, not for all of them (#15).
  static constexpr std::size_t kHeavyBudget = 128;
  // The backend's service window (Backend::set_service_window) is the loop's clock in units of 2^27 ns (~134 ms).
  static constexpr int kServiceWindowShift = 27;

  // Creates a loop on the calling thread, which must be the thread that runs it (io_uring SINGLE_ISSUER).
  // Logs the backend chosen and why.
  static Result<std::unique_ptr<Loop>> create(const LoopOptions& options = {});
  Loop(std::unique_ptr<Backend> backend, const Clock* clock);
  ~Loop();
  Loop(const Loop&) = delete;
  Loop& operator=(const Loop&) = delete;

  // The loop created on this thread, or nullptr.
  static Loop* current() noexcept;

  Backend& backend() noexcept { return *backend_; }
  TimerWheel& timers() noexcept { return timers_; }
  std::int64_t now_ns() const noexcept { return now_ns_; }  // the clock, read once per phase
  const Clock& clock() const noexcept { return *clock_; }
  const LoopStats& stats() const noexcept { return stats_; }

  // Spawns a detached root task; it frees itself at its end. It starts in this turn's phase 4 when spawned before
  // or during it (kSpawnedBudget), otherwise in the next turn's.
  template <class T>
  void spawn(Task<T> task) {
    spawn_in(registry_, std::move(task));
  }
  // The same, tracked by `group` (a TaskRegistry created with this loop's registry() as parent).
  template <class T>
  void spawn_in(TaskRegistry& group, Task<T> task) {
    auto h = task.release();
    h.promise().set_kind(detail::TaskKind::detached);
    group.add(h.promise());
    spawned_.push(h);
  }
  TaskRegistry& registry() noexcept { return registry_; }
  // Spawns a root task whose result the returned handle yields.
  template <class T>
  JoinHandle<T> spawn_joinable(Task<T> task) {
    auto h = task.release();
    h.promise().set_kind(detail::TaskKind::joinable);
    registry_.add(h.promise());
    spawned_.push(h);
    return JoinHandle<T>{h};
  }

  // Runs `task` to completion on this loop (driving iterations) and returns its result. For main() and tests.
  template <class T>
  T block_on(Task<T> task) {
    JoinHandle<T> handle = spawn_joinable(std::move(task));
    while (!handle.done()) run_once();
    return take_result(std::move(handle));
  }

  // Makes `h` ready to resume in phase 4.
  // A task woken by a completion of a heavily served descriptor (Backend::delivering_heavy) waits in the heavy
  // class, behind everyone else's (kHeavyBudget).
  void schedule(std::coroutine_handle<> h) {
    if (backend_->delivering_heavy()) {
      heavy_.push(h);
    } else {
      ready_.push(h);
    }
  }
  // Makes `h` ready to resume after the woken tasks of a later phase 4, at most kYieldedBudget per turn (yield()).
  void schedule_yielded(std::coroutine_handle<> h) { yielded_.push(h); }

  // Thread-safe: runs fn on this loop's thread during a later iteration.
  void post(std::function<void()> fn);
  // Thread-safe: makes the loop run phase 3 (posted work, the inbox) soon; wakes it if it sleeps in the kernel.
  // Only the first call since the loop last drained may pay for a system call, and only while the loop sleeps (or
  // is about to): a loop that is awake sees the call in its next phase 3 without one.
  void wake() noexcept;
  // Thread-safe: whether the loop is in (or on its way into) a wait that may block. For tests that must know a
  // wake-up has to reach the kernel.
  bool sleeping() const noexcept { return sleeping_.load(std::memory_order_seq_cst); }
  // Phase 3 also drains `inbox` (nullptr: none). Set on the loop's thread.
  void set_inbox(Inbox* inbox) noexcept { inbox_ = inbox; }
  // Thread-safe: makes run() return after the current iteration.
  void stop() noexcept;
  bool stop_requested() const noexcept { return stop_.load(std::memory_order_relaxed); }

  // One iteration. With may_block false the loop never sleeps in the kernel (manual-clock tests).
  void run_once(bool may_block = true);
  // Iterates until stop() is called.
  void run();
  // Iterates without blocking until nothing is ready, no op is pending and no task is alive (for tests).
  // Returns false when something is still alive after max_iterations.
  bool run_until_idle(std::size_t max_iterations = 100000);

  void defer_close(DeferredClose* d) { deferred_.push_back(d); }
  // Runs fn(ctx) once in phase 5 of this turn, after the tasks ran (queue again to run again). For checks that
  // only make sense once the tasks had their chance, like "is anyone still holding these receive buffers?".
  using TurnEndFn = void (*)(void* ctx) noexcept;
  void at_turn_end(TurnEndFn fn, void* ctx) { turn_end_.push_back({fn, ctx}); }
  // Drops every queued call with this ctx (it is going away).
  void forget_turn_end(void* ctx) noexcept;
  // Queues f for phase 6 of this turn (once, however often it is asked).
  void request_flush(Flushable& f) noexcept {
    if (f.flush_queued_) return;
    f.flush_queued_ = true;
    f.next_flush_ = flush_head_;
    flush_head_ = &f;
  }
  // Takes f off the phase-5 list (it is going away).
  void cancel_flush(Flushable& f) noexcept;

  std::size_t live_tasks() const noexcept { return registry_.size(); }
  // Operations submitted by tasks and not yet finally completed (the backend's count without the loop's own
  // wake-up read).
  std::size_t pending_operations() const noexcept;
  void cancel_all_tasks() noexcept { registry_.cancel_all(); }
  std::size_t ready_count() const noexcept {
    return ready_.size() + spawned_.size() + heavy_.size() + yielded_.size();
  }

 private:
  template <class T>
  static T take_result(JoinHandle<T> handle);

  void expire_timers();
  void submit_and_wait(bool may_block);
  void take_posted();
  void run_ready_tasks();
  void start_spawned();
  void run_turn_end();
  void flush_output();
  void follow_up_submit();
  void close_deferred();
  // Keeps the read on the wake-up eventfd armed (it completes once per wake-up that reached the kernel).
  void arm_wake() noexcept;

  std::unique_ptr<Backend> backend_;
  std::unique_ptr<Clock> owned_clock_;
  const Clock* clock_;
  std::int64_t now_ns_;
  TimerWheel timers_;
  ReadyQueue ready_;
  ReadyQueue spawned_;  // root tasks not started yet (kSpawnedBudget)
  std::vector<std::coroutine_handle<>> newest_;  // the newest of them, taken out to start in arrival order
  ReadyQueue heavy_;    // woken by completions of heavily served descriptors (kHeavyBudget)
  ReadyQueue yielded_;
  TaskRegistry registry_;
  std::vector<DeferredClose*> deferred_;
  std::vector<DeferredClose*> closing_;
  Flushable* flush_head_ = nullptr;
  struct TurnEnd {
    TurnEndFn fn;
    void* ctx;
  };
  std::vector<TurnEnd> turn_end_;
  std::vector<TurnEnd> turn_end_running_;
  Inbox* inbox_ = nullptr;
  bool inbox_more_ = false;
  LoopStats stats_;

  // The read on the wake-up eventfd; `value` receives the number of writes since the last read.
  struct WakeRead : Operation {
    Loop* loop = nullptr;
    std::uint64_t value = 0;
  };
  int wake_fd_ = -1;
  IoHandle wake_io_;
  WakeRead wake_op_;

  std::atomic<bool> stop_{false};
  std::atomic<bool> wake_signalled_{false};
  std::atomic<bool> sleeping_{false};  // true from just before a wait that may block until it returns
  std::mutex posted_mutex_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> posted_running_;
};

template <class T>
T Loop::take_result(JoinHandle<T> handle) {
  struct Ready {
    JoinHandle<T>& h;
    bool await_ready() const noexcept { return true; }
    void await_suspend(std::coroutine_handle<>) const noexcept {}
    T await_resume() { return typename JoinHandle<T>::Awaiter(h).await_resume(); }
  };
  return Ready{handle}.await_resume();
}

// ---- small awaitables every task uses ------------------------------------------------------------------------

// Lets the tasks woken meanwhile run before this one continues, in a later turn (Loop::kYieldedBudget). Fails with
// errc::cancelled once cancelled.
class [[nodiscard]] Yield {
 public:
  bool await_ready() const noexcept { return false; }
  template <class P>
  bool await_suspend(std::coroutine_handle<P> h) {
    CancelState* cs = nullptr;
    if (cancelled_before_suspend(h, cs)) {
      cancelled_ = true;
      return false;
    }
    Loop::current()->schedule_yielded(h);
    return true;
  }
  Status await_resume() const noexcept { return cancelled_ ? Status{errc::cancelled} : Status{}; }

 private:
  bool cancelled_ = false;
};
inline Yield yield() noexcept { return {}; }

}  // namespace ringlet
