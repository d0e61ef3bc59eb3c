// report.hpp — the results of a `ringlet bench` run as text for people and as one JSON object for scripts.
// Pure formatting, no I/O; thread-compatible.
//
// The JSON object is a contract (bench/compare reads it; if you rename or remove a field, update bench/compare):
//   workload, target, mode ("closed" | "open"), connections, depth, threads, duration_s, warmup_s,
//   rate (requested ops/s, open loop only, else null), requests (operations completed in the measured window),
//   throughput (requests / duration_s), errors (total), errors_by_kind {connect, reset, timeout, wrong_reply,
//   other}, latency_us {min, mean, p50, p90, p99, p999, p9999, max}, late_sends, unsent,
//   client_cpu {user_s, sys_s, wall_s, per_thread (fraction of one core per thread), saturated (bool)},
//   per_second [{second, requests, errors}, ...] (whole seconds since the start, warm-up included),
//   first_wrong_reply (string or null).
#pragma once

#include <string>
#include <string_view>

#include "ringlet/loadgen/driver.hpp"

namespace ringlet::loadgen {

// Above this share of a core per thread, the generator may itself be the bottleneck.
inline constexpr double kCpuSaturationWarning = 0.9;

struct Report {
  std::string_view workload;
  std::string_view target;
  const BenchConfig* config;
  const BenchOutcome* outcome;

  double throughput() const noexcept;
  double cpu_per_thread() const noexcept;
  bool saturated() const noexcept { return cpu_per_thread() > kCpuSaturationWarning; }
};

std::string format_summary(const Report& report);
std::string format_json(const Report& report);
// One line per second for stderr: "  3s   41234 req/s   0 errors   50 open".
std::string format_second(const LiveSample& now, const LiveSample& before);

}  // namespace ringlet::loadgen
