// shard_set.hpp — shared-nothing multi-core: the shards and the set that runs them. Thread-safe where it says so;
// everything else is shard-local.
//
// A ShardSet runs N shards, each a thread pinned to one CPU with its own Loop — and so its own buffer pool, frame
// pool, timers and tasks. Shards share nothing implicitly: the only ways to reach another shard are the calls of
// this folder, so cross-core traffic is always visible in the code:
//   message.hpp      the 64-byte type-erased callable that crosses
//   mailbox.hpp      one ordered pair's SPSC ring (spsc_ring.hpp) and the tasks waiting for room in it
//   submit_to.hpp    co_await submit_to(shard, fn) / post_to(shard, fn) from a task
//   foreign_ptr.hpp  memory that belongs to another shard
//   channel.hpp      a bounded stream of values between two shards
// and Shard::send below, for code that is not a task.
//
// Messages. Each ordered pair of shards (A → B) has one single-producer/single-consumer ring of messages. The
// sender pushes and, once per loop turn (phase 6), wakes the receiver's loop if it sleeps — one eventfd write per
// batch, none while the receiver is busy. The receiver runs everything that arrived in phase 3, in order, up to a
// budget per ring and turn. Rings are created on first use, so N shards cost nothing for pairs that never talk.
// Messages from one shard to another run in the order they were sent. A message to the current shard runs inline
// (submit_to/post_to) or next turn (send).
//
// Memory. Buffers and frames come from per-thread pools and must go back on the thread that took them: a value
// that crosses shards travels as ForeignPtr<T>, which remembers its owner and, when dropped elsewhere, sends the
// delete home.
//
// Shutdown. run() returns once every shard's main task has returned and every message sent has run; then tasks
// still alive are cancelled, messages they send on the way out are delivered, and the loops close together.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "ringlet/base/fatal.hpp"
#include "ringlet/runtime/counters.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/shard/mailbox.hpp"
#include "ringlet/runtime/shard/message.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

struct ShardSetOptions {
  unsigned shards = 0;               // 0: one per CPU in the process's affinity mask
  bool pin = true;                   // pin shard i to the i-th CPU of the affinity mask
  LoopOptions loop;                  // every shard's loop (its clock must be thread-safe)
  std::size_t ring_capacity = 1024;  // messages per ordered pair of shards (64 bytes each)
};

// What a shard has done, as seen from the shard itself (Shard::stats(); other shards ask with submit_to).
struct ShardStats {
  unsigned shard = 0;
  int cpu = -1;                        // the CPU it is pinned to, -1 when not pinned
  std::uint64_t connections_open = 0;  // streams open on this shard
  std::uint64_t connections_accepted = 0;
  std::uint64_t bytes_in = 0;
  std::uint64_t bytes_out = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_received = 0;
  std::uint64_t loop_iterations = 0;
  std::int64_t kernel_wait_ns = 0;     // time blocked in the kernel waiting for completions
};

class ShardSet;
template <class R>
class SubmitTo;
class PostTo;

// One shard: a thread, its loop and its ends of the message rings. Shard-local except id() and counters().
class Shard final : public Inbox {
 public:
  // Messages run per inbound ring per loop turn before tasks get their turn.
  static constexpr std::size_t kDrainBudget = 4096;

  unsigned id() const noexcept { return id_; }
  unsigned count() const noexcept;
  int cpu() const noexcept { return cpu_; }
  ShardSet& set() noexcept { return *set_; }
  Loop& loop() noexcept { return *loop_; }
  // The shard running on this thread, or nullptr.
  static Shard* current() noexcept;

  // Runs fn() on shard `target` (any shard, this one included: then next turn). Never waits: when the ring is full
  // the message waits in this shard until there is room. For code that is not a task (message handlers, callbacks).
  template <class F>
  void send(unsigned target, F&& fn);

  // Thread-safe: this shard's counters (streams, bytes, messages).
  const ThreadCounters& counters() const noexcept { return *counters_; }
  // Messages sent with send() that wait in this shard for room in a ring (memory the rings do not bound).
  std::uint64_t queued_messages() const noexcept { return overflow_size_.load(std::memory_order_relaxed); }
  // This shard's statistics; call on the shard itself.
  ShardStats stats() const noexcept;

  bool drain() noexcept override;  // Inbox: runs arrived messages, pushes queued outbound ones

 private:
  friend class ShardSet;
  template <class R>
  friend class SubmitTo;
  friend class PostTo;

