// loop.cpp — the iteration, phase by phase (docs/design/loop.md).
#include "ringlet/runtime/loop.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include "ringlet/base/log.hpp"

namespace ringlet {
namespace {
thread_local Loop* t_current = nullptr;

// Phase 4's one step, counted.
void resume_task(std::coroutine_handle<> task, LoopStats& stats) {
  task.resume();
  ++stats.tasks_resumed;
}
}  // namespace

Result<std::unique_ptr<Loop>> Loop::create(const LoopOptions& options) {
  auto choice = create_backend(options.backend);
  if (!choice) return choice.error();
  log_info("backend: {}", choice->reason);
  return std::make_unique<Loop>(std::move(choice->backend), options.clock);
}

Loop::Loop(std::unique_ptr<Backend> backend, const Clock* clock)
    : backend_(std::move(backend)),
      owned_clock_(clock == nullptr ? std::make_unique<MonotonicClock>() : nullptr),
      clock_(clock != nullptr ? clock : owned_clock_.get()),
      now_ns_(clock_->now_ns()),
      timers_(now_ns_) {
  newest_.reserve(kSpawnedBudget);
  if (t_current != nullptr) fatal("a second Loop on one thread");
  t_current = this;
  // Non-blocking, so epoll's try-the-read-first sees EAGAIN; io_uring still parks the read (eventfd supports
  // waiting without blocking the ring).
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) fatal("eventfd for the loop's wake-ups failed (out of descriptors?)");
  wake_io_.fd = wake_fd_;
  wake_io_.reads_only = true;
  wake_op_.kind = OpKind::read;
  wake_op_.io = &wake_io_;
  wake_op_.loop = this;
  wake_op_.buf = &wake_op_.value;
  wake_op_.len = sizeof wake_op_.value;
  wake_op_.on_complete = [](Operation& op, int result, std::uint32_t) noexcept {
    auto& read = static_cast<WakeRead&>(op);
    if (result > 0) read.loop->stats_.wake_writes += read.value;  // take_posted() re-arms it
  };
  arm_wake();
}

Loop::~Loop() {
  // Tasks still alive here hold no kernel operations only if they were never started or already finished;
  // a suspended task with I/O in flight would have its buffers yanked away. Say so loudly.
  if (registry_.size() != 0 || pending_operations() != 0) {
    log_warn("loop destroyed with {} tasks and {} operations alive", registry_.size(), pending_operations());
  }
  close_deferred();
  // The wake-up read goes with the backend (io_uring drops it when the ring closes), before its buffer and fd.
  backend_->cancel(wake_op_);
  if (wake_op_.state == Operation::State::idle) backend_->detach(wake_io_);
  backend_.reset();
  ::close(wake_fd_);
  t_current = nullptr;
}

std::size_t Loop::pending_operations() const noexcept {
  return backend_->pending() - (wake_op_.state != Operation::State::idle ? 1 : 0);
}

void Loop::arm_wake() noexcept {
  // Epoll tries the read first: it succeeds inline while a wake-up is already counted, and then goes again until
  // it parks. Nothing is lost by consuming the count here: wake() raised wake_signalled_ before writing.
  while (wake_op_.state == Operation::State::idle && backend_->submit(wake_op_)) {
    if (wake_op_.result <= 0) fatal("read on the loop's wake-up eventfd failed");
    stats_.wake_writes += wake_op_.value;
  }
}

Loop* Loop::current() noexcept { return t_current; }

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(posted_mutex_);
    posted_.push_back(std::move(fn));
  }
  wake();
}

void Loop::wake() noexcept {
  // One wake-up per batch: only the first caller since the loop last drained may pay for the eventfd write. The
  // exchange pairs with the one in take_posted(): whichever comes second sees the other's side (see there).
  if (wake_signalled_.exchange(true, std::memory_order_seq_cst)) return;
  // And only if the loop may be asleep in the kernel. A loop that is awake reaches phase 3 of this turn or the next
  // without help: before it blocks, submit_and_wait() raises sleeping_ and then reads wake_signalled_. Both sides
  // store one flag and then load the other, all seq_cst (Dekker), so in the single order of those four accesses
  // either our load of sleeping_ comes after its store (we see true and write) or its load of wake_signalled_ comes
  // after our exchange (it sees true and does not block). A stale true only costs a spare write.
  if (!sleeping_.load(std::memory_order_seq_cst)) return;
  std::uint64_t one = 1;
  ssize_t ignored = ::write(wake_fd_, &one, sizeof one);
  (void)ignored;
}

void Loop::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  if (Loop::current() != this) wake();
}

void Loop::run_once(bool may_block) {
  ++stats_.iterations;
  submit_and_wait(may_block);
  expire_timers();
  take_posted();
  run_ready_tasks();
  run_turn_end();
  flush_output();
  follow_up_submit();
  close_deferred();
}

void Loop::run() {
  while (!stop_requested()) run_once();
  stop_.store(false, std::memory_order_relaxed);
}

bool Loop::run_until_idle(std::size_t max_iterations) {
  for (std::size_t i = 0; i < max_iterations; ++i) {
    run_once(false);
    if (ready_count() == 0 && pending_operations() == 0 && registry_.size() == 0 && deferred_.empty() &&
        flush_head_ == nullptr && turn_end_.empty()) {
      return true;
    }
  }
  return false;
}

void Loop::expire_timers() {
  now_ns_ = clock_->now_ns();
  stats_.timers_fired += timers_.expire(now_ns_);
}

