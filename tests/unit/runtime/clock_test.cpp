// clock_test.cpp — ManualClock moves only when told; MonotonicClock tracks CLOCK_MONOTONIC.
#include "ringlet/runtime/clock.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <ctime>

namespace ringlet {
namespace {

std::int64_t read(const Clock& clock) { return clock.now_ns(); }

TEST(ManualClock, starts_where_it_is_told_and_stands_still) {
  struct Case {
    std::int64_t start;
  };
  for (const Case c : {Case{0}, Case{42}, Case{-7}, Case{std::int64_t{1} << 62}}) {
    ManualClock clock(c.start);
    EXPECT_EQ(clock.now_ns(), c.start);
    EXPECT_EQ(read(clock), c.start);  // through the Clock interface too
    EXPECT_EQ(clock.now_ns(), c.start);
  }
  EXPECT_EQ(ManualClock().now_ns(), 0);
}

TEST(ManualClock, advance_adds_and_set_replaces_even_backwards) {
  ManualClock clock(100);
  clock.advance(0);
  EXPECT_EQ(clock.now_ns(), 100);
  clock.advance(1'000'000);
  EXPECT_EQ(clock.now_ns(), 1'000'100);
  clock.set(5);
  EXPECT_EQ(clock.now_ns(), 5);
  clock.advance(10);
  EXPECT_EQ(clock.now_ns(), 15);
}

TEST(ManualClockDeathTest, advancing_by_a_negative_amount_aborts) {
  ManualClock clock(100);
  EXPECT_DEATH(clock.advance(-1), "ns >= 0");
  EXPECT_EQ(clock.now_ns(), 100);
}

TEST(MonotonicClock, never_goes_backwards_and_agrees_with_clock_gettime) {
  MonotonicClock clock;
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::int64_t before = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  std::int64_t last = read(clock);
  EXPECT_GE(last, before);
  for (int i = 0; i < 10'000; ++i) {
    const std::int64_t now = clock.now_ns();
    ASSERT_GE(now, last);
    last = now;
  }
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::int64_t after = static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  EXPECT_LE(last, after);
}

TEST(MonotonicClock, moves_forward_across_a_sleep) {
  MonotonicClock clock;
  const std::int64_t start = clock.now_ns();
  const timespec pause{0, 2'000'000};
  ::nanosleep(&pause, nullptr);
  EXPECT_GE(clock.now_ns() - start, 2'000'000);
}

}  // namespace
}  // namespace ringlet
