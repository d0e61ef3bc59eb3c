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
  RINGLET_ASSERT(tasks_.empty());
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
  tasks_.push_front(p);
  adjust_total(+1);
}

void TaskRegistry::remove(detail::PromiseBase& p) noexcept {
  tasks_.remove(p);
  p.registry_ = nullptr;
  adjust_total(-1);
}

void TaskRegistry::cancel_all() noexcept {
  // Cancelling only records and schedules (no task runs here), so the lists do not change under us.
  for (detail::PromiseBase* p = tasks_.front(); p != nullptr; p = tasks_.next(*p)) p->cancel_.request();
  for (TaskRegistry* g = first_group_; g != nullptr; g = g->next_group_) g->cancel_all();
}

void TaskRegistry::drain_all() noexcept {
  for (detail::PromiseBase* p = tasks_.front(); p != nullptr; p = tasks_.next(*p)) p->cancel_.request_drain();
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
