// sync.hpp — Channel<T>, Event and Semaphore: coordination between tasks of ONE loop. Core-local: not
// thread-safe, and every task that waits on one must run on the loop of the thread that wakes it (to cross threads
// use Loop::post).
//
// How waiting works (the same in all three):
//  - Each awaitable carries its own waiter node, linked into a FIFO list while its task is suspended, so waiting
//    allocates nothing.
//  - A waker decides the waiter's outcome *at hand-off* (moves the item into its node, grants the permit, marks it
//    done), unlinks it and schedules its task; it never resumes a coroutine inline.
//  - Cancellation (Task cancel, with_timeout): a task that is already cancelled fails at once with errc::cancelled
//    and touches nothing. A waiting task is unlinked and resumes with errc::cancelled. A cancel that arrives after
//    the hand-off (a timeout firing while the woken task sits in the ready queue) finds the node unlinked and
//    changes nothing, so a handed-over item or permit is never lost or given twice.
//  - Fast paths complete in await_suspend (never in await_ready), after the cancellation check: a cancelled task
//    never takes an item it would then drop while unwinding.
//  - Await these in the expression that creates them (`co_await ch.send(std::move(x))`, or inside with_timeout).
//    GCC 12 trap: send a named item, not an aggregate temporary (`ch.send(Msg{a, b})`) whose members have
//    destructors: GCC 12 copies such a temporary of a co_await expression bitwise and destroys it twice.
//    Destroying a Channel, Event or Semaphore while tasks wait on it is a bug and aborts.
#pragma once

#include <concepts>
#include <coroutine>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>

#include "ringlet/runtime/cancel.hpp"
#include "ringlet/base/fatal.hpp"
#include "ringlet/runtime/intrusive_list.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/base/result.hpp"

namespace ringlet {

namespace detail {

class WaitList;

// One suspended task, linked into a WaitList. Lives inside the awaitable (so in the task's coroutine frame).
class WaitNode {
 public:
  WaitNode() = default;
  WaitNode(const WaitNode&) = delete;
  WaitNode& operator=(const WaitNode&) = delete;
  // Only a node that never waited may move (with_timeout moves the awaitable in before suspending).
  WaitNode(WaitNode&& o) noexcept { RINGLET_ASSERT(!o.linked()); }
  inline ~WaitNode();

  bool linked() const noexcept { return list_ != nullptr; }

  // Completes the wait with `outcome` (the waker has already moved any payload in) and schedules the task.
  inline void wake(Error outcome) noexcept;

 protected:
  // For await_suspend: true when the task is already cancelled (outcome set to errc::cancelled, nothing touched).
  template <class P>
  bool cancelled_already(std::coroutine_handle<P> h) noexcept {
    CancelState* cs = nullptr;
    if (cancelled_before_suspend(h, cs)) {
      outcome_ = errc::cancelled;
      return true;
    }
    return false;
  }
  // Suspends: links the node at the back of `list` and installs the cancel slot.
  template <class P>
  void park(WaitList& list, std::coroutine_handle<P> h) noexcept;
  // For await_resume: removes the cancel slot and returns the outcome.
  Error finish() noexcept {
    if (cancel_ != nullptr) cancel_->clear();
    cancel_ = nullptr;
    return outcome_;
  }

  Error outcome_{};

 private:
  friend class WaitList;
  static inline void cancel_slot(void* ctx) noexcept;

  WaitList* list_ = nullptr;
  ListLink<WaitNode> link_;
  Loop* loop_ = nullptr;
  std::coroutine_handle<> waiter_;
  CancelState* cancel_ = nullptr;
};

// A FIFO of waiting nodes (intrusive, doubly linked so a cancelled waiter leaves from the middle in O(1)).
class WaitList {
 public:
  WaitList() = default;
  WaitList(const WaitList&) = delete;
  WaitList& operator=(const WaitList&) = delete;
  ~WaitList() {
    if (!nodes_.empty()) [[unlikely]]
      fatal("a Channel, Event or Semaphore was destroyed while tasks wait on it");
  }

  bool empty() const noexcept { return nodes_.empty(); }
  WaitNode* front() const noexcept { return nodes_.front(); }

  void push_back(WaitNode& n) noexcept {
    n.list_ = this;
    nodes_.push_back(n);
  }

  void remove(WaitNode& n) noexcept {
    nodes_.remove(n);
    n.list_ = nullptr;
  }

  // Unlinks the oldest waiter; the caller hands it its outcome with wake().
  WaitNode* pop_front() noexcept {
    WaitNode* n = nodes_.front();
    if (n != nullptr) remove(*n);
    return n;
  }

