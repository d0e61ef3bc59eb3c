// clock.hpp — where the loop reads the time: nanoseconds on a monotonic scale.
// MonotonicClock is thread-safe (stateless). ManualClock is for tests and benchmarks and is single-threaded.
//
// The loop and the timer wheel take plain nanosecond values, not a clock, so a test can drive them with a
// ManualClock and production code with MonotonicClock through the same interface.
#pragma once

#include <cstdint>
#include <ctime>

#include "ringlet/base/fatal.hpp"

namespace ringlet {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::int64_t now_ns() const = 0;
};

// CLOCK_MONOTONIC, not CLOCK_MONOTONIC_COARSE: the coarse clock advances in jiffies (1-4 ms), which would make a
// 1 ms timer tick fire up to a jiffy late. The vDSO makes the fine clock about as cheap (~20 ns).
class MonotonicClock final : public Clock {
 public:
  std::int64_t now_ns() const override {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
  }
};

// Time that moves only when told to. advance() never goes backwards (a monotonic clock cannot); set() can, so a
// test can check how a consumer copes with a clock that misbehaves.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(std::int64_t start_ns = 0) : now_ns_(start_ns) {}

  std::int64_t now_ns() const override { return now_ns_; }

  void advance(std::int64_t ns) {
    RINGLET_ASSERT(ns >= 0);
    now_ns_ += ns;
  }

  void set(std::int64_t ns) { now_ns_ = ns; }

 private:
  std::int64_t now_ns_;
};

}  // namespace ringlet
