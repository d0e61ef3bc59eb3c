// intrusive_list.hpp — the one doubly linked list of the runtime: the links live in the elements, so tracking an
// element allocates nothing and a waiter leaves from the middle in O(1). Core-local.
//
// The list itself is one pointer (the head), which matters where a list is paid per connection (a descriptor's two
// epoll wait lists): the head's `prev` points at the tail, so push_back is O(1) without a tail pointer. `next` of
// the tail is nullptr, and an element that is in no list has both links nullptr.
#pragma once

namespace ringlet {

template <class T>
struct ListLink {
  T* prev = nullptr;
  T* next = nullptr;
};

template <class T, ListLink<T> T::*Link>
class IntrusiveList {
 public:
  IntrusiveList() = default;
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  T* front() const noexcept { return head_; }
  // The element after `n`, or nullptr (save it before `n` may leave the list).
  static T* next(T& n) noexcept { return (n.*Link).next; }

  void push_back(T& n) noexcept {
    ListLink<T>& l = n.*Link;
    l.next = nullptr;
    if (head_ == nullptr) {
      l.prev = &n;
      head_ = &n;
      return;
    }
    T* tail = (head_->*Link).prev;
    l.prev = tail;
    (tail->*Link).next = &n;
    (head_->*Link).prev = &n;
  }

  void push_front(T& n) noexcept {
    ListLink<T>& l = n.*Link;
    if (head_ == nullptr) {
      l.prev = &n;
      l.next = nullptr;
    } else {
      l.prev = (head_->*Link).prev;
      l.next = head_;
      (head_->*Link).prev = &n;
    }
    head_ = &n;
  }

  // `n` must be in this list.
  void remove(T& n) noexcept {
    ListLink<T>& l = n.*Link;
    if (&n == head_) {
      head_ = l.next;
      if (head_ != nullptr) (head_->*Link).prev = l.prev;
    } else {
      (l.prev->*Link).next = l.next;
      if (l.next != nullptr) {
        (l.next->*Link).prev = l.prev;
      } else {
        (head_->*Link).prev = l.prev;  // n was the tail
      }
    }
    l.prev = l.next = nullptr;
  }

  T* pop_front() noexcept {
    T* n = head_;
    if (n != nullptr) remove(*n);
    return n;
  }

 private:
  T* head_ = nullptr;
};

}  // namespace ringlet
