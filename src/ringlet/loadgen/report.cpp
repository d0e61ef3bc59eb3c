// report.cpp — summary text and JSON for a finished run.
#include "ringlet/loadgen/report.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace ringlet::loadgen {
namespace {

double us(std::uint64_t ns) { return static_cast<double>(ns) / 1000.0; }

struct Quantile {
  const char* label;
  const char* json;
  double q;
};
constexpr Quantile kQuantiles[] = {{"p50", "p50", 0.50},    {"p90", "p90", 0.90},       {"p99", "p99", 0.99},
                                   {"p99.9", "p999", 0.999}, {"p99.99", "p9999", 0.9999}};

// JSON string escaping for the few strings we print (targets, static messages).
std::string json_string(std::string_view s) {
  std::string out = "\"";
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += ch;
    } else if (c < 0x20) {
      out += fmt::format("\\u{:04x}", c);
    } else {
      out += ch;
    }
  }
  out += '"';
  return out;
}

}  // namespace

double Report::throughput() const noexcept {
  return outcome->wall_s > 0 ? static_cast<double>(outcome->result.ops) / outcome->wall_s : 0.0;
}

double Report::cpu_per_thread() const noexcept {
  double threads = std::max(1u, config->common.threads);
  double wall = outcome->run_wall_s > 0 ? outcome->run_wall_s : 1.0;
  return (outcome->cpu_user_s + outcome->cpu_sys_s) / wall / threads;
}

std::string format_summary(const Report& r) {
  const WorkerResult& res = r.outcome->result;
  const BenchConfig& c = *r.config;
  std::string out;
  out += fmt::format("{} {}: {} loop, {} connections x depth {}, {} thread(s), {:g} s measured after {:g} s warm-up\n",
                     r.workload, r.target, c.open_loop() ? fmt::format("open ({:g} req/s)", c.rate) : "closed",
                     c.common.connections, c.common.depth, c.common.threads, c.duration_s, c.warmup_s);
  out += fmt::format("  requests    {}\n  throughput  {:.1f} req/s\n", res.ops, r.throughput());
  out += fmt::format("  latency     min {:.1f} us, mean {:.1f} us\n", us(res.latency.min()), res.latency.mean() / 1000);
  for (const Quantile& q : kQuantiles) {
    out += fmt::format("              {:<7}{:>12.1f} us\n", q.label, us(res.latency.percentile(q.q)));
  }
  out += fmt::format("              {:<7}{:>12.1f} us\n", "max", us(res.latency.max()));
  out += fmt::format("  errors      {}", res.error_total());
  if (res.error_total() > 0) {
    const char* sep = " (";
    for (std::size_t k = 0; k < kErrorKindCount; ++k) {
      if (res.errors[k] == 0) continue;
      out += fmt::format("{}{} {}", sep, kErrorKindNames[k], res.errors[k]);
      sep = ", ";
    }
    out += ")";
  }
  out += "\n";
  if (!res.first_wrong_reply.empty()) out += fmt::format("  first wrong reply: {}\n", res.first_wrong_reply);
  if (c.open_loop()) {
    out += fmt::format("  schedule    {} sends more than 1 ms late, {} due but never sent\n", res.late_sends,
                       res.unsent);
  }
  out += fmt::format("  client CPU  user {:.2f} s + sys {:.2f} s over {:.2f} s wall = {:.0f}% of a core per thread\n",
                     r.outcome->cpu_user_s, r.outcome->cpu_sys_s, r.outcome->run_wall_s, 100 * r.cpu_per_thread());
  if (r.saturated()) {
    out += "  WARNING: the generator used more than 90% of a core per thread: it may be the bottleneck; "
           "add --threads or check the figures\n";
  }
  return out;
}

std::string format_json(const Report& r) {
  const WorkerResult& res = r.outcome->result;
  const BenchConfig& c = *r.config;
  std::string out = "{";
  out += fmt::format("\"workload\":{},\"target\":{},\"mode\":\"{}\",", json_string(r.workload), json_string(r.target),
                     c.open_loop() ? "open" : "closed");
  out += fmt::format("\"connections\":{},\"depth\":{},\"threads\":{},\"duration_s\":{},\"warmup_s\":{},",
                     c.common.connections, c.common.depth, c.common.threads, c.duration_s, c.warmup_s);
  out += c.open_loop() ? fmt::format("\"rate\":{},", c.rate) : std::string("\"rate\":null,");
  out += fmt::format("\"requests\":{},\"throughput\":{:.3f},\"errors\":{},\"errors_by_kind\":{{", res.ops,
                     r.throughput(), res.error_total());
  for (std::size_t k = 0; k < kErrorKindCount; ++k) {
    out += fmt::format("{}\"{}\":{}", k ? "," : "", kErrorKindNames[k], res.errors[k]);
  }
  out += fmt::format("}},\"latency_us\":{{\"min\":{:.3f},\"mean\":{:.3f}", us(res.latency.min()),
                     res.latency.mean() / 1000);
  for (const Quantile& q : kQuantiles) out += fmt::format(",\"{}\":{:.3f}", q.json, us(res.latency.percentile(q.q)));
  out += fmt::format(",\"max\":{:.3f}}},", us(res.latency.max()));
  out += fmt::format("\"late_sends\":{},\"unsent\":{},", res.late_sends, res.unsent);
  out += fmt::format("\"client_cpu\":{{\"user_s\":{:.3f},\"sys_s\":{:.3f},\"wall_s\":{:.3f},\"per_thread\":{:.4f},"
                     "\"saturated\":{}}},",
                     r.outcome->cpu_user_s, r.outcome->cpu_sys_s, r.outcome->run_wall_s, r.cpu_per_thread(),
                     r.saturated() ? "true" : "false");
  out += "\"per_second\":[";
  std::size_t seconds = std::min<std::size_t>(res.ops_per_second.size(),
                                              static_cast<std::size_t>(c.warmup_s + c.duration_s + 0.999));
  for (std::size_t s = 0; s < seconds; ++s) {
    out += fmt::format("{}{{\"second\":{},\"requests\":{},\"errors\":{}}}", s ? "," : "", s + 1, res.ops_per_second[s],
                       s < res.errors_per_second.size() ? res.errors_per_second[s] : 0);
  }
  out += "],\"first_wrong_reply\":";
  out += res.first_wrong_reply.empty() ? std::string("null") : json_string(res.first_wrong_reply);
  out += "}";
  return out;
}

std::string format_second(const LiveSample& now, const LiveSample& before) {
  double dt = std::max(1e-9, now.elapsed_s - before.elapsed_s);
  return fmt::format("{:>5.0f}s {:>11.0f} req/s {:>8} errors {:>7} open", now.elapsed_s,
                     static_cast<double>(now.ops - before.ops) / dt, now.errors - before.errors,
                     now.open_connections);
}

}  // namespace ringlet::loadgen
