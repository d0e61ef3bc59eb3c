// timer_wheel_test.cpp — order, cancellation, re-arming, rounding and scale of the timer wheel.
// Most tests use a 1 ns tick so deadlines read as ticks; the rounding tests use the default 1 ms tick.
#include "ringlet/runtime/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <memory>
#include <ostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

namespace ringlet {
namespace {

constexpr std::int64_t kMs = 1'000'000;

// A node that records its id in a shared log when it fires.
struct Probe : TimerNode {
  int id = 0;
  std::vector<int>* log = nullptr;

  Probe() { on_fire = &Probe::record; }
  static void record(TimerNode* node) {
    auto* self = static_cast<Probe*>(node);
    self->log->push_back(self->id);
  }
};

std::vector<std::unique_ptr<Probe>> make_probes(int count, std::vector<int>& log) {
  std::vector<std::unique_ptr<Probe>> probes;
  for (int i = 0; i < count; ++i) {
    probes.push_back(std::make_unique<Probe>());
    probes.back()->id = i;
    probes.back()->log = &log;
  }
  return probes;
}

// ---- order ----------------------------------------------------------------------------------------------------

struct OrderCase {
  std::string name;
  std::vector<std::int64_t> deadlines;  // in ticks (tick = 1 ns); probe i gets deadlines[i]
  std::vector<std::int64_t> expire_at;  // successive expire() times
  friend void PrintTo(const OrderCase& c, std::ostream* os) { *os << c.name; }
};

class FireOrder : public ::testing::TestWithParam<OrderCase> {};

TEST_P(FireOrder, fires_in_deadline_order_across_levels) {
  const OrderCase& c = GetParam();
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(static_cast<int>(c.deadlines.size()), log);
  for (std::size_t i = 0; i < c.deadlines.size(); ++i) wheel.start(*probes[i], c.deadlines[i]);
  for (std::int64_t now : c.expire_at) wheel.expire(now);

  std::vector<int> expected(c.deadlines.size());
  for (std::size_t i = 0; i < expected.size(); ++i) expected[i] = static_cast<int>(i);
  std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) { return c.deadlines[a] < c.deadlines[b]; });
  EXPECT_EQ(log, expected);
  EXPECT_EQ(wheel.size(), 0u);
}

const std::int64_t kLevelEdges[] = {1, 255, 256, 257, 65'535, 65'536, 65'537, (1 << 24) - 1, 1 << 24,
                                    (std::int64_t{1} << 32) + 7, (std::int64_t{1} << 40) + 3,
                                    (std::int64_t{1} << 56) + 1, std::numeric_limits<std::int64_t>::max()};

