// task.cpp — the out-of-line half of task.hpp: TaskRegistry, the intrusive set of root tasks a loop (or a group in
// it) keeps so it can count, cancel and drain them.
#include "ringlet/runtime/task.hpp"

#include "ringlet/base/log.hpp"

namespace ringlet {

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

}  // namespace ringlet
