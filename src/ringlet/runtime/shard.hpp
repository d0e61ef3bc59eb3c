// shard.hpp — shared-nothing multi-core. Thread-safe where it says so; everything else is shard-local.
//
// A ShardSet runs N shards, each a thread pinned to one CPU with its own Loop — and so its own buffer pool, frame
// pool, timers and tasks. Shards share nothing implicitly: the only ways to reach another shard are the calls in
// this file (and ShardChannel in shard_channel.hpp), so cross-core traffic is always visible in the code.
//
// Messages. Each ordered pair of shards (A → B) has one single-producer/single-consumer ring of messages (type-
// erased callables, 64 bytes each, constructed in place). The sender pushes and, once per loop turn (phase 5), wakes
// the receiver's loop if it sleeps — one eventfd write per batch, none while the receiver is busy. The receiver
// runs everything that arrived in phase 3, in order, up to a budget per ring and turn. Rings are created on first
// use, so N shards cost nothing for pairs that never talk.
//
//   co_await submit_to(shard, fn)  runs fn() on `shard` and yields its result (fn may return a Task<R>, which then
//                                  runs there as a task). The caller waits for room when the ring is full.
//   co_await post_to(shard, fn)    the same without a result: resumes once the message is in the ring.
//   Shard::send(shard, fn)         fire-and-forget from any code on a shard (not only tasks): never waits; when the
//                                  ring is full the message queues in the sender until room appears.
// Messages from one shard to another run in the order they were sent. A message to the current shard runs
// inline (submit_to/post_to) or next turn (send).
//
// Memory. Buffers and frames come from per-thread pools and must go back on the thread that took them: a value
// that crosses shards travels as ForeignPtr<T>, which remembers its owner and, when dropped elsewhere, sends the
// delete home.
//
// Shutdown. run() returns once every shard's main task has returned and every message sent has run; then tasks
// still alive are cancelled, messages they send on the way out are delivered, and the loops close together.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "ringlet/runtime/counters.hpp"
#include "ringlet/base/fatal.hpp"
#include "ringlet/runtime/loop.hpp"
#include "ringlet/runtime/spsc_ring.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet {

// A callable moved into a ring slot. Runs exactly once, on the receiving shard.
class Message {
 public:
  static constexpr std::size_t kInline = 48;

  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, Message>>>
  explicit Message(F&& f) {
    using Fn = std::decay_t<F>;
    if constexpr (sizeof(Fn) <= kInline && alignof(Fn) <= alignof(std::max_align_t) &&
                  std::is_nothrow_move_constructible_v<Fn>) {
      new (storage_) Fn(std::forward<F>(f));
      ops_ = &inline_ops<Fn>;
    } else {
      new (storage_) Fn*(new Fn(std::forward<F>(f)));  // too big for a slot: boxed (allocated here, freed there)
      ops_ = &boxed_ops<Fn>;
    }
  }
  Message(Message&& o) noexcept : ops_(o.ops_) {
    ops_(Op::move, storage_, o.storage_);
    o.ops_ = nullptr;
  }
  Message& operator=(Message&&) = delete;
  ~Message() {
    if (ops_ != nullptr) ops_(Op::destroy, storage_, nullptr);
  }

  void run() {
    auto ops = std::exchange(ops_, nullptr);
    ops(Op::run, storage_, nullptr);  // runs, then destroys the callable
  }

 private:
  enum class Op { run, destroy, move };
  using Ops = void (*)(Op, void* self, void* other);

  template <class Fn>
  static void inline_ops(Op op, void* self, void* other) {
    Fn* fn = std::launder(static_cast<Fn*>(self));
    switch (op) {
      case Op::run:
        (*fn)();
        fn->~Fn();
        break;
      case Op::destroy:
        fn->~Fn();
        break;
      case Op::move: {
        Fn* src = std::launder(static_cast<Fn*>(other));
        new (self) Fn(std::move(*src));
        src->~Fn();
        break;
      }
    }
  }
  template <class Fn>
  static void boxed_ops(Op op, void* self, void* other) {
    Fn** box = std::launder(static_cast<Fn**>(self));
    switch (op) {
      case Op::run:
        (**box)();
        delete *box;
        break;
      case Op::destroy:
        delete *box;
        break;
      case Op::move:
        new (self) Fn*(*std::launder(static_cast<Fn**>(other)));
        break;
    }
  }

