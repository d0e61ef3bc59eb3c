// timer_wheel.hpp — the loop's timers: a hierarchical timing wheel with O(1) start and stop.
// Core-local: one wheel per loop, touched only by the loop's thread.
//
// Time is cut into ticks (1 ms by default) counted from the wheel's creation. A deadline becomes the first tick
// boundary at or after it, so a timer never fires early and fires at most one tick late. The wheel has 8 levels of
// 256 slots; level L slot s holds the timers whose deadline tick agrees with the current tick in every 8-bit digit
// above L and has digit s at L. A timer is re-filed one or more levels down ("cascades") when the current tick
// reaches its slot; level 0 slots each hold exactly one tick. Per-level occupancy bitmaps let expire() jump
// straight to the next occupied slot, so its cost is the timers fired plus the occupied slots crossed, never the
// ticks elapsed. docs/design/timers.md explains the level rule and why it keeps equal deadlines in start order.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

class TimerWheel;

namespace detail {
// The links of a timer list. Each wheel slot owns a circular list with a sentinel, so linking and unlinking
// never branch on "first" or "last".
struct TimerLink {
  TimerLink* prev = nullptr;
  TimerLink* next = nullptr;  // nullptr: not on any list (the node is not armed)
};
}  // namespace detail

// Intrusive: lives in the caller's memory (usually a coroutine frame) and costs the wheel no allocation. The owner
// sets on_fire, then start()s it. The callback runs after the node is disarmed, so it may start it again or free
// its memory. Destroying an armed node is a bug (the wheel would keep a dangling pointer) and aborts. To reach
// the owner from the callback, derive from TimerNode and static_cast the pointer back.
struct TimerNode : private detail::TimerLink {
  using Callback = void (*)(TimerNode*);
  Callback on_fire = nullptr;  // set by the owner before start()

  TimerNode() = default;
  TimerNode(const TimerNode&) = delete;
  TimerNode& operator=(const TimerNode&) = delete;
  ~TimerNode() {
    if (armed()) [[unlikely]]
      fatal("TimerNode destroyed while armed");
  }

  bool armed() const noexcept { return next != nullptr; }

 private:
  friend class TimerWheel;
  std::uint64_t deadline_tick_ = 0;
  std::uint32_t list_ = 0;  // which wheel slot holds the node, or TimerWheel::kOffWheel
};

class TimerWheel {
 public:
  static constexpr int kLevels = 8;  // 8 levels x 8 bits: every 64-bit tick is representable, nothing is clamped
  static constexpr int kSlotBits = 8;
  static constexpr int kSlots = 1 << kSlotBits;

  explicit TimerWheel(std::int64_t now_ns, std::int64_t tick_ns = 1'000'000);
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;
  ~TimerWheel();  // disarms whatever is still armed, without firing it

  // O(1). Precondition: !node.armed() and node.on_fire set. A deadline at or before the current tick fires on the
  // next expire(), before anything still in the wheel, in start order.
  void start(TimerNode& node, std::int64_t deadline_ns);
  // O(1). No-op when the node is not armed; safe from any callback, also on a node due in the same expire().
  void stop(TimerNode& node) noexcept;

  // Fires every timer whose deadline tick has been reached by now_ns, in deadline order; equal deadlines fire in
  // the order they were started. Callbacks may start and stop any timer. A timer started by a callback with a
  // deadline that has already passed fires on the next expire(), not this one, so a callback that re-arms itself
  // "now" cannot spin forever. Returns the number fired. Not reentrant (calling it from a callback aborts).
  std::size_t expire(std::int64_t now_ns);

  // Nanoseconds until the loop must wake for timers: 0 when a timer is already due, -1 when none is armed,
  // otherwise never later than the next timer's tick boundary (exact when that timer is within 256 ticks;
  // earlier when it waits in a higher level, which costs at most one extra wake-up per level it cascades through).
  std::int64_t next_timeout_ns(std::int64_t now_ns) const;

  std::size_t size() const noexcept { return size_; }  // armed timers
  std::int64_t tick_ns() const noexcept { return tick_ns_; }

 private:
  static constexpr std::uint32_t kWheelSlots = kLevels * kSlots;
  static constexpr std::uint32_t kOffWheel = kWheelSlots;  // on ready_ or due_: no occupancy bit to maintain
  static constexpr int kWordsPerLevel = kSlots / 64;

  using Link = detail::TimerLink;

  std::uint64_t tick_at_or_after(std::int64_t ns) const noexcept;
  std::uint64_t tick_at_or_before(std::int64_t ns) const noexcept;
  void file(TimerNode& node) noexcept;
  void mark_occupied(std::uint32_t slot) noexcept;
  void mark_empty(std::uint32_t slot) noexcept;
  bool next_occupied(int& level, int& slot) const noexcept;
  std::uint64_t slot_tick(int level, int slot) const noexcept;
  void cascade(int level, int slot) noexcept;
  std::size_t fire_all(Link& list) noexcept;

  Link slots_[kWheelSlots];
  std::uint64_t occupied_[kLevels][kWordsPerLevel] = {};
  std::uint32_t occupied_levels_ = 0;  // bit L set: some slot of level L is occupied
  Link ready_;  // started with a deadline already reached; fired first by the next expire()
  Link due_;    // ready_ as taken over by the running expire()
  std::uint64_t current_tick_ = 0;  // every timer with a deadline tick <= this has fired or is on ready_
  std::int64_t origin_ns_;          // tick 0
  std::int64_t tick_ns_;
  std::size_t size_ = 0;
  bool expiring_ = false;
};

}  // namespace ringlet
