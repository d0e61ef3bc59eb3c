// ready_queue.hpp — the loop's queues of coroutines ready to resume (phase 4): FIFO, and taken from the newest
// end too when the loop is overloaded (Loop::kOldestShare). Core-local.
//
// A ring of handles indexed by ever-growing head/tail counters masked to a power-of-two size; it grows by doubling
// and is reused, so scheduling allocates nothing in steady state.
#pragma once

#include <coroutine>
#include <cstddef>
#include <vector>

namespace ringlet {

class ReadyQueue {
 public:
  void push(std::coroutine_handle<> h);
  std::coroutine_handle<> pop() noexcept;          // the oldest
  std::coroutine_handle<> pop_newest() noexcept;   // the one pushed last
  std::size_t size() const noexcept { return tail_ - head_; }
  bool empty() const noexcept { return head_ == tail_; }

 private:
  std::vector<std::coroutine_handle<>> slots_ = std::vector<std::coroutine_handle<>>(256);
  std::size_t head_ = 0;
  std::size_t tail_ = 0;
};

}  // namespace ringlet