  Ops ops_;
  alignas(std::max_align_t) unsigned char storage_[kInline];
};
static_assert(sizeof(Message) == 64);

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

namespace detail {

// One ordered pair's ring plus the flag the consumer uses to wake a producer that waits for room.
struct alignas(kCacheLine) ShardPair {
  explicit ShardPair(std::size_t capacity) : ring(capacity) {}
  SpscRing<Message> ring;
  alignas(kCacheLine) std::atomic<bool> producer_waiting{false};
};

// A task waiting for room in an outbound ring (post_to / submit_to); its message is pushed for it.
struct RoomWaiter {
  virtual void push_now(ShardPair& pair) = 0;  // push the message (room is guaranteed) and resume as needed
  RoomWaiter* next = nullptr;

 protected:
  ~RoomWaiter() = default;
};

}  // namespace detail

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
    void flush_now() noexcept override;  // loop phase 5: wake the receiver once per turn
    Shard* owner = nullptr;
    unsigned target = 0;
    detail::ShardPair* pair = nullptr;
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
  detail::ShardPair& pair(unsigned from, unsigned to);           // producer side: creates on first use
  detail::ShardPair* pair_if_any(unsigned from, unsigned to) noexcept;  // consumer side
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
  std::unique_ptr<std::atomic<detail::ShardPair*>[]> pairs_;  // [from * n + to]
  std::atomic<unsigned> started_{0};
  std::atomic<bool> start_failed_{false};
  std::atomic<int> arrived_[3] = {0, 0, 0};  // shards that reached each settle stage
  std::atomic<int> settled_{0};              // highest stage found quiet
};

// ---- awaitables ------------------------------------------------------------------------------------------------

// Waits until fn's message is in `target`'s ring (there is room), then resumes. Not cancellable: a message once
// accepted is delivered. Yields nothing; fn runs later, on the target. Must be awaited on a shard.
class [[nodiscard]] PostTo final : detail::RoomWaiter {
 public:
  template <class F>
  PostTo(unsigned target, F&& fn) : target_(target), message_(std::forward<F>(fn)) {}

  bool await_ready() {
    Shard& self = *Shard::current();
    if (target_ == self.id()) {  // to ourselves: run it now
      message_.run();
      return true;
    }
    Shard::Outbound& out = self.outbound(target_);
    return self.try_push(out, message_);
  }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    Shard& self = *Shard::current();
    self.add_waiter(self.outbound(target_), this);
  }
  void await_resume() const noexcept {}

 private:
  void push_now(detail::ShardPair& pair) override {
    bool pushed = pair.ring.try_emplace(std::move(message_));
    RINGLET_ASSERT(pushed);
    Shard::current()->loop().schedule(waiter_);
  }
  unsigned target_;
  Message message_;
  std::coroutine_handle<> waiter_;
};

namespace detail {
template <class T>
struct TaskResult {
  using type = void;
  static constexpr bool is_task = false;
};
template <class T>
struct TaskResult<Task<T>> {
  using type = T;
  static constexpr bool is_task = true;
};
template <class F>
using SubmitResult = std::conditional_t<TaskResult<std::invoke_result_t<F&>>::is_task,
                                        typename TaskResult<std::invoke_result_t<F&>>::type, std::invoke_result_t<F&>>;
}  // namespace detail