void Loop::submit_and_wait(bool may_block) {
  backend_->set_service_window(static_cast<std::uint32_t>(now_ns_ >> kServiceWindowShift));
  bool block = may_block && ready_count() == 0 && !stop_requested() && deferred_.empty() && flush_head_ == nullptr &&
               !inbox_more_;
  if (block) {
    // About to sleep: from here on wake() writes the eventfd (see there for why the store comes before the load). A
    // wake-up raised while we were awake wrote nothing, so it must keep us from sleeping now.
    sleeping_.store(true, std::memory_order_seq_cst);
    if (wake_signalled_.load(std::memory_order_seq_cst)) {
      sleeping_.store(false, std::memory_order_relaxed);
      block = false;
    }
  }
  if (!block) {
    backend_->wait(0);  // work is waiting for this turn: submit and reap, never sleep
    now_ns_ = clock_->now_ns();
    return;
  }
  // A wait that may block: timed here, once for both backends.
  std::int64_t before = clock_->now_ns();
  std::int64_t timeout = timers_.size() != 0 ? timers_.next_timeout_ns(before) : -1;
  backend_->wait(timeout);
  sleeping_.store(false, std::memory_order_relaxed);  // a waker that still reads true writes once too often
  now_ns_ = clock_->now_ns();
  stats_.kernel_wait_ns += now_ns_ - before;
}

void Loop::take_posted() {
  // Re-arm before looking at the flag: a wake-up whose count the re-armed read consumes inline has already
  // raised the flag, so we see it below instead of sleeping on a spent eventfd.
  arm_wake();
  bool woken = wake_signalled_.load(std::memory_order_acquire);
  if (!woken && !inbox_more_) return;
  // Clearing the flag is a read-modify-write, like the producer's exchange in wake(): the two are totally ordered.
  // If ours comes second we read the producer's true and see everything it published before waking us; if it
  // comes second it reads our false and wakes us again. Either way no message is left unseen while we sleep.
  wake_signalled_.exchange(false, std::memory_order_seq_cst);  // seq_cst: it sits in wake()'s Dekker order too
  if (inbox_ != nullptr) inbox_more_ = inbox_->drain();
  {
    std::lock_guard lock(posted_mutex_);
    posted_running_.swap(posted_);
  }
  for (auto& fn : posted_running_) {
    fn();
    ++stats_.posted_run;
  }
  posted_running_.clear();
}

void Loop::run_ready_tasks() {
  // Only what was ready when the phase began (and at most kReadyBudget): a task that yields waits a turn.
  std::size_t n = std::min(ready_.size(), kReadyBudget);
  // Yielded tasks queued before the phase began, after the woken ones: one that yields again waits a turn.
  std::size_t y = std::min(yielded_.size(), kYieldedBudget);
  // Heavy tasks queued before the phase began, after the light and the new ones.
  std::size_t heavy = std::min(heavy_.size(), kHeavyBudget);
  for (std::size_t i = 0; i < n; ++i) {
    resume_task(ready_.pop(), stats_);
  }
  start_spawned();
  for (std::size_t i = 0; i < heavy; ++i) {
    resume_task(heavy_.pop(), stats_);
  }
  for (std::size_t i = 0; i < y; ++i) {
    resume_task(yielded_.pop(), stats_);
  }
}

// New tasks, including those the tasks above just spawned (a connection accepted this turn starts this turn). More
// than a turn's budget waiting: the oldest share, then the newest, in arrival order (kOldestShare says why); those
// in between and those spawned meanwhile start next turn.
void Loop::start_spawned() {
  if (spawned_.size() <= kSpawnedBudget) {
    for (std::size_t i = 0; i < kSpawnedBudget && !spawned_.empty(); ++i) {
      resume_task(spawned_.pop(), stats_);
    }
    return;
  }
  for (std::size_t i = kOldestShare; i < kSpawnedBudget; ++i) newest_.push_back(spawned_.pop_newest());
  for (std::size_t i = 0; i < kOldestShare; ++i) {
    resume_task(spawned_.pop(), stats_);
  }
  for (auto it = newest_.rbegin(); it != newest_.rend(); ++it) resume_task(*it, stats_);
  newest_.clear();
}

void Loop::run_turn_end() {
  if (turn_end_.empty()) return;
  turn_end_running_.swap(turn_end_);
  // An entry may be forgotten (nulled) by an earlier one in this pass; calls queued now run next turn.
  for (std::size_t i = 0; i < turn_end_running_.size(); ++i) {
    if (turn_end_running_[i].ctx != nullptr) turn_end_running_[i].fn(turn_end_running_[i].ctx);
  }
  turn_end_running_.clear();
}

void Loop::forget_turn_end(void* ctx) noexcept {
  for (TurnEnd& t : turn_end_) {
    if (t.ctx == ctx) t.ctx = nullptr;
  }
  for (TurnEnd& t : turn_end_running_) {
    if (t.ctx == ctx) t.ctx = nullptr;
  }
}

void Loop::flush_output() {
  while (Flushable* f = flush_head_) {
    flush_head_ = f->next_flush_;
    f->next_flush_ = nullptr;
    f->flush_queued_ = false;
    f->flush_now();  // may complete inline (epoll) and wake writers; never resumes a task here
  }
}

void Loop::cancel_flush(Flushable& f) noexcept {
  if (!f.flush_queued_) return;
  for (Flushable** p = &flush_head_; *p != nullptr; p = &(*p)->next_flush_) {
    if (*p == &f) {
      *p = f.next_flush_;
      break;
    }
  }
  f.next_flush_ = nullptr;
  f.flush_queued_ = false;
}

void Loop::follow_up_submit() { backend_->flush(); }

void Loop::close_deferred() {
  if (deferred_.empty()) return;
  closing_.swap(deferred_);
  for (DeferredClose* d : closing_) d->close_now();
  closing_.clear();
}

}  // namespace ringlet
