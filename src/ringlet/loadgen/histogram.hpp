// histogram.hpp — latency histogram: log-linear buckets (HdrHistogram-like), O(1) record, mergeable.
// Core-local (one per worker); merge the workers' histograms after they have stopped.
//
// Values are nanoseconds. Each power of two [2^m, 2^(m+1)) is cut into kSubBuckets equal buckets, and values
// below kSubBuckets are exact, so a bucket is never wider than 1/kSubBuckets of the values in it. A percentile
// reports the middle of its bucket, so its relative error is at most 1/(2 * kSubBuckets) = 0.4% (the brief asks
// for <= 1% over 1 us .. 100 s). Values above kMaxValue land in the last bucket; min and max are exact.
//
// record() is a count-leading-zeros, a shift and an increment: no branches on the data beyond the clamp.
#pragma once

#include <array>
#include <cstdint>

namespace ringlet::loadgen {

class Histogram {
 public:
  static constexpr int kSubBits = 7;
  static constexpr std::uint64_t kSubBuckets = std::uint64_t{1} << kSubBits;  // 128 per octave
  static constexpr std::uint64_t kMaxValue = 200'000'000'000;                  // 200 s in ns (> 100 s)
  static constexpr int kMaxMsb = 37;                                           // 2^37 ns = 137 s ... 275 s
  static constexpr std::size_t kBucketCount = (kMaxMsb - kSubBits + 2) * kSubBuckets;

  void record(std::uint64_t value_ns) noexcept {
    if (value_ns > kMaxValue) value_ns = kMaxValue;
    ++counts_[index_of(value_ns)];
    ++total_;
    sum_ += value_ns;
    if (value_ns < min_) min_ = value_ns;
    if (value_ns > max_) max_ = value_ns;
  }
  void merge(const Histogram& other) noexcept;
  void clear() noexcept;

  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t min() const noexcept { return total_ ? min_ : 0; }
  std::uint64_t max() const noexcept { return max_; }
  double mean() const noexcept { return total_ ? static_cast<double>(sum_) / static_cast<double>(total_) : 0.0; }
  // The value at quantile q (0 < q <= 1): the smallest recorded value v such that at least q of all values are
  // <= v, up to the bucket's resolution. 0 when empty.
  std::uint64_t percentile(double q) const noexcept;

  static std::size_t index_of(std::uint64_t v) noexcept {
    int msb = 63 - __builtin_clzll(v | 1);
    if (msb < kSubBits) return static_cast<std::size_t>(v);
    int shift = msb - kSubBits;
    return static_cast<std::size_t>(shift + 1) * kSubBuckets + ((v >> shift) & (kSubBuckets - 1));
  }
  // The range [lowest, lowest + width) of values bucket `index` holds.
  static std::uint64_t bucket_lowest(std::size_t index) noexcept;
  static std::uint64_t bucket_width(std::size_t index) noexcept;

 private:
  std::array<std::uint64_t, kBucketCount> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t sum_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
};

}  // namespace ringlet::loadgen
