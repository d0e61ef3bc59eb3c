// histogram.cpp — percentiles and merging for the log-linear latency histogram.
#include "ringlet/loadgen/histogram.hpp"

#include <algorithm>
#include <cmath>

namespace ringlet::loadgen {

void Histogram::merge(const Histogram& other) noexcept {
  for (std::size_t i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  total_ += other.total_;
  sum_ += other.sum_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
}

void Histogram::clear() noexcept { *this = Histogram{}; }

std::uint64_t Histogram::bucket_lowest(std::size_t index) noexcept {
  if (index < kSubBuckets) return index;
  std::size_t shift = index / kSubBuckets - 1;
  return (kSubBuckets + index % kSubBuckets) << shift;
}

std::uint64_t Histogram::bucket_width(std::size_t index) noexcept {
  if (index < kSubBuckets) return 1;
  return std::uint64_t{1} << (index / kSubBuckets - 1);
}

std::uint64_t Histogram::percentile(double q) const noexcept {
  if (total_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(total_)));
  rank = std::clamp<std::uint64_t>(rank, 1, total_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      std::uint64_t mid = bucket_lowest(i) + bucket_width(i) / 2;
      return std::clamp(mid, min_, max_);
    }
  }
  return max_;
}

}  // namespace ringlet::loadgen
