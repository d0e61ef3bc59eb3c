// schedule.hpp — the open-loop send schedule of one worker. Plain value, no I/O; core-local like its worker.
//
// At a fixed total rate R split over W workers, worker w's k-th request (k = 0, 1, ...) is due at
//     start + (k * W + w) / R        (the workers interleave, so together they send evenly at R)
// and goes to connection k % C of the worker's C connections (round robin, so each connection carries R / (W C)).
// Latency is measured from this due time, never from when the request was actually written: a server that stalls
// delays every request scheduled behind the stall, and those delays land in the tail (coordinated omission
// corrected, as wrk2 does). A request whose connection has no free slot at its due time waits for one and keeps
// its due time.
#pragma once

#include <cstdint>

namespace ringlet::loadgen {

class OpenLoopSchedule {
 public:
  OpenLoopSchedule() = default;
  OpenLoopSchedule(std::int64_t start_ns, double total_rate, unsigned worker_index, unsigned worker_count,
                   unsigned connections) noexcept
      : start_ns_(start_ns),
        interval_ns_(1e9 * worker_count / total_rate),
        offset_ns_(1e9 * worker_index / total_rate),
        connections_(connections == 0 ? 1 : connections) {}

  // When request k of this worker is due.
  std::int64_t due_time(std::uint64_t k) const noexcept {
    return start_ns_ + static_cast<std::int64_t>(offset_ns_ + static_cast<double>(k) * interval_ns_);
  }
  unsigned connection_of(std::uint64_t k) const noexcept { return static_cast<unsigned>(k % connections_); }
  // When the j-th request of connection c is due (its global index is j * C + c).
  std::int64_t due_time_on(unsigned c, std::uint64_t j) const noexcept { return due_time(j * connections_ + c); }
  double interval_ns() const noexcept { return interval_ns_; }

 private:
  std::int64_t start_ns_ = 0;
  double interval_ns_ = 1;
  double offset_ns_ = 0;
  unsigned connections_ = 1;
};

}  // namespace ringlet::loadgen