// Runs fn on `target` and yields its result (fn returning Task<R> yields R). The awaiting task stays suspended
// until the answer is back; not cancellable (the remote work is not undone). Waits for room when the ring is full.
template <class R>
class [[nodiscard]] SubmitTo final : detail::RoomWaiter {
 public:
  template <class F>
  SubmitTo(unsigned target, F&& fn) : target_(target), source_(Shard::current()->id()) {
    using Fn = std::decay_t<F>;
    if constexpr (detail::TaskResult<std::invoke_result_t<Fn&>>::is_task) {
      message_.emplace([this, fn = Fn(std::forward<F>(fn))]() mutable {
        Shard::current()->loop().spawn(run_task(this, fn()));
      });
    } else {
      message_.emplace([this, fn = Fn(std::forward<F>(fn))]() mutable {
        if constexpr (std::is_void_v<R>) {
          fn();
        } else {
          result_.emplace(fn());
        }
        reply();
      });
    }
  }
  SubmitTo(const SubmitTo&) = delete;

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    waiter_ = h;
    Shard& self = *Shard::current();
    if (target_ == self.id()) {  // to ourselves: run it now (a task-returning fn becomes a local task)
      message_->run();
      return;
    }
    Shard::Outbound& out = self.outbound(target_);
    if (!self.try_push(out, *message_)) self.add_waiter(out, this);
  }
  R await_resume() {
    if constexpr (!std::is_void_v<R>) return std::move(*result_);
  }

 private:
  template <class T>
  static Task<void> run_task(SubmitTo* self, Task<T> task) {
    if constexpr (std::is_void_v<T>) {
      co_await std::move(task);
    } else {
      self->result_.emplace(co_await std::move(task));
    }
    self->reply();
  }
  // On the target: hand the continuation back to the source shard (to the loop directly when it is us).
  void reply() {
    Shard& here = *Shard::current();
    if (here.id() == source_) {
      here.loop().schedule(waiter_);
      return;
    }
    std::coroutine_handle<> h = waiter_;
    here.send(source_, [h] { Shard::current()->loop().schedule(h); });
  }
  void push_now(detail::ShardPair& pair) override {
    bool pushed = pair.ring.try_emplace(std::move(*message_));
    RINGLET_ASSERT(pushed);
  }

  unsigned target_;
  unsigned source_;
  std::optional<Message> message_;
  std::conditional_t<std::is_void_v<R>, char, std::optional<std::conditional_t<std::is_void_v<R>, char, R>>> result_;
  std::coroutine_handle<> waiter_;
};

template <class F>
PostTo post_to(unsigned target, F&& fn) {
  return PostTo(target, std::forward<F>(fn));
}

template <class F>
SubmitTo<detail::SubmitResult<std::decay_t<F>>> submit_to(unsigned target, F&& fn) {
  return SubmitTo<detail::SubmitResult<std::decay_t<F>>>(target, std::forward<F>(fn));
}

// ---- owned-elsewhere memory ------------------------------------------------------------------------------------

// A pointer to memory owned by the shard that created it. Moves freely between shards (inside messages); when
// dropped on another shard, the delete is sent to the owner (Shard::send), so per-thread pools stay per-thread.
// Reading the pointee on another shard is allowed only while the owner leaves it alone (the usual hand-over).
template <class T, class Deleter = std::default_delete<T>>
class ForeignPtr {
 public:
  ForeignPtr() = default;
  explicit ForeignPtr(std::unique_ptr<T, Deleter> p)
      : p_(std::move(p)), owner_(Shard::current() != nullptr ? Shard::current()->id() : 0) {}
  ForeignPtr(ForeignPtr&&) noexcept = default;
  ForeignPtr& operator=(ForeignPtr&& o) noexcept {
    if (this != &o) {
      reset();
      p_ = std::move(o.p_);
      owner_ = o.owner_;
    }
    return *this;
  }
  ~ForeignPtr() { reset(); }

  T* get() const noexcept { return p_.get(); }
  T& operator*() const noexcept { return *p_; }
  T* operator->() const noexcept { return p_.get(); }
  explicit operator bool() const noexcept { return p_ != nullptr; }
  unsigned owner() const noexcept { return owner_; }
  bool is_local() const noexcept {
    Shard* s = Shard::current();
    return s == nullptr || s->id() == owner_;
  }
  // Frees now when local; otherwise sends the free to the owner.
  void reset() {
    if (!p_) return;
    if (is_local()) {
      p_.reset();
      return;
    }
    T* raw = p_.release();
    Deleter d = p_.get_deleter();
    Shard::current()->send(owner_, [raw, d]() mutable { d(raw); });
  }

 private:
  std::unique_ptr<T, Deleter> p_;
  unsigned owner_ = 0;
};

template <class T, class... Args>
ForeignPtr<T> make_foreign(Args&&... args) {
  return ForeignPtr<T>(std::make_unique<T>(std::forward<Args>(args)...));
}

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