INSTANTIATE_TEST_SUITE_P(
    Cases, FireOrder,
    ::testing::Values(
        OrderCase{"level0_reverse_start", {9, 7, 5, 3, 1}, {10}},
        OrderCase{"level_edges_one_jump",
                  {std::begin(kLevelEdges), std::end(kLevelEdges)},
                  {std::numeric_limits<std::int64_t>::max()}},
        OrderCase{"level_edges_reversed_many_jumps",
                  {std::rbegin(kLevelEdges), std::rend(kLevelEdges)},
                  {100, 256, 300, 65'536, 1 << 20, std::int64_t{1} << 33, std::int64_t{1} << 57,
                   std::numeric_limits<std::int64_t>::max()}},
        OrderCase{"interleaved_levels", {70'000, 3, 300, 65'536, 256, 2, 70'000, 300, 3}, {1 << 17}},
        OrderCase{"step_every_tick_through_a_cascade", {300, 257, 256, 511, 512, 255}, {
            [] {
              std::vector<std::int64_t> v;
              for (int t = 1; t <= 600; ++t) v.push_back(t);
              return v;
            }()}}),
    [](const auto& info) { return info.param.name; });

TEST(TimerWheel, equal_deadlines_fire_in_arming_order) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(6, log);
  const std::int64_t deadlines[] = {500, 70'000, 500, 70'000, 500, 70'000};
  for (int i = 0; i < 6; ++i) wheel.start(*probes[i], deadlines[i]);
  wheel.expire(100'000);
  EXPECT_EQ(log, (std::vector<int>{0, 2, 4, 1, 3, 5}));
  EXPECT_EQ(wheel.size(), 0u);
}

// The ordering trap. Choosing the level by (deadline - now) puts probe 1 (started at `later`, less than 256 ticks
// before the deadline) into level 0, while probe 0 (started at `first`) still waits in a higher level; probe 0
// then cascades into the level-0 slot behind probe 1 and fires second. The digit rule keeps them in one slot.
struct CascadeCase {
  std::string name;
  std::int64_t first;
  std::int64_t later;
  std::int64_t deadline;
  friend void PrintTo(const CascadeCase& c, std::ostream* os) { *os << c.name; }
};

class EqualDeadlinesAcrossCascades : public ::testing::TestWithParam<CascadeCase> {};

TEST_P(EqualDeadlinesAcrossCascades, equal_deadlines_started_at_different_times_fire_in_arming_order) {
  const CascadeCase& c = GetParam();
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(3, log);
  wheel.expire(c.first);
  wheel.start(*probes[0], c.deadline);
  wheel.expire(c.later);
  wheel.start(*probes[1], c.deadline);
  wheel.start(*probes[2], c.deadline);
  EXPECT_EQ(wheel.expire(c.deadline - 1), 0u);
  EXPECT_EQ(wheel.expire(c.deadline), 3u);
  EXPECT_EQ(log, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(wheel.size(), 0u);
}

INSTANTIATE_TEST_SUITE_P(
    Cases, EqualDeadlinesAcrossCascades,
    // Named after where the distance rule would put the later timer; the deadline-minus-later distance is < 256
    // in the cases that break it.
    ::testing::Values(CascadeCase{"near_level1_boundary", 0, 100, 300},
                      CascadeCase{"one_tick_before_the_level1_boundary", 0, 255, 300},
                      CascadeCase{"after_the_earlier_one_cascaded", 0, 266, 300},
                      CascadeCase{"far_in_level2", 0, 1'000, 66'000},
                      CascadeCase{"across_a_level2_boundary", 0, 65'500, 65'600},
                      CascadeCase{"level3_earlier_level1_later", 10, 16'777'316, 16'777'556},
                      CascadeCase{"level7_boundary", 0, (std::int64_t{1} << 60) - 10, (std::int64_t{1} << 60) + 5}),
    [](const auto& info) { return info.param.name; });

// A model check: timers started at random times for a few shared deadlines, expired at random times. Every timer
// must fire at the first expire() that reaches its deadline, and the firing order must be (expire call, deadline,
// start order).
TEST(TimerWheel, random_starts_and_expires_fire_in_deadline_then_start_order) {
  std::mt19937_64 rng(12345);
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  constexpr int kCount = 20'000;
  auto probes = make_probes(kCount, log);
  std::vector<std::int64_t> deadline(kCount);
  std::vector<int> fired_in_call(kCount, -1);
  std::vector<std::int64_t> expire_times;

  // Offsets from an epoch that moves on once all of them have passed, so the same shapes recur at other digits.
  const std::int64_t shared_offsets[] = {40, 255, 256, 300, 5'000, 65'536, 70'001, 1 << 20, (1 << 20) + 1};
  constexpr std::int64_t kEpochLength = (1 << 20) + 1'000;
  std::int64_t epoch = 0;
  std::int64_t now = 0;
  int started = 0;
  std::size_t seen = 0;
  while (started < kCount) {
    for (int burst = static_cast<int>(rng() % 50); burst > 0 && started < kCount; --burst) {
      const std::int64_t d = epoch + shared_offsets[rng() % std::size(shared_offsets)];
      if (d <= now) continue;
      deadline[started] = d;
      wheel.start(*probes[started], d);
      ++started;
    }
    now += static_cast<std::int64_t>(rng() % 3'000);
    if (now >= epoch + kEpochLength) epoch += kEpochLength;
    wheel.expire(now);
    expire_times.push_back(now);
    for (; seen < log.size(); ++seen) fired_in_call[log[seen]] = static_cast<int>(expire_times.size()) - 1;
  }
  wheel.expire(std::numeric_limits<std::int64_t>::max());
  expire_times.push_back(std::numeric_limits<std::int64_t>::max());
  for (; seen < log.size(); ++seen) fired_in_call[log[seen]] = static_cast<int>(expire_times.size()) - 1;

  ASSERT_EQ(log.size(), static_cast<std::size_t>(kCount));
  for (int i = 0; i < kCount; ++i) {
    const int call = fired_in_call[i];
    ASSERT_GE(expire_times[call], deadline[i]) << "timer " << i << " fired early";
    if (call > 0) {
      ASSERT_LT(expire_times[call - 1], deadline[i]) << "timer " << i << " fired late";
    }
  }
  std::vector<int> expected(kCount);
  for (int i = 0; i < kCount; ++i) expected[i] = i;
  std::stable_sort(expected.begin(), expected.end(), [&](int a, int b) {
    return std::tie(fired_in_call[a], deadline[a]) < std::tie(fired_in_call[b], deadline[b]);
  });
  EXPECT_EQ(log, expected);
  EXPECT_EQ(wheel.size(), 0u);
}

// ---- stop -------------------------------------------------------------------------------------------------------

TEST(TimerWheel, stop_before_fire_prevents_firing_at_every_level) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  const std::int64_t deadlines[] = {1, 200, 256, 40'000, 70'000, 1 << 25, std::int64_t{1} << 50};
  auto probes = make_probes(static_cast<int>(std::size(deadlines)), log);
  for (std::size_t i = 0; i < std::size(deadlines); ++i) wheel.start(*probes[i], deadlines[i]);
  EXPECT_EQ(wheel.size(), std::size(deadlines));
  for (std::size_t i = 0; i < std::size(deadlines); i += 2) {
    wheel.stop(*probes[i]);
    EXPECT_FALSE(probes[i]->armed());
  }
  wheel.stop(*probes[0]);  // stopping twice is a no-op
  EXPECT_EQ(wheel.size(), 3u);
  wheel.expire(std::int64_t{1} << 51);
  EXPECT_EQ(log, (std::vector<int>{1, 3, 5}));
  EXPECT_EQ(wheel.size(), 0u);
  EXPECT_EQ(wheel.next_timeout_ns(0), -1);
}

TEST(TimerWheel, stopping_the_last_timer_of_a_slot_lets_expire_skip_it) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(2, log);
  wheel.start(*probes[0], 10);
  wheel.start(*probes[1], 70'000);
  wheel.stop(*probes[0]);
  EXPECT_EQ(wheel.next_timeout_ns(0), 65'536);  // level-2 slot 1 starts at tick 65536
  wheel.stop(*probes[1]);
  EXPECT_EQ(wheel.next_timeout_ns(0), -1);
  EXPECT_EQ(wheel.expire(100'000), 0u);
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(wheel.size(), 0u);
}

struct Stopper : TimerNode {
  TimerWheel* wheel = nullptr;
  TimerNode* victim = nullptr;
  std::vector<int>* log = nullptr;

  Stopper() { on_fire = &Stopper::fire; }
  static void fire(TimerNode* node) {
    auto* self = static_cast<Stopper*>(node);
    self->log->push_back(-1);
    self->wheel->stop(*self->victim);
  }
};

TEST(TimerWheel, stop_from_another_timers_callback_cancels_a_timer_due_in_the_same_expire) {
  struct Case {
    std::int64_t stopper_deadline;
    std::int64_t victim_deadline;
  };
  for (const Case c : {Case{5, 5}, Case{5, 6}, Case{5, 300}, Case{250, 70'000}}) {
    SCOPED_TRACE(c.victim_deadline);
    TimerWheel wheel(0, 1);
    std::vector<int> log;
    auto probes = make_probes(2, log);
    Stopper stopper;
    stopper.wheel = &wheel;
    stopper.victim = probes[0].get();
    stopper.log = &log;
    wheel.start(stopper, c.stopper_deadline);
    wheel.start(*probes[0], c.victim_deadline);
    wheel.start(*probes[1], c.victim_deadline);
    EXPECT_EQ(wheel.expire(1'000'000), 2u);
    EXPECT_EQ(log, (std::vector<int>{-1, 1}));
    EXPECT_EQ(wheel.size(), 0u);
  }
}

TEST(TimerWheel, stop_from_a_callback_cancels_a_timer_started_with_a_past_deadline) {
  TimerWheel wheel(100, 1);
  std::vector<int> log;
  auto probes = make_probes(1, log);
  Stopper stopper;
  stopper.wheel = &wheel;
  stopper.victim = probes[0].get();
  stopper.log = &log;
  wheel.start(stopper, 50);
  wheel.start(*probes[0], 60);
  EXPECT_EQ(wheel.expire(100), 1u);
  EXPECT_EQ(log, (std::vector<int>{-1}));
  EXPECT_EQ(wheel.size(), 0u);
}

// ---- re-arm -----------------------------------------------------------------------------------------------------

struct Periodic : TimerNode {
  TimerWheel* wheel = nullptr;
  std::int64_t period = 0;
  std::int64_t next = 0;
  int remaining = 0;
  std::vector<std::int64_t> fired;

  Periodic() { on_fire = &Periodic::fire; }
  static void fire(TimerNode* node) {
    auto* self = static_cast<Periodic*>(node);
    self->fired.push_back(self->next);
    EXPECT_FALSE(self->armed());
    if (--self->remaining > 0) {
      self->next += self->period;
      self->wheel->start(*self, self->next);
    }
  }
};

TEST(TimerWheel, rearm_from_own_callback_fires_again_within_the_same_jump) {
  TimerWheel wheel(0, 1);
  Periodic p;
  p.wheel = &wheel;
  p.period = 100;
  p.next = 100;
  p.remaining = 10;
  wheel.start(p, p.next);
  EXPECT_EQ(wheel.expire(550), 5u);
  EXPECT_EQ(p.fired, (std::vector<std::int64_t>{100, 200, 300, 400, 500}));
  EXPECT_EQ(wheel.expire(10'000), 5u);
  EXPECT_EQ(p.fired.back(), 1'000);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, rearm_with_a_past_deadline_fires_on_the_next_expire_not_this_one) {
  TimerWheel wheel(0, 1);
  Periodic p;
  p.wheel = &wheel;
  p.period = 0;  // re-arms for the deadline it just fired at: already passed
  p.next = 10;
  p.remaining = 3;
  wheel.start(p, p.next);
  EXPECT_EQ(wheel.expire(20), 1u);
  EXPECT_TRUE(p.armed());
  EXPECT_EQ(wheel.next_timeout_ns(20), 0);
  EXPECT_EQ(wheel.expire(20), 1u);
  EXPECT_EQ(wheel.expire(20), 1u);
  EXPECT_EQ(p.fired.size(), 3u);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, past_deadlines_fire_on_the_next_expire_before_wheel_timers_in_start_order) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(4, log);
  wheel.expire(1'000);
  wheel.start(*probes[0], 1'001);
  wheel.start(*probes[1], 900);
  wheel.start(*probes[2], -5);
  wheel.start(*probes[3], 1'000);
  EXPECT_EQ(wheel.next_timeout_ns(1'000), 0);
  EXPECT_EQ(wheel.expire(1'000), 3u);
  EXPECT_EQ(log, (std::vector<int>{1, 2, 3}));
  EXPECT_EQ(wheel.expire(1'001), 1u);
  EXPECT_EQ(wheel.size(), 0u);
}

// ---- time -------------------------------------------------------------------------------------------------------

TEST(TimerWheel, never_fires_early_and_fires_at_the_first_tick_boundary_at_or_after_the_deadline) {
  constexpr std::int64_t kOrigin = 123'456'789;  // ticks count from the wheel's creation, not from zero
  struct Case {
    std::int64_t deadline;  // ns after the origin
    std::int64_t fires_at;  // ns after the origin
  };
  const Case cases[] = {{1, kMs},           {kMs - 1, kMs},         {kMs, kMs},         {kMs + 1, 2 * kMs},
                        {255 * kMs + 1, 256 * kMs}, {256 * kMs, 256 * kMs}, {70'000 * kMs + 7, 70'001 * kMs},
                        {3'600'000 * kMs, 3'600'000 * kMs}};
  for (const Case& c : cases) {
    SCOPED_TRACE(c.deadline);
    TimerWheel wheel(kOrigin);
    std::vector<int> log;
    auto probes = make_probes(1, log);
    wheel.start(*probes[0], kOrigin + c.deadline);
    EXPECT_EQ(wheel.expire(kOrigin + c.deadline - 1), 0u);
    EXPECT_EQ(wheel.expire(kOrigin + c.fires_at - 1), 0u);
    EXPECT_EQ(wheel.expire(kOrigin + c.fires_at), 1u);
    EXPECT_EQ(wheel.size(), 0u);
  }
}

TEST(TimerWheel, never_fires_early_under_random_deadlines_and_random_expire_times) {
  std::mt19937_64 rng(7);
  TimerWheel wheel(0);
  constexpr int kCount = 5'000;
  struct Checked : TimerNode {
    std::int64_t deadline = 0;
    const std::int64_t* now = nullptr;
    int fires = 0;
    static void fire(TimerNode* node) {
      auto* self = static_cast<Checked*>(node);
      ++self->fires;
      EXPECT_GE(*self->now, self->deadline);
      // Fired by the first expire() at or after the tick boundary, which is at most one step (< 0.6 ms) later.
      const std::int64_t boundary = (self->deadline + kMs - 1) / kMs * kMs;
      EXPECT_GE(*self->now, boundary);
      EXPECT_LT(*self->now - boundary, 600'000);
    }
  };
  std::int64_t now = 0;
  std::vector<Checked> nodes(kCount);
  for (auto& n : nodes) {
    n.on_fire = &Checked::fire;
    n.now = &now;
    n.deadline = static_cast<std::int64_t>(rng() % (20'000 * kMs));
    wheel.start(n, n.deadline);
  }
  while (wheel.size() > 0) {
    now += static_cast<std::int64_t>(rng() % (600'000));
    wheel.expire(now);
  }
  for (const auto& n : nodes) EXPECT_EQ(n.fires, 1);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, next_timeout_is_minus_one_when_empty_and_zero_when_due) {
  TimerWheel wheel(0);
  EXPECT_EQ(wheel.next_timeout_ns(0), -1);
  std::vector<int> log;
  auto probes = make_probes(1, log);
  wheel.start(*probes[0], 5 * kMs);
  EXPECT_EQ(wheel.next_timeout_ns(0), 5 * kMs);
  EXPECT_EQ(wheel.next_timeout_ns(2 * kMs + 10), 3 * kMs - 10);
  EXPECT_EQ(wheel.next_timeout_ns(9 * kMs), 0);  // overdue, expire() not yet called
  wheel.expire(9 * kMs);
  EXPECT_EQ(wheel.next_timeout_ns(9 * kMs), -1);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, next_timeout_is_exact_in_level0_and_a_lower_bound_above_never_past_the_tick_boundary) {
  struct Case {
    std::int64_t now;       // the wheel has expired up to here
    std::int64_t deadline;
    std::int64_t expected;  // next_timeout_ns(now)
  };
  const Case cases[] = {
      {0, 1, kMs},                          // rounds up to the first boundary
      {0, kMs, kMs},
      {0, 1'500'000, 2 * kMs},
      {0, 255 * kMs, 255 * kMs},            // last slot of level 0
      {0, 256 * kMs, 256 * kMs},            // level 1, slot start == the deadline's boundary
      {0, 300 * kMs, 256 * kMs},            // level 1: the slot's first tick, a lower bound
      {100 * kMs, 300 * kMs, 156 * kMs},
      {256 * kMs, 300 * kMs, 44 * kMs},     // same span of 256 ticks: level 0, exact
      {0, 65'536 * kMs, 65'536 * kMs},      // level 2, slot start
      {70'000 * kMs, 70'000 * kMs + 1, kMs},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "now " << c.now << " deadline " << c.deadline);
    TimerWheel wheel(0);
    std::vector<int> log;
    auto probes = make_probes(1, log);
    wheel.expire(c.now);
    wheel.start(*probes[0], c.deadline);
    const std::int64_t boundary = (c.deadline + kMs - 1) / kMs * kMs;
    const std::int64_t timeout = wheel.next_timeout_ns(c.now);
    EXPECT_EQ(timeout, c.expected);
    EXPECT_LE(c.now + timeout, boundary);
    // Waking at the timeout and expiring must either fire the timer or leave a smaller, still-safe timeout.
    wheel.expire(c.now + timeout);
    if (probes[0]->armed()) {
      EXPECT_LE(c.now + timeout + wheel.next_timeout_ns(c.now + timeout), boundary);
      wheel.expire(boundary);
    }
    EXPECT_EQ(log.size(), 1u);
    EXPECT_EQ(wheel.size(), 0u);
  }
}

// A loop that sleeps exactly next_timeout_ns() and then expires must fire every timer at its tick boundary —
// never later — and must not wake more than a few times per timer.
TEST(TimerWheel, sleeping_for_next_timeout_fires_every_timer_at_its_tick_boundary) {
  std::mt19937_64 rng(99);
  TimerWheel wheel(0);
  constexpr int kCount = 2'000;
  struct Watched : TimerNode {
    std::int64_t boundary = 0;
    const std::int64_t* now = nullptr;
    static void fire(TimerNode* node) {
      auto* self = static_cast<Watched*>(node);
      EXPECT_EQ(*self->now, self->boundary);
    }
  };
  std::int64_t now = 0;
  std::vector<Watched> nodes(kCount);
  for (auto& n : nodes) {
    n.on_fire = &Watched::fire;
    n.now = &now;
    // Within an hour; every fourth one exactly on a level-1 or level-2 slot boundary.
    auto deadline = static_cast<std::int64_t>(rng() % (3'600'000 * kMs));
    if (rng() % 4 == 0) deadline = deadline / (256 * kMs) * (256 * kMs);
    if (rng() % 16 == 0) deadline = deadline / (65'536 * kMs) * (65'536 * kMs);
    n.boundary = (deadline + kMs - 1) / kMs * kMs;
    wheel.start(n, deadline);
  }
  int wakes = 0;
  while (wheel.size() > 0) {
    const std::int64_t timeout = wheel.next_timeout_ns(now);
    ASSERT_GE(timeout, 0);
    now += timeout;
    wheel.expire(now);
    ++wakes;
  }
  EXPECT_EQ(wheel.next_timeout_ns(now), -1);
  EXPECT_LE(wakes, 3 * kCount);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, large_jumps_in_time_fire_everything_in_order_without_walking_the_ticks) {
  // A 1 ns tick makes these jumps 2^62 ticks long: a wheel that stepped tick by tick would never finish.
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  const std::int64_t deadlines[] = {std::int64_t{1} << 62, 1, std::int64_t{1} << 40, std::int64_t{1} << 20,
                                    (std::int64_t{1} << 62) + 1};
  auto probes = make_probes(5, log);
  for (int i = 0; i < 5; ++i) wheel.start(*probes[i], deadlines[i]);
  EXPECT_EQ(wheel.expire(std::int64_t{1} << 61), 3u);
  EXPECT_EQ(wheel.expire(std::numeric_limits<std::int64_t>::max()), 2u);
  EXPECT_EQ(log, (std::vector<int>{1, 3, 2, 0, 4}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, extreme_origins_and_deadlines_do_not_overflow) {
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  TimerWheel wheel(kMin, 1);
  std::vector<int> log;
  auto probes = make_probes(2, log);
  wheel.start(*probes[0], kMax);
  wheel.start(*probes[1], 0);
  EXPECT_EQ(wheel.next_timeout_ns(kMin), kMax);  // saturated: the true wait does not fit in int64
  EXPECT_EQ(wheel.expire(-1), 0u);
  EXPECT_EQ(wheel.expire(0), 1u);
  // Level-7 slot 0xFF starts at tick 0xFF << 56, i.e. 0x7F << 56 ns after 0: a lower bound of the true wait.
  EXPECT_EQ(wheel.next_timeout_ns(0), std::int64_t{0x7F} << 56);
  EXPECT_EQ(wheel.expire(kMax), 1u);
  EXPECT_EQ(log, (std::vector<int>{1, 0}));
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheel, time_going_backwards_neither_fires_nor_rewinds) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(2, log);
  wheel.expire(1'000);
  wheel.start(*probes[0], 1'500);
  EXPECT_EQ(wheel.expire(10), 0u);
  wheel.start(*probes[1], 500);  // before the current tick (1000): due at once, not at "500 after 10"
  EXPECT_EQ(wheel.expire(10), 1u);
  EXPECT_EQ(wheel.expire(1'499), 0u);
  EXPECT_EQ(wheel.expire(1'500), 1u);
  EXPECT_EQ(log, (std::vector<int>{1, 0}));
  EXPECT_EQ(wheel.size(), 0u);
}

// ---- scale ------------------------------------------------------------------------------------------------------

TEST(TimerWheel, a_million_pending_timers_fire_exactly_once_each_in_deadline_order) {
  constexpr int kCount = 1'000'000;
  struct Counted : TimerNode {
    std::int64_t deadline = 0;
    std::int64_t* last_deadline = nullptr;
    std::uint32_t fires = 0;
    static void fire(TimerNode* node) {
      auto* self = static_cast<Counted*>(node);
      ++self->fires;
      // Boundaries are 1 ms apart, so deadline order means this tick's deadlines never precede the last tick's.
      if ((self->deadline + kMs - 1) / kMs < (*self->last_deadline + kMs - 1) / kMs) ADD_FAILURE();
      *self->last_deadline = self->deadline;
    }
  };
  std::mt19937_64 rng(2024);
  auto nodes = std::make_unique<Counted[]>(kCount);
  std::int64_t last = 0;
  TimerWheel wheel(0);
  for (int i = 0; i < kCount; ++i) {
    nodes[i].on_fire = &Counted::fire;
    nodes[i].last_deadline = &last;
    nodes[i].deadline = 1 + static_cast<std::int64_t>(rng() % (10'000 * kMs));
    wheel.start(nodes[i], nodes[i].deadline);
  }
  EXPECT_EQ(wheel.size(), static_cast<std::size_t>(kCount));
  std::size_t fired = 0;
  for (std::int64_t now = 0; now <= 10'000 * kMs; now += kMs) fired += wheel.expire(now);
  EXPECT_EQ(fired, static_cast<std::size_t>(kCount));
  std::size_t wrong = 0;
  for (int i = 0; i < kCount; ++i) wrong += nodes[i].fires != 1;
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(wheel.size(), 0u);
}

// ---- lifetime ---------------------------------------------------------------------------------------------------

TEST(TimerWheel, destroying_the_wheel_disarms_pending_nodes_without_firing_them) {
  std::vector<int> log;
  auto probes = make_probes(3, log);
  {
    TimerWheel wheel(0, 1);
    wheel.start(*probes[0], 10);
    wheel.start(*probes[1], 100'000);
    wheel.start(*probes[2], -1);
    EXPECT_EQ(wheel.size(), 3u);
  }
  for (const auto& p : probes) EXPECT_FALSE(p->armed());
  EXPECT_TRUE(log.empty());
}

TEST(TimerWheelDeathTest, starting_an_armed_node_aborts) {
  TimerWheel wheel(0, 1);
  std::vector<int> log;
  auto probes = make_probes(1, log);
  wheel.start(*probes[0], 10);
  EXPECT_DEATH(wheel.start(*probes[0], 20), "armed");
  wheel.stop(*probes[0]);
  EXPECT_EQ(wheel.size(), 0u);
}

TEST(TimerWheelDeathTest, destroying_an_armed_node_aborts) {
  TimerWheel wheel(0, 1);
  EXPECT_DEATH(
      {
        Probe p;
        wheel.start(p, 10);
      },
      "destroyed while armed");
  EXPECT_EQ(wheel.size(), 0u);
}

}  // namespace
}  // namespace ringlet
