// mailbox.hpp — one ordered pair of shards (A → B): the ring A pushes messages into and B drains, and the tasks on
// A that wait for room in it. The ring and its flag are thread-safe for exactly that pair; RoomWaiter is core-local
// to A.
//
// Shard (shard_set.hpp) owns both ends: its producer half keeps an Outbound per target (overflow queue, waiting
// tasks, the once-per-turn wake-up), its consumer half drains every inbound mailbox in loop phase 3. Those
// methods live in mailbox.cpp; creating mailboxes on first use is ShardSet's job.
#pragma once

#include <atomic>
#include <cstddef>

#include "ringlet/runtime/shard/message.hpp"
#include "ringlet/runtime/shard/spsc_ring.hpp"

namespace ringlet::detail {

// One ordered pair's ring plus the flag the consumer uses to wake a producer that waits for room.
struct alignas(kCacheLine) Mailbox {
  explicit Mailbox(std::size_t capacity) : ring(capacity) {}
  SpscRing<Message> ring;
  alignas(kCacheLine) std::atomic<bool> producer_waiting{false};
};

// A task waiting for room in an outbound ring (post_to / submit_to); its message is pushed for it.
struct RoomWaiter {
  virtual void push_now(Mailbox& mailbox) = 0;  // push the message (room is guaranteed) and resume as needed
  RoomWaiter* next = nullptr;

 protected:
  ~RoomWaiter() = default;
};

}  // namespace ringlet::detail
