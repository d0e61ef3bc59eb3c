// ready_queue.cpp — growing the ready queue (ready_queue.hpp).
#include "ringlet/runtime/ready_queue.hpp"

#include <utility>

namespace ringlet {

void ReadyQueue::push(std::coroutine_handle<> h) {
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

std::coroutine_handle<> ReadyQueue::pop() noexcept {
  return slots_[head_++ & (slots_.size() - 1)];
}

std::coroutine_handle<> ReadyQueue::pop_newest() noexcept {
  return slots_[--tail_ & (slots_.size() - 1)];
}

}  // namespace ringlet
