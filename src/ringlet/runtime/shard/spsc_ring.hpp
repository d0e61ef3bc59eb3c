// spsc_ring.hpp — a bounded single-producer/single-consumer ring. Thread-safe for exactly one producer thread and
// one consumer thread (the two shards of an ordered pair); nothing else may touch it.
//
// Elements are constructed in their slot by the producer (try_emplace) and consumed in place by the consumer
// (consume), so a type need not be movable and crossing the ring copies nothing. Each side keeps a cached copy of
// the other side's index and re-reads the shared one only when the cache says full/empty, so a batch of N
// elements costs two shared-cache-line reads, not 2N. The consumer publishes its head after the batch's elements
// ran and were destroyed: a producer never reuses a slot still being read, and "head == tail" means every element
// pushed has been fully handled (the shard shutdown relies on that).
//
// The shared indices are read and written sequentially consistent (an xchg per batch on x86, nothing on loads):
// the users of the ring pair them with "I am waiting" flags in Dekker order — publish index, then read flag, and
// set flag, then read index — which only works when all four take part in one total order. (Fences would do the
// same but ThreadSanitizer does not understand them.)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <utility>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

inline constexpr std::size_t kCacheLine = 64;

template <class T>
class SpscRing {
 public:
  // capacity: rounded up to a power of two, at least 2.
  explicit SpscRing(std::size_t capacity) : mask_(round_up(capacity) - 1) {
    slots_ = static_cast<Slot*>(::operator new(sizeof(Slot) * (mask_ + 1), std::align_val_t{alignof(Slot)}));
  }
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;
  ~SpscRing() {
    consume([](T&) {}, static_cast<std::size_t>(-1));
    ::operator delete(slots_, std::align_val_t{alignof(Slot)});
  }

  std::size_t capacity() const noexcept { return mask_ + 1; }

  // Producer: constructs an element from args in the next slot. False when the ring is full (nothing built).
  template <class... Args>
  bool try_emplace(Args&&... args) {
    std::uint64_t tail = producer_.tail;
    if (tail - producer_.head_cache > mask_) {
      producer_.head_cache = head_.load(std::memory_order_seq_cst);
      if (tail - producer_.head_cache > mask_) return false;
    }
    new (&slots_[tail & mask_].storage) T(std::forward<Args>(args)...);
    producer_.tail = tail + 1;
    tail_.store(tail + 1, std::memory_order_seq_cst);
    return true;
  }

  // Producer: free slots as far as the producer knows (a lower bound).
  std::size_t free_slots() noexcept {
    std::uint64_t used = producer_.tail - producer_.head_cache;
    if (used > mask_) {
      producer_.head_cache = head_.load(std::memory_order_seq_cst);
      used = producer_.tail - producer_.head_cache;
    }
    return capacity() - used;
  }

  // Consumer: calls f(T&) on up to max elements in FIFO order, destroying each after f returns, then publishes
  // the new head. Returns how many ran.
  template <class F>
  std::size_t consume(F&& f, std::size_t max) {
    std::uint64_t head = consumer_.head;
    if (consumer_.tail_cache == head) {
      consumer_.tail_cache = tail_.load(std::memory_order_seq_cst);
      if (consumer_.tail_cache == head) return 0;
    }
    std::uint64_t end = consumer_.tail_cache;
    if (end - head > max) end = head + max;
    std::size_t n = 0;
    for (; head != end; ++head, ++n) {
      T* item = std::launder(reinterpret_cast<T*>(&slots_[head & mask_].storage));
      f(*item);
      item->~T();
    }
    consumer_.head = head;
    head_.store(head, std::memory_order_seq_cst);
    return n;
  }

  // Either side, any thread: whether everything pushed so far has been consumed (a snapshot).
  bool drained() const noexcept {
    return head_.load(std::memory_order_seq_cst) == tail_.load(std::memory_order_seq_cst);
  }
  std::uint64_t pushed() const noexcept { return tail_.load(std::memory_order_seq_cst); }
  std::uint64_t consumed() const noexcept { return head_.load(std::memory_order_seq_cst); }

 private:
  struct Slot {
    alignas(T) unsigned char storage[sizeof(T)];
  };
  static std::size_t round_up(std::size_t n) {
    std::size_t c = 2;
    while (c < n) c <<= 1;
    return c;
  }

  // Each index on its own cache line, beside the other side's cached copy that only its owner touches.
  alignas(kCacheLine) std::atomic<std::uint64_t> head_{0};
  struct alignas(kCacheLine) {
    std::uint64_t head = 0;
    std::uint64_t tail_cache = 0;
  } consumer_;
  alignas(kCacheLine) std::atomic<std::uint64_t> tail_{0};
  struct alignas(kCacheLine) {
    std::uint64_t tail = 0;
    std::uint64_t head_cache = 0;
  } producer_;
  Slot* slots_;
  std::size_t mask_;
};

}  // namespace ringlet
