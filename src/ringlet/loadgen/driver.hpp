// driver.hpp — the load generator's core: workers that own connections, keep requests in flight (closed loop) or
// send on a schedule (open loop), time every reply and count errors. Workload-agnostic (workload.hpp).
//
// A worker runs on one loop (Loop::current()) and is core-local. Workers share nothing while running except their
// LiveCounters, which they publish with relaxed atomic stores for the once-a-second report on another thread.
// Their WorkerResults are merged after they have all stopped. run_bench() starts the workers, one thread and loop
// each, and is the only place that knows about threads.
//
// Timeline of a worker: [start, start + warmup) warm-up: connections open and load runs, nothing is recorded;
// [start + warmup, end) measured: operations, latencies and errors count; at `end` the worker cancels its
// connections and returns. Requests still in flight at the end are neither operations nor errors.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "ringlet/loadgen/histogram.hpp"
#include "ringlet/loadgen/workload.hpp"
#include "ringlet/net/address.hpp"
#include "ringlet/runtime/backend.hpp"
#include "ringlet/runtime/task.hpp"
#include "ringlet/runtime/timeout.hpp"

namespace ringlet::loadgen {

struct BenchConfig {
  CommonConfig common;
  double duration_s = 10;
  double warmup_s = 0;
  double rate = 0;  // total operations per second for the open loop; 0: closed loop
  Duration timeout = std::chrono::seconds(5);          // a reply making no progress this long is a timeout error
  Duration connect_timeout = std::chrono::seconds(5);  // per connection attempt
  Duration reconnect_delay = std::chrono::milliseconds(100);  // after a failed attempt, before the next
  BackendKind backend = BackendKind::auto_select;
  bool open_loop() const noexcept { return rate > 0; }
};

// One worker's counters, readable from another thread while it runs (relaxed: a progress display, not a result).
struct LiveCounters {
  std::atomic<std::uint64_t> ops{0};     // completed operations since the worker started (warm-up included)
  std::atomic<std::uint64_t> errors{0};  // errors since the worker started
  std::atomic<std::uint64_t> open_connections{0};
};

struct WorkerResult {
  Histogram latency;  // measured window only, nanoseconds
  std::uint64_t ops = 0;
  std::uint64_t errors[kErrorKindCount] = {};
  std::vector<std::uint64_t> ops_per_second;     // by whole second since the worker started (warm-up included)
  std::vector<std::uint64_t> errors_per_second;
  std::uint64_t late_sends = 0;  // open loop: requests sent more than 1 ms after their due time (measured window)
  std::uint64_t unsent = 0;      // open loop: requests due by the end but never sent (no free slot, no connection)
  std::string first_wrong_reply;  // what the first wrong reply was (diagnostics)
  std::string fatal;              // non-empty: the worker could not run at all (setup failed)

  std::uint64_t error_total() const noexcept;
  void merge(const WorkerResult& other);
};

// Runs one worker on the current loop until its end time. `live` may be null. Its connections are its share of
// config.common.connections (and of the rate).
Task<WorkerResult> run_worker(const BenchConfig& config, const Workload& workload, Address target,
                              unsigned worker_index, unsigned worker_count, LiveCounters* live);

// The whole run: config.common.threads workers, each on its own thread and loop, merged. `on_second` is called
// on the calling thread about once a second with the live counters summed over workers (elapsed seconds,
// operations so far, errors so far, open connections).
struct LiveSample {
  double elapsed_s;
  std::uint64_t ops;
  std::uint64_t errors;
  std::uint64_t open_connections;
};
struct BenchOutcome {
  WorkerResult result;
  double wall_s = 0;    // measured window, wall clock
  double cpu_user_s = 0;  // the generator's own CPU during the whole run (getrusage)
  double cpu_sys_s = 0;
  double run_wall_s = 0;  // the whole run, warm-up included, for the CPU ratio
};
Result<BenchOutcome> run_bench(const BenchConfig& config, const Workload& workload, Address target,
                               const std::function<void(const LiveSample&)>& on_second);

}  // namespace ringlet::loadgen
