// loop.cpp — the iteration, phase by phase (docs/design/loop.md).
#include "ringlet/runtime/loop.hpp"

#include "ringlet/base/log.hpp"

namespace ringlet {
namespace {
thread_local Loop* t_current = nullptr;
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
  if (t_current != nullptr) fatal("a second Loop on one thread");
  t_current = this;
}

Loop::~Loop() {
  // Tasks still alive here hold no kernel operations only if they were never started or already finished;
  // a suspended task with I/O in flight would have its buffers yanked away. Say so loudly.
  if (registry_.size() != 0 || backend_->pending() != 0) {
    log_warn("loop destroyed with {} tasks and {} operations alive", registry_.size(), backend_->pending());
  }
  close_deferred();
  t_current = nullptr;
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
  // One wake-up per batch: only the first caller since the loop last drained pays for the eventfd write. The
  // exchange pairs with the one in take_posted(): whichever comes second sees the other's side (see there).
  if (!wake_signalled_.exchange(true, std::memory_order_acq_rel)) backend_->wake();
}

void Loop::stop() noexcept {
  stop_.store(true, std::memory_order_relaxed);
  if (Loop::current() != this) wake();
}

void Loop::run_once(bool may_block) {
  ++stats_.iterations;
  expire_timers();
  submit_and_wait(may_block);
  take_posted();
  run_ready_tasks();
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
    if (ready_.empty() && backend_->pending() == 0 && registry_.size() == 0 && deferred_.empty() &&
        flush_head_ == nullptr) {
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
  std::int64_t timeout = -1;
  if (!may_block || !ready_.empty() || stop_requested() || !deferred_.empty() || flush_head_ != nullptr ||
      inbox_more_) {
    timeout = 0;
  } else if (timers_.size() != 0) {
    timeout = timers_.next_timeout_ns(clock_->now_ns());
  }
  backend_->wait(timeout);
  now_ns_ = clock_->now_ns();
}

void Loop::take_posted() {
  bool woken = backend_->take_wake();
  woken = wake_signalled_.load(std::memory_order_acquire) || woken;
  if (!woken && !inbox_more_) return;
  // Clearing the flag is a read-modify-write, like the producer's exchange in wake(): the two are totally ordered.
  // If ours comes second we read the producer's true and see everything it published before waking us; if it
  // comes second it reads our false and wakes us again. Either way no message is left unseen while we sleep.
  wake_signalled_.exchange(false, std::memory_order_acq_rel);
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
  for (std::size_t i = 0; i < n; ++i) {
    ready_.pop().resume();
    ++stats_.tasks_resumed;
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
