// loop.cpp — the iteration, phase by phase (docs/design/loop.md).
#include "ringlet/runtime/loop.hpp"

#include "ringlet/base/log.hpp"

namespace ringlet {
namespace {
thread_local Loop* t_current = nullptr;
}  // namespace

// ---- TaskRegistry ----------------------------------------------------------------------------------------------

TaskRegistry::TaskRegistry(TaskRegistry& parent) noexcept : parent_(&parent) {
  next_group_ = parent.first_group_;
  parent.first_group_ = this;
}

TaskRegistry::~TaskRegistry() {
  RINGLET_ASSERT(head_ == nullptr);
  if (parent_ == nullptr) return;
  for (TaskRegistry** g = &parent_->first_group_; *g != nullptr; g = &(*g)->next_group_) {
    if (*g == this) {
      *g = next_group_;
      break;
    }
  }
}

void TaskRegistry::adjust_total(long delta) noexcept {
  for (TaskRegistry* r = this; r != nullptr; r = r->parent_) {
    r->total_ = static_cast<std::size_t>(static_cast<long>(r->total_) + delta);
    if (r->total_ == 0 && r->on_empty_ != nullptr) r->on_empty_(r->on_empty_ctx_);
  }
}

void TaskRegistry::add(detail::PromiseBase& p) noexcept {
  p.registry_ = this;
  p.prev_ = nullptr;
  p.next_ = head_;
  if (head_ != nullptr) head_->prev_ = &p;
  head_ = &p;
  adjust_total(+1);
}

void TaskRegistry::remove(detail::PromiseBase& p) noexcept {
  if (p.prev_ != nullptr) {
    p.prev_->next_ = p.next_;
  } else {
    head_ = p.next_;
  }
  if (p.next_ != nullptr) p.next_->prev_ = p.prev_;
  p.prev_ = p.next_ = nullptr;
  p.registry_ = nullptr;
  adjust_total(-1);
}

void TaskRegistry::cancel_all() noexcept {
  // Cancelling only records and schedules (no task runs here), so the lists do not change under us.
  for (detail::PromiseBase* p = head_; p != nullptr; p = p->next_) p->cancel_.request();
  for (TaskRegistry* g = first_group_; g != nullptr; g = g->next_group_) g->cancel_all();
}

void TaskRegistry::drain_all() noexcept {
  for (detail::PromiseBase* p = head_; p != nullptr; p = p->next_) p->cancel_.request_drain();
  for (TaskRegistry* g = first_group_; g != nullptr; g = g->next_group_) g->drain_all();
}

void TaskRegistry::report_detached_failure(std::exception_ptr e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    log_error("a detached task ended with an exception: {}", ex.what());
  } catch (...) {
    log_error("a detached task ended with an unknown exception");
  }
}

// ---- ReadyQueue --------------------------------------------------------------------------------------------------

void Loop::ReadyQueue::push(std::coroutine_handle<> h) {
  if (size() == slots_.size()) {
    std::vector<std::coroutine_handle<>> bigger(slots_.size() * 2);
    std::size_t n = size();
    for (std::size_t i = 0; i < n; ++i) bigger[i] = slots_[(head_ + i) & (slots_.size() - 1)];
    slots_ = std::move(bigger);
    head_ = 0;
    tail_ = n;
  }
  slots_[tail_++ & (slots_.size() - 1)] = h;
}

std::coroutine_handle<> Loop::ReadyQueue::pop() noexcept {
  return slots_[head_++ & (slots_.size() - 1)];
}

// ---- Loop --------------------------------------------------------------------------------------------------------

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