 private:
  IntrusiveList<WaitNode, &WaitNode::link_> nodes_;
};

WaitNode::~WaitNode() {
  // A suspended task's frame destroyed without resuming (a loop torn down with live tasks): leave the list intact.
  if (list_ != nullptr) list_->remove(*this);
}

void WaitNode::wake(Error outcome) noexcept {
  outcome_ = outcome;
  loop_->schedule(waiter_);
}

template <class P>
void WaitNode::park(WaitList& list, std::coroutine_handle<P> h) noexcept {
  loop_ = Loop::current();
  waiter_ = h;
  list.push_back(*this);
  cancel_ = cancel_state_of(h);
  if (cancel_ != nullptr) cancel_->install(&WaitNode::cancel_slot, this);
}

void WaitNode::cancel_slot(void* ctx) noexcept {
  auto* self = static_cast<WaitNode*>(ctx);
  if (self->list_ == nullptr) return;  // already handed its outcome: the task is scheduled, keep what it got
  self->list_->remove(*self);
  self->wake(errc::cancelled);
}

}  // namespace detail

// ---- Channel -----------------------------------------------------------------------------------------------------

// A bounded FIFO queue of T between tasks, with back-pressure: send() suspends while the channel is full,
// receive() while it is empty. Storage is one ring of `capacity` slots, allocated at construction.
//
// Item ownership — a send never loses or duplicates an item:
//  - send(std::move(x)) / send(x) refer to the caller's object and take it (move, or copy for const T&) only when
//    the channel accepts it. On any failure (errc::cancelled, errc::timed_out under with_timeout,
//    errc::queue_closed) the item was not taken: it is still in the caller's object, ready for a retry.
//  - try_send follows the same rule.
//  - A waiting receiver is handed its item directly (not through the ring), so a receiver that arrives later
//    cannot overtake it; a waiting sender's item is moved into the ring when a receiver makes room.
// close(): later sends fail with errc::queue_closed, waiting senders resume with it (their items untouched);
// receivers first drain what is queued, then get errc::queue_closed.
template <class T>
class Channel {
 public:
  explicit Channel(std::size_t capacity) : capacity_(capacity), slots_(std::make_unique<std::optional<T>[]>(capacity)) {
    RINGLET_ASSERT(capacity >= 1);
  }
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  std::size_t capacity() const noexcept { return capacity_; }
  std::size_t size() const noexcept { return count_; }  // items queued in the ring
  bool empty() const noexcept { return count_ == 0; }
  bool full() const noexcept { return count_ == capacity_; }
  bool closed() const noexcept { return closed_; }

  // Takes `item` if it can without waiting. errc::would_block when full, errc::queue_closed when closed; on
  // failure `item` is not moved from.
  Status try_send(T&& item) { return offer(&item, Take::move); }
  Status try_send(const T& item)
    requires std::copy_constructible<T>
  {
    return offer(const_cast<T*>(&item), Take::copy);
  }

  // The oldest item, if one is queued. errc::would_block when empty, errc::queue_closed when empty and closed.
  Result<T> try_receive() {
    if (count_ != 0) return take_front();
    return closed_ ? errc::queue_closed : errc::would_block;
  }

  // Awaitable: Status. Suspends while the channel is full. The referenced item must live until the await ends
  // (a temporary in the co_await expression does).
  class [[nodiscard]] Send : detail::WaitNode {
   public:
    Send(Channel& ch, T* item, bool copy) noexcept : ch_(&ch), item_(item), copy_(copy) {}
    Send(Send&&) noexcept = default;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      if (cancelled_already(h)) return false;
      outcome_ = ch_->offer(item_, copy_ ? Take::copy : Take::move).error();
      if (outcome_ != errc::would_block) return false;
      outcome_ = Error{};
      park(ch_->senders_, h);
      return true;
    }
    Status await_resume() noexcept {
      Error e = finish();
      return e.code == 0 ? Status{} : Status{e};
    }

   private:
    friend class Channel;
    Channel* ch_;
    T* item_;
    bool copy_;
  };

  // Awaitable: Result<T>. Suspends while the channel is empty and open.
  class [[nodiscard]] Receive : detail::WaitNode {
   public:
    explicit Receive(Channel& ch) noexcept : ch_(&ch) {}
    Receive(Receive&&) noexcept = default;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
      if (cancelled_already(h)) return false;
      if (ch_->count_ != 0) {
        item_.emplace(ch_->take_front());
        return false;
      }
      if (ch_->closed_) {
        outcome_ = errc::queue_closed;
        return false;
      }
      park(ch_->receivers_, h);
      return true;
    }
    Result<T> await_resume() {
      Error e = finish();
      if (item_) return std::move(*item_);
      return e;
    }

