#include "ringlet/loadgen/memcache_keys.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace ringlet::loadgen::memcache {
namespace {

// Least-squares slope of log(frequency) against log(rank) over ranks [1, last].
double rank_frequency_slope(const std::vector<std::uint64_t>& counts, std::size_t last) {
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t r = 1; r <= last; ++r) {
    double x = std::log(static_cast<double>(r));
    double y = std::log(static_cast<double>(counts[r]));
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  double n = static_cast<double>(last);
  return (n * sxy - sx * sy) / (n * sxx - sx * sx);
}

std::vector<std::uint64_t> draw(const ZipfSampler& z, std::size_t samples, std::uint64_t seed) {
  std::vector<std::uint64_t> counts(z.n() + 1, 0);
  Rng rng(seed);
  for (std::size_t i = 0; i < samples; ++i) {
    std::uint64_t k = z.sample(rng);
    EXPECT_GE(k, 1u);
    EXPECT_LE(k, z.n());
    if (k >= 1 && k <= z.n()) ++counts[k];
  }
  return counts;
}

TEST(ZipfSampler, rank_frequency_slope_is_minus_the_exponent) {
  for (double s : {0.5, 0.99, 1.0, 1.2}) {
    SCOPED_TRACE(s);
    ZipfSampler z(10000, s);
    auto counts = draw(z, 2000000, 42);
    EXPECT_NEAR(rank_frequency_slope(counts, 100), -s, 0.03);
  }
}

TEST(ZipfSampler, head_probabilities_match_the_exact_distribution) {
  const std::uint64_t n = 1000;
  const double s = 1.0;
  double norm = 0;
  for (std::uint64_t k = 1; k <= n; ++k) norm += std::pow(static_cast<double>(k), -s);
  const std::size_t samples = 1000000;
  ZipfSampler z(n, s);
  auto counts = draw(z, samples, 7);
  for (std::uint64_t k : {1u, 2u, 3u, 10u, 100u}) {
    double p = std::pow(static_cast<double>(k), -s) / norm;
    double expected = p * samples;
    double sigma = std::sqrt(expected * (1 - p));
    EXPECT_NEAR(static_cast<double>(counts[k]), expected, 5 * sigma) << "rank " << k;
  }
}

TEST(ZipfSampler, is_deterministic_for_a_seed) {
  ZipfSampler z(1000000, 0.9);
  Rng a(123), b(123);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(z.sample(a), z.sample(b));
}

TEST(ZipfSampler, one_key_always_gives_rank_one) {
  ZipfSampler z(1, 1.0);
  Rng rng(1);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(z.sample(rng), 1u);
}

TEST(KeyChooser, uniform_covers_the_key_space_evenly) {
  KeyChooser c = KeyChooser::uniform(10);
  Rng rng(5);
  std::vector<int> counts(10, 0);
  for (int i = 0; i < 100000; ++i) ++counts.at(c.next(rng));
  for (int n : counts) EXPECT_NEAR(n, 10000, 500);
}

TEST(KeySpace, keys_have_the_exact_size_and_parse_back) {
  KeySpace ks(1000, 6);
  char buf[6];
  ks.write(0, buf);
  EXPECT_EQ(std::string(buf, 6), "k00000");
  ks.write(999, buf);
  EXPECT_EQ(std::string(buf, 6), "k00999");
  EXPECT_EQ(ks.parse("k00999"), 999u);
  EXPECT_EQ(ks.parse("k01000"), std::nullopt) << "outside the key space";
  EXPECT_EQ(ks.parse("k0099"), std::nullopt) << "wrong size";
  EXPECT_EQ(ks.parse("x00999"), std::nullopt);
  EXPECT_EQ(ks.parse("k00-99"), std::nullopt);
  EXPECT_EQ(ks.parse("k99999"), std::nullopt);
}

TEST(KeySpace, validate_names_the_problem) {
  EXPECT_EQ(KeySpace::validate(1000, 4), "");
  EXPECT_NE(KeySpace::validate(1001, 4), "");
  EXPECT_NE(KeySpace::validate(0, 4), "");
  EXPECT_NE(KeySpace::validate(10, 251), "");
}

TEST(ValuePattern, values_of_other_keys_or_versions_differ_in_the_header) {
  ValuePattern p(64);
  char a[16], b[16], c[16];
  p.header(1, 1, a);
  p.header(2, 1, b);
  p.header(1, 2, c);
  EXPECT_NE(std::string(a, 16), std::string(b, 16));
  EXPECT_NE(std::string(a, 16), std::string(c, 16));
  EXPECT_TRUE(p.matches(a, ValuePattern::offset_of(1, 1), 0, std::string_view(a, 16)));
  EXPECT_FALSE(p.matches(a, ValuePattern::offset_of(1, 1), 0, std::string_view(b, 16)));
  EXPECT_FALSE(p.matches(a, 0, 60, "12345")) << "past the value's end";
}

}  // namespace
}  // namespace ringlet::loadgen::memcache