  // The sending side of one ordered pair, kept by the producer shard.
  struct Outbound final : Flushable {
    void flush_now() noexcept override;  // loop phase 6: wake the receiver once per turn
    Shard* owner = nullptr;
    unsigned target = 0;
    detail::Mailbox* mailbox = nullptr;
    std::deque<Message> overflow;                 // sent while the ring was full
    detail::RoomWaiter* waiters_head = nullptr;   // tasks waiting for room, FIFO
    detail::RoomWaiter* waiters_tail = nullptr;
    bool queued_for_retry = false;
    bool backlogged() const noexcept { return !overflow.empty() || waiters_head != nullptr; }
  };

  Outbound& outbound(unsigned target);
  // Pushes m now if nothing waits before it and there is room; false otherwise (m untouched).
  bool try_push(Outbound& out, Message& m);
  void note_pushed(Outbound& out);
  void add_waiter(Outbound& out, detail::RoomWaiter* w);
  // Moves overflow and waiters into the ring while there is room; returns true when all went.
  bool retry(Outbound& out);
  void ask_for_room(Outbound& out);

  ShardSet* set_ = nullptr;
  unsigned id_ = 0;
  int cpu_ = -1;
  Loop* loop_ = nullptr;
  ThreadCounters* counters_ = nullptr;
  std::vector<std::unique_ptr<Outbound>> outbound_;  // by target, created on first use
  std::vector<Outbound*> retry_list_;                // outbound pairs with a backlog
  std::atomic<std::uint64_t> overflow_size_{0};      // messages in this shard's overflow queues (for shutdown)
};

class ShardSet {
 public:
  explicit ShardSet(ShardSetOptions options = {});
  ShardSet(const ShardSet&) = delete;
  ShardSet& operator=(const ShardSet&) = delete;
  ~ShardSet();

  unsigned size() const noexcept { return static_cast<unsigned>(shards_.size()); }
  Shard& shard(unsigned i) noexcept { return *shards_[i]; }

  // Runs main(shard) as the root task of every shard — shard 0 on the calling thread, the others on threads of
  // their own — and returns when all of them have returned and every message has run (see the file comment).
  // Fails (EOPNOTSUPP) without running anything when a shard's loop cannot be created, e.g. the backend asked
  // for is not available.
  Status run(std::function<Task<void>(Shard&)> main);

  // The CPUs of this process's affinity mask, in order (what `shards = 0` counts).
  static std::vector<int> allowed_cpus();

 private:
  friend class Shard;
  detail::Mailbox& mailbox(unsigned from, unsigned to);        // producer side: creates on first use
  detail::Mailbox* mailbox_if_any(unsigned from, unsigned to) noexcept;  // consumer side
  void shard_thread(unsigned index, const std::function<Task<void>(Shard&)>& main);
  // Waits until every shard has called this `round` times; false when a shard failed to start.
  bool start_barrier(bool ok, unsigned round);
  // Runs this shard's loop until every shard has reached `stage` and no message is in flight anywhere.
  void settle(Shard& shard, int stage);
  bool quiet() const noexcept;
  void wake_all() noexcept;

  ShardSetOptions options_;
  std::vector<int> cpus_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<std::atomic<detail::Mailbox*>[]> mailboxes_;  // [from * n + to]
  std::atomic<unsigned> started_{0};
  std::atomic<bool> start_failed_{false};
  std::atomic<int> arrived_[3] = {0, 0, 0};  // shards that reached each settle stage
  std::atomic<int> settled_{0};              // highest stage found quiet
};

// ---- Shard::send -------------------------------------------------------------------------------------------------

template <class F>
void Shard::send(unsigned target, F&& fn) {
  if (target == id_) {
    // To ourselves: next turn, like a message (the loop's posted-work queue would also do; this keeps order).
    Outbound& self_out = outbound(target);
    self_out.overflow.emplace_back(std::forward<F>(fn));
    overflow_size_.fetch_add(1, std::memory_order_relaxed);
    if (!self_out.queued_for_retry) {
      self_out.queued_for_retry = true;
      retry_list_.push_back(&self_out);
    }
    loop_->wake();
    return;
  }
  Outbound& out = outbound(target);
  Message m(std::forward<F>(fn));
  if (try_push(out, m)) return;
  out.overflow.push_back(std::move(m));
  overflow_size_.fetch_add(1, std::memory_order_relaxed);
  ask_for_room(out);
}

}  // namespace ringlet