   private:
    friend class Channel;
    Channel* ch_;
    std::optional<T> item_;
  };

  Send send(T&& item) noexcept { return Send(*this, &item, false); }
  Send send(const T& item) noexcept
    requires std::copy_constructible<T>
  {
    return Send(*this, const_cast<T*>(&item), true);
  }
  Receive receive() noexcept { return Receive(*this); }

  // Wakes every waiter: senders with errc::queue_closed, receivers (there are only waiting receivers when the ring
  // is empty) with errc::queue_closed. Idempotent.
  void close() noexcept {
    closed_ = true;
    while (detail::WaitNode* n = receivers_.pop_front()) n->wake(errc::queue_closed);
    while (detail::WaitNode* n = senders_.pop_front()) n->wake(errc::queue_closed);
  }

 private:
  enum class Take { move, copy };

  Status offer(T* item, Take how) {
    if (closed_) return errc::queue_closed;
    if (detail::WaitNode* n = receivers_.pop_front()) {
      auto* r = static_cast<Receive*>(n);
      r->item_.emplace(take(item, how));
      r->wake(Error{});
      return {};
    }
    if (count_ == capacity_) return errc::would_block;
    push_back(take(item, how));
    return {};
  }

  static T take(T* item, Take how) {
    if constexpr (std::copy_constructible<T>) {
      if (how == Take::copy) return T(*item);
    }
    return T(std::move(*item));
  }

  void push_back(T&& item) {
    slots_[(head_ + count_) % capacity_].emplace(std::move(item));
    ++count_;
  }

  // Pops the oldest item; a waiting sender's item then takes the freed place (keeping FIFO order).
  T take_front() {
    std::optional<T>& slot = slots_[head_];
    T item = std::move(*slot);
    slot.reset();
    head_ = (head_ + 1) % capacity_;
    --count_;
    if (detail::WaitNode* n = senders_.pop_front()) {
      auto* s = static_cast<Send*>(n);
      push_back(take(s->item_, s->copy_ ? Take::copy : Take::move));
      s->wake(Error{});
    }
    return item;
  }

  std::size_t capacity_;
  std::unique_ptr<std::optional<T>[]> slots_;
  std::size_t head_ = 0;
  std::size_t count_ = 0;
  bool closed_ = false;
  detail::WaitList senders_;
  detail::WaitList receivers_;
};

// ---- Event -------------------------------------------------------------------------------------------------------

// A flag tasks can wait for. set() wakes every waiter; wait() on a set event completes at once; clear() makes
// later waits suspend again (a task already woken stays woken).
class Event {
 public:
  Event() = default;
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;

  bool is_set() const noexcept { return set_; }
  void set() noexcept {
    set_ = true;
    while (detail::WaitNode* n = waiters_.pop_front()) n->wake(Error{});
  }
  void clear() noexcept { set_ = false; }

  // Awaitable: Status (errc::cancelled when cancelled).
  class [[nodiscard]] Wait : detail::WaitNode {
   public:
    explicit Wait(Event& e) noexcept : event_(&e) {}
    Wait(Wait&&) noexcept = default;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (cancelled_already(h) || event_->set_) return false;
      park(event_->waiters_, h);
      return true;
    }
    Status await_resume() noexcept {
      Error e = finish();
      return e.code == 0 ? Status{} : Status{e};
    }

   private:
    Event* event_;
  };
  Wait wait() noexcept { return Wait(*this); }

 private:
  bool set_ = false;
  detail::WaitList waiters_;
};

// ---- Semaphore ---------------------------------------------------------------------------------------------------

// Counting semaphore with FIFO fairness: release() hands permits straight to the oldest waiters, so a task that
// arrives later cannot take a permit someone is queued for (permits are only counted when nobody waits).
// A cancelled acquire consumes no permit; one whose permit was granted before the cancel arrived keeps it (its
// result is success, and it must release it).
class Semaphore {
 public:
  explicit Semaphore(std::size_t permits) noexcept : permits_(permits) {}
  Semaphore(const Semaphore&) = delete;
  Semaphore& operator=(const Semaphore&) = delete;

  std::size_t available() const noexcept { return permits_; }

  bool try_acquire() noexcept {
    if (permits_ == 0) return false;  // waiters exist only while no permit is free
    --permits_;
    return true;
  }

  void release(std::size_t n = 1) noexcept {
    for (; n != 0; --n) {
      detail::WaitNode* w = waiters_.pop_front();
      if (w == nullptr) {
        permits_ += n;
        return;
      }
      w->wake(Error{});
    }
  }

  // Awaitable: Status. Success means the task holds one permit.
  class [[nodiscard]] Acquire : detail::WaitNode {
   public:
    explicit Acquire(Semaphore& s) noexcept : sem_(&s) {}
    Acquire(Acquire&&) noexcept = default;
    bool await_ready() const noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
      if (cancelled_already(h) || sem_->try_acquire()) return false;
      park(sem_->waiters_, h);
      return true;
    }
    Status await_resume() noexcept {
      Error e = finish();
      return e.code == 0 ? Status{} : Status{e};
    }

   private:
    Semaphore* sem_;
  };
  Acquire acquire() noexcept { return Acquire(*this); }

 private:
  std::size_t permits_;
  detail::WaitList waiters_;
};

}  // namespace ringlet
