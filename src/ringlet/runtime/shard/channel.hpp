// channel.hpp — a bounded stream of values from one shard to another, with back-pressure both ways.
// Thread-safe for its one producer shard and one consumer shard; each side calls only its own half.
//
// The values live in an SpscRing (moved in, moved out, never shared). A side that finds the ring full (producer)
// or empty (consumer) parks its task and raises a flag; the other side, after moving a value, checks the flag and
// sends the parked task's shard a message that resumes it (Shard::send). The flag and the ring indices are
// sequentially consistent and checked in Dekker order on both sides (publish, then look at the other's flag), so a
// wake-up is never lost; whoever claims the flag by exchanging it does the wake-up, so it is never doubled. Neither wait is
// cancellable: end a stream with close(), after which the consumer receives the values still queued and then
// errc::queue_closed.
#pragma once

#include <atomic>
#include <coroutine>
#include <optional>
#include <utility>

#include "ringlet/base/result.hpp"
#include "ringlet/runtime/shard/shard_set.hpp"
#include "ringlet/runtime/shard/spsc_ring.hpp"

namespace ringlet {

template <class T>
class ShardChannel {
 public:
  ShardChannel(unsigned producer, unsigned consumer, std::size_t capacity)
      : producer_(producer), consumer_(consumer), ring_(capacity) {}
  ShardChannel(const ShardChannel&) = delete;
  ShardChannel& operator=(const ShardChannel&) = delete;

  unsigned producer() const noexcept { return producer_; }
  unsigned consumer() const noexcept { return consumer_; }

  // Producer: waits while the channel is full, then moves `value` in. errc::queue_closed after close().
  class [[nodiscard]] Send {
   public:
    Send(ShardChannel* ch, T value) : ch_(ch), value_(std::move(value)) {}
    bool await_ready() { return ch_->closed_local_ || ch_->try_send(value_); }
    bool await_suspend(std::coroutine_handle<> h) {
      ch_->producer_task_ = h;
      ch_->producer_waiting_.store(true, std::memory_order_seq_cst);
      if (ch_->ring_.free_slots() == 0) return true;  // the consumer will see our flag once it takes a value
      if (ch_->producer_waiting_.exchange(false, std::memory_order_acq_rel)) {
        bool sent = ch_->try_send(value_);  // room appeared meanwhile and the wake-up is ours to cancel
        RINGLET_ASSERT(sent);
        return false;
      }
      return true;  // the consumer claimed the flag: its wake-up message is on the way
    }
    Status await_resume() {
      if (ch_->closed_local_) return errc::queue_closed;
      if (value_) {
        bool sent = ch_->try_send(value_);
        RINGLET_ASSERT(sent);  // woken because there is room, and only we produce
      }
      return {};
    }

   private:
    ShardChannel* ch_;
    std::optional<T> value_;
  };

  // Consumer: waits for a value. errc::queue_closed once the producer closed and everything was received.
  class [[nodiscard]] Receive {
   public:
    explicit Receive(ShardChannel* ch) : ch_(ch) {}
    bool await_ready() { return ch_->try_receive(out_) || ch_->closed_.load(std::memory_order_seq_cst); }
    bool await_suspend(std::coroutine_handle<> h) {
      ch_->consumer_task_ = h;
      ch_->consumer_waiting_.store(true, std::memory_order_seq_cst);
      if (ch_->ring_.drained() && !ch_->closed_.load(std::memory_order_seq_cst)) return true;
      return !ch_->consumer_waiting_.exchange(false, std::memory_order_acq_rel);
    }
    Result<T> await_resume() {
      if (out_ || ch_->try_receive(out_)) return std::move(*out_);
      return errc::queue_closed;
    }

   private:
    ShardChannel* ch_;
    std::optional<T> out_;
  };

  Send send(T value) { return Send(this, std::move(value)); }
  Receive receive() { return Receive(this); }

  // Producer: no more values. The consumer still receives what is queued.
  void close() {
    closed_local_ = true;
    closed_.store(true, std::memory_order_seq_cst);
    wake(consumer_waiting_, consumer_task_, consumer_);
  }

 private:
  bool try_send(std::optional<T>& value) {
    if (!ring_.try_emplace(std::move(*value))) return false;
    value.reset();
    wake(consumer_waiting_, consumer_task_, consumer_);
    return true;
  }
  bool try_receive(std::optional<T>& out) {
    if (ring_.consume([&out](T& v) { out.emplace(std::move(v)); }, 1) == 0) return false;
    wake(producer_waiting_, producer_task_, producer_);
    return true;
  }
  // The other side parked: claim its flag and send its shard the resumption.
  static void wake(std::atomic<bool>& waiting, std::coroutine_handle<>& task, unsigned shard) {
    if (!waiting.load(std::memory_order_seq_cst) || !waiting.exchange(false, std::memory_order_acq_rel)) return;
    std::coroutine_handle<> h = task;
    Shard::current()->send(shard, [h] { Shard::current()->loop().schedule(h); });
  }

  unsigned producer_;
  unsigned consumer_;
  SpscRing<T> ring_;
  std::atomic<bool> closed_{false};
  bool closed_local_ = false;  // producer's own view
  alignas(kCacheLine) std::atomic<bool> consumer_waiting_{false};
  std::coroutine_handle<> consumer_task_;
  alignas(kCacheLine) std::atomic<bool> producer_waiting_{false};
  std::coroutine_handle<> producer_task_;
};

}  // namespace ringlet
