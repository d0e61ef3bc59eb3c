// timer_wheel.cpp — filing, cascading and firing; see timer_wheel.hpp and docs/design/timers.md.
//
// Invariant (everything below leans on it): a timer with deadline tick d > current_tick_ sits at level
// L = the highest 8-bit digit in which d and current_tick_ differ, in slot s = digit L of d. Because d is larger,
// s is larger than digit L of the current tick, so the lowest set bit of a level's bitmap is its next slot to
// come due, and the lowest occupied level holds the next event.
#include "ringlet/runtime/timer_wheel.hpp"

#include <bit>
#include <limits>

namespace ringlet {

// A node sits in every coroutine frame that waits with a timeout; if this grows, say so in docs/design/timers.md.
static_assert(sizeof(TimerNode) <= 40);

namespace {

using Link = detail::TimerLink;

void init_list(Link& head) noexcept { head.prev = head.next = &head; }

bool list_empty(const Link& head) noexcept { return head.next == &head; }

void push_back(Link& head, Link& link) noexcept {
  link.prev = head.prev;
  link.next = &head;
  head.prev->next = &link;
  head.prev = &link;
}

void unlink(Link& link) noexcept {
  link.prev->next = link.next;
  link.next->prev = link.prev;
  link.prev = link.next = nullptr;
}

// Moves all of `from` to the end of `to`, keeping order. O(1).
void splice_back(Link& to, Link& from) noexcept {
  if (list_empty(from)) return;
  from.next->prev = to.prev;
  to.prev->next = from.next;
  from.prev->next = &to;
  to.prev = from.prev;
  init_list(from);
}

constexpr std::uint64_t digit(std::uint64_t tick, int level) noexcept {
  return (tick >> (level * TimerWheel::kSlotBits)) & (TimerWheel::kSlots - 1);
}

}  // namespace

TimerWheel::TimerWheel(std::int64_t now_ns, std::int64_t tick_ns) : origin_ns_(now_ns), tick_ns_(tick_ns) {
  RINGLET_ASSERT(tick_ns > 0);
  for (Link& slot : slots_) init_list(slot);
  init_list(ready_);
  init_list(due_);
}

TimerWheel::~TimerWheel() {
  auto disarm_all = [](Link& head) {
    while (!list_empty(head)) unlink(*head.next);
  };
  for (Link& slot : slots_) disarm_all(slot);
  disarm_all(ready_);
  disarm_all(due_);
}

// Ticks are counted from origin_ns_ in unsigned arithmetic: the difference of two int64 values always fits in a
// uint64, so no deadline (however far, however negative the origin) overflows.
std::uint64_t TimerWheel::tick_at_or_after(std::int64_t ns) const noexcept {
  if (ns <= origin_ns_) return 0;
  const std::uint64_t since = static_cast<std::uint64_t>(ns) - static_cast<std::uint64_t>(origin_ns_);
  const auto tick = static_cast<std::uint64_t>(tick_ns_);
  return since / tick + (since % tick != 0);
}

std::uint64_t TimerWheel::tick_at_or_before(std::int64_t ns) const noexcept {
  if (ns <= origin_ns_) return 0;
  const std::uint64_t since = static_cast<std::uint64_t>(ns) - static_cast<std::uint64_t>(origin_ns_);
  return since / static_cast<std::uint64_t>(tick_ns_);
}

void TimerWheel::mark_occupied(std::uint32_t slot) noexcept {
  const std::uint32_t level = slot / kSlots;
  const std::uint32_t index = slot % kSlots;
  occupied_[level][index / 64] |= std::uint64_t{1} << (index % 64);
  occupied_levels_ |= 1u << level;
}

void TimerWheel::mark_empty(std::uint32_t slot) noexcept {
  const std::uint32_t level = slot / kSlots;
  const std::uint32_t index = slot % kSlots;
  std::uint64_t* words = occupied_[level];
  words[index / 64] &= ~(std::uint64_t{1} << (index % 64));
  if ((words[0] | words[1] | words[2] | words[3]) == 0) occupied_levels_ &= ~(1u << level);
}

// Files a node with deadline tick >= current_tick_ by the invariant above. Equality only happens while cascading
// onto the tick being processed; it lands in that tick's level-0 slot, which expire() fires right after.
//
// Why the level comes from the differing digit and not from (deadline - now): with the distance rule, a timer
// started later for the same deadline can be closer than 256 ticks and go to level 0 while an earlier one still
// waits in level 1; the earlier one cascades into the level-0 slot behind it and fires second. With the digit
// rule all timers with the same deadline tick are always in the same slot, and cascading keeps list order.
void TimerWheel::file(TimerNode& node) noexcept {
  const std::uint64_t differ = node.deadline_tick_ ^ current_tick_;
  const int level = differ == 0 ? 0 : (std::bit_width(differ) - 1) / kSlotBits;
  const auto slot = static_cast<std::uint32_t>(level * kSlots + digit(node.deadline_tick_, level));
  node.list_ = slot;
  push_back(slots_[slot], node);
  mark_occupied(slot);
}

void TimerWheel::start(TimerNode& node, std::int64_t deadline_ns) {
  RINGLET_ASSERT(!node.armed());
  RINGLET_ASSERT(node.on_fire != nullptr);
  ++size_;
  node.deadline_tick_ = tick_at_or_after(deadline_ns);
  if (node.deadline_tick_ <= current_tick_) {
    node.list_ = kOffWheel;
    push_back(ready_, node);
    return;
  }
  file(node);
}

void TimerWheel::stop(TimerNode& node) noexcept {
  if (!node.armed()) return;
  const std::uint32_t slot = node.list_;
  unlink(node);
  --size_;
  if (slot != kOffWheel && list_empty(slots_[slot])) mark_empty(slot);
}

bool TimerWheel::next_occupied(int& level, int& slot) const noexcept {
  if (occupied_levels_ == 0) return false;
  level = std::countr_zero(occupied_levels_);
  for (int w = 0; w < kWordsPerLevel; ++w) {
    if (const std::uint64_t bits = occupied_[level][w]; bits != 0) {
      slot = w * 64 + std::countr_zero(bits);
      return true;
    }
  }
  fatal("timer wheel: level marked occupied with an empty bitmap");
}

// The first tick at which level `level` slot `slot` comes due: the current tick's digits above the level, the
// slot as the level's digit, zeros below.
std::uint64_t TimerWheel::slot_tick(int level, int slot) const noexcept {
  const int shift = level * kSlotBits;
  const int high_shift = shift + kSlotBits;
  const std::uint64_t high = high_shift >= 64 ? 0 : (current_tick_ >> high_shift) << high_shift;
  return high | (static_cast<std::uint64_t>(slot) << shift);
}

// Re-files the timers of a higher-level slot relative to the (just advanced) current tick, in list order, so
// timers with equal deadlines keep their start order. No callback runs here.
void TimerWheel::cascade(int level, int slot) noexcept {
  const auto index = static_cast<std::uint32_t>(level * kSlots + slot);
  Link& head = slots_[index];
  while (!list_empty(head)) {
    auto& node = static_cast<TimerNode&>(*head.next);
    unlink(node);
    file(node);
  }
  mark_empty(index);
}

// Fires a list front to back. Each node is unlinked and disarmed before its callback, and the callback may stop
// nodes further down the same list (they are simply gone when we get there) or start new ones: those never land
// on this list (see expire()).
std::size_t TimerWheel::fire_all(Link& head) noexcept {
  std::size_t fired = 0;
  while (!list_empty(head)) {
    auto& node = static_cast<TimerNode&>(*head.next);
    stop(node);
    ++fired;
    node.on_fire(&node);
  }
  return fired;
}

std::size_t TimerWheel::expire(std::int64_t now_ns) {
  RINGLET_ASSERT(!expiring_);
  expiring_ = true;
  // Timers started with a past deadline first: their deadline is at or before the current tick, earlier than
  // anything in the wheel. Taken over as a whole so that ones started by these callbacks wait for the next call.
  splice_back(due_, ready_);
  std::size_t fired = fire_all(due_);

  const std::uint64_t target = tick_at_or_before(now_ns);
  int level = 0;
  int slot = 0;
  while (next_occupied(level, slot)) {
    const std::uint64_t tick = slot_tick(level, slot);
    if (tick > target) break;
    // Jumping straight to the next occupied slot keeps the invariant: no slot boundary crossed on the way holds
    // a timer. Callbacks below start timers relative to this tick, so a deadline within the jump still fires in
    // this call, in order, while one at or before this tick goes to ready_ and waits for the next call.
    current_tick_ = tick;
    if (level > 0) cascade(level, slot);
    fired += fire_all(slots_[digit(tick, 0)]);
  }
  if (target > current_tick_) current_tick_ = target;
  expiring_ = false;
  return fired;
}

std::int64_t TimerWheel::next_timeout_ns(std::int64_t now_ns) const {
  if (!list_empty(ready_) || !list_empty(due_)) return 0;
  int level = 0;
  int slot = 0;
  if (!next_occupied(level, slot)) return -1;
  // For level 0 this is the timer's own tick; for a higher level it is the slot's first tick, a lower bound.
  // 128-bit so that a deadline centuries away saturates instead of wrapping.
  const __int128 due_ns = static_cast<__int128>(origin_ns_) +
                          static_cast<__int128>(slot_tick(level, slot)) * static_cast<__int128>(tick_ns_);
  const __int128 wait = due_ns - now_ns;
  if (wait <= 0) return 0;
  if (wait > std::numeric_limits<std::int64_t>::max()) return std::numeric_limits<std::int64_t>::max();
  return static_cast<std::int64_t>(wait);
}

}  // namespace ringlet
