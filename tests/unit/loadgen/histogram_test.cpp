// histogram_test.cpp — the latency histogram against exact percentiles of known distributions.
#include "ringlet/loadgen/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace ringlet::loadgen {
namespace {

// The exact value at quantile q, by the same definition the histogram uses (smallest v with >= q of values <= v).
std::uint64_t exact(std::vector<std::uint64_t> sorted, double q) {
  auto rank = static_cast<std::size_t>(std::ceil(q * static_cast<double>(sorted.size())));
  rank = std::clamp<std::size_t>(rank, 1, sorted.size());
  return sorted[rank - 1];
}

void expect_within_one_percent(const std::vector<std::uint64_t>& values) {
  Histogram h;
  for (std::uint64_t v : values) h.record(v);
  std::vector<std::uint64_t> sorted = values;
  std::sort(sorted.begin(), sorted.end());
  for (double q : {0.5, 0.9, 0.99, 0.999, 0.9999, 1.0}) {
    double want = static_cast<double>(exact(sorted, q));
    double got = static_cast<double>(h.percentile(q));
    EXPECT_LE(std::abs(got - want), 0.01 * want) << "q=" << q << " want " << want << " got " << got;
  }
  EXPECT_EQ(h.max(), sorted.back());
  EXPECT_EQ(h.min(), sorted.front());
  EXPECT_EQ(h.count(), values.size());
}

constexpr std::uint64_t kUs = 1000;
constexpr std::uint64_t kS = 1'000'000'000;

TEST(Histogram, uniform_from_1us_to_100s_is_within_one_percent) {
  std::mt19937_64 rng(1);
  std::uniform_int_distribution<std::uint64_t> dist(kUs, 100 * kS);
  std::vector<std::uint64_t> v(200000);
  for (auto& x : v) x = dist(rng);
  expect_within_one_percent(v);
}

TEST(Histogram, log_uniform_over_the_whole_range_is_within_one_percent) {
  std::mt19937_64 rng(2);
  std::uniform_real_distribution<double> exp10(3, 11);  // 1 us .. 100 s in ns
  std::vector<std::uint64_t> v(200000);
  for (auto& x : v) x = static_cast<std::uint64_t>(std::pow(10.0, exp10(rng)));
  expect_within_one_percent(v);
}

TEST(Histogram, exponential_is_within_one_percent) {
  std::mt19937_64 rng(3);
  std::exponential_distribution<double> dist(1.0 / (200 * kUs));  // mean 200 us
  std::vector<std::uint64_t> v(300000);
  for (auto& x : v) x = kUs + static_cast<std::uint64_t>(dist(rng));
  expect_within_one_percent(v);
}

TEST(Histogram, constant_is_within_one_percent) {
  for (std::uint64_t c : {kUs, 37 * kUs, 123'456 * kUs, 100 * kS}) {
    std::vector<std::uint64_t> v(1000, c);
    expect_within_one_percent(v);
  }
}

TEST(Histogram, bimodal_is_within_one_percent) {
  // 95% fast (about 50 us), 5% slow (about 20 ms): p50/p90 in the first mode, p99 and above in the second.
  std::mt19937_64 rng(4);
  std::normal_distribution<double> fast(50.0 * kUs, 5.0 * kUs), slow(20'000.0 * kUs, 1000.0 * kUs);
  std::bernoulli_distribution pick_slow(0.05);
  std::vector<std::uint64_t> v(200000);
  for (auto& x : v) x = static_cast<std::uint64_t>(std::max(1000.0, pick_slow(rng) ? slow(rng) : fast(rng)));
  expect_within_one_percent(v);
}

TEST(Histogram, every_bucket_is_narrower_than_one_percent_of_its_values) {
  for (std::size_t i = Histogram::kSubBuckets; i < Histogram::kBucketCount; ++i) {
    double width = static_cast<double>(Histogram::bucket_width(i));
    double low = static_cast<double>(Histogram::bucket_lowest(i));
    ASSERT_LE(width / low, 0.01) << i;
    // Values map back to the bucket that claims them.
    ASSERT_EQ(Histogram::index_of(Histogram::bucket_lowest(i)), i);
    ASSERT_EQ(Histogram::index_of(Histogram::bucket_lowest(i) + Histogram::bucket_width(i) - 1), i);
  }
}

TEST(Histogram, merging_equals_recording_everything_in_one) {
  std::mt19937_64 rng(5);
  std::exponential_distribution<double> dist(1.0 / (1000 * kUs));
  Histogram a, b, all;
  for (int i = 0; i < 50000; ++i) {
    auto x = kUs + static_cast<std::uint64_t>(dist(rng));
    (i % 3 ? a : b).record(x);
    all.record(x);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  EXPECT_DOUBLE_EQ(a.mean(), all.mean());
  for (double q : {0.5, 0.9, 0.99, 0.999}) EXPECT_EQ(a.percentile(q), all.percentile(q));
}

TEST(Histogram, values_beyond_the_range_are_clamped_not_lost) {
  Histogram h;
  h.record(0);
  h.record(Histogram::kMaxValue * 10);
  EXPECT_EQ(h.count(), 2u);
  EXPECT_EQ(h.max(), Histogram::kMaxValue);
  EXPECT_EQ(h.percentile(0.5), 0u);
  EXPECT_EQ(h.percentile(1.0), Histogram::kMaxValue);
}

TEST(Histogram, empty_reports_zeros) {
  Histogram h;
  EXPECT_EQ(h.percentile(0.99), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
  EXPECT_EQ(h.mean(), 0.0);
}

}  // namespace
}  // namespace ringlet::loadgen
