// schedule_test.cpp — the open-loop schedule: due times at the exact rate, round robin over connections,
// workers interleaved. Checked on the sequence of scheduled times, not on a wall clock.
#include "ringlet/loadgen/schedule.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace ringlet::loadgen {
namespace {

TEST(OpenLoopSchedule, due_times_are_evenly_spaced_at_the_rate) {
  OpenLoopSchedule s(5'000, 1000.0, 0, 1, 10);  // 1000/s: one every 1 ms
  for (std::uint64_t k = 0; k < 100000; ++k) {
    ASSERT_EQ(s.due_time(k), 5'000 + static_cast<std::int64_t>(k) * 1'000'000) << k;
  }
}

TEST(OpenLoopSchedule, no_drift_after_millions_of_requests_at_a_fractional_interval) {
  OpenLoopSchedule s(0, 3.0e6 / 7.0, 0, 1, 1);  // interval 2333.33 ns
  std::uint64_t k = 30'000'000;
  double want = static_cast<double>(k) * 7.0e9 / 3.0e6;
  EXPECT_LE(std::abs(static_cast<double>(s.due_time(k)) - want), 1.0);
  for (std::uint64_t i = 1; i < 10000; ++i) ASSERT_GE(s.due_time(i), s.due_time(i - 1));
}

TEST(OpenLoopSchedule, requests_go_round_robin_and_each_connection_gets_its_share) {
  OpenLoopSchedule s(0, 10000.0, 0, 1, 4);
  std::vector<int> per_conn(4, 0);
  for (std::uint64_t k = 0; k < 4000; ++k) ++per_conn[s.connection_of(k)];
  for (int n : per_conn) EXPECT_EQ(n, 1000);
  // Connection c's j-th request is global request j * 4 + c.
  EXPECT_EQ(s.due_time_on(3, 5), s.due_time(23));
  // So one connection sends at a quarter of the rate: 400 us apart.
  EXPECT_EQ(s.due_time_on(1, 1) - s.due_time_on(1, 0), 400'000);
}

TEST(OpenLoopSchedule, workers_interleave_into_one_even_stream_at_the_total_rate) {
  const double rate = 12000.0;
  const unsigned workers = 3;
  std::vector<std::int64_t> all;
  for (unsigned w = 0; w < workers; ++w) {
    OpenLoopSchedule s(0, rate, w, workers, 7);
    for (std::uint64_t k = 0; k < 1000; ++k) all.push_back(s.due_time(k));
  }
  std::sort(all.begin(), all.end());
  const double interval = 1e9 / rate;
  for (std::size_t i = 0; i < all.size(); ++i) {
    ASSERT_LE(std::abs(static_cast<double>(all[i]) - static_cast<double>(i) * interval), 1.0) << i;
  }
}

}  // namespace
}  // namespace ringlet::loadgen
