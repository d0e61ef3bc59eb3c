// heap.hpp — a binary min-heap of pointers that knows where each element sits, so any element can be removed or
// re-ordered in O(log n) (a delete of a job in the middle of a tube's ready queue, a touch of a reserved job).
// The position lives in the element (a member named by `Pos`), as in beanstalkd's heap.c. Core-local, no I/O.
#pragma once

#include <cstddef>
#include <utility>
#include <vector>

#include "ringlet/base/fatal.hpp"

namespace ringlet::queue {

// Less(a, b): a must come out before b. Ties must be broken (by id) so the order is total and FIFO where it counts.
template <class T, class Less, std::size_t T::*Pos>
class IndexedHeap {
 public:
  static constexpr std::size_t kNowhere = static_cast<std::size_t>(-1);

  bool empty() const noexcept { return items_.empty(); }
  std::size_t size() const noexcept { return items_.size(); }
  T* top() const noexcept { return items_.empty() ? nullptr : items_.front(); }
  bool contains(const T& x) const noexcept { return x.*Pos < items_.size() && items_[x.*Pos] == &x; }

  void push(T& x) {
    x.*Pos = items_.size();
    items_.push_back(&x);
    up(items_.size() - 1);
  }
  // Removes x (which must be in this heap).
  void remove(T& x) noexcept {
    RINGLET_ASSERT(contains(x));
    const std::size_t at = x.*Pos;
    x.*Pos = kNowhere;
    T* last = items_.back();
    items_.pop_back();
    if (last == &x) return;
    items_[at] = last;
    last->*Pos = at;
    if (!down(at)) up(at);
  }
  T* pop() noexcept {
    T* t = top();
    if (t != nullptr) remove(*t);
    return t;
  }
  // x's key changed: restore the order.
  void update(T& x) noexcept {
    RINGLET_ASSERT(contains(x));
    if (!down(x.*Pos)) up(x.*Pos);
  }
  // Every element, in no particular order.
  const std::vector<T*>& items() const noexcept { return items_; }

 private:
  void place(std::size_t i, T* x) noexcept {
    items_[i] = x;
    x->*Pos = i;
  }
  void up(std::size_t i) noexcept {
    T* x = items_[i];
    while (i > 0) {
      std::size_t parent = (i - 1) / 2;
      if (!Less{}(*x, *items_[parent])) break;
      place(i, items_[parent]);
      i = parent;
    }
    place(i, x);
  }
  // True when the element moved.
  bool down(std::size_t i) noexcept {
    const std::size_t start = i;
    T* x = items_[i];
    for (;;) {
      std::size_t child = 2 * i + 1;
      if (child >= items_.size()) break;
      if (child + 1 < items_.size() && Less{}(*items_[child + 1], *items_[child])) ++child;
      if (!Less{}(*items_[child], *x)) break;
      place(i, items_[child]);
      i = child;
    }
    place(i, x);
    return i != start;
  }

  std::vector<T*> items_;
};

}  // namespace ringlet::queue
