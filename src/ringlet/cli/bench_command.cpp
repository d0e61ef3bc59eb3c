// bench_command.cpp — `ringlet bench <workload> [options] TARGET`: the load generator's command line.
//
// One subcommand per registered workload (loadgen/registry.cpp). Common options (connections, depth, duration,
// rate, ...) are declared here; each workload declares its own through loadgen::OptionSink, which this file
// implements on CLI11, so workloads never depend on the command-line library.
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/loadgen/driver.hpp"
#include "ringlet/loadgen/report.hpp"
#include "ringlet/loadgen/workload.hpp"
#include "ringlet/base/log.hpp"

namespace ringlet::cli {
namespace {

using loadgen::Workload;

class CliOptionSink final : public loadgen::OptionSink {
 public:
  explicit CliOptionSink(CLI::App& app) : app_(app) {}
  void add_string(std::string_view flag, std::string& value, std::string_view help) override {
    app_.add_option(std::string(flag), value, std::string(help))->capture_default_str();
  }
  void add_strings(std::string_view flag, std::vector<std::string>& values, std::string_view help) override {
    app_.add_option(std::string(flag), values, std::string(help))->allow_extra_args(false);
  }
  void add_choice(std::string_view flag, std::string& value, std::string_view help,
                  std::vector<std::string> choices) override {
    app_.add_option(std::string(flag), value, std::string(help))
        ->check(CLI::IsMember(std::move(choices)))
        ->capture_default_str();
  }
  void add_uint(std::string_view flag, std::uint64_t& value, std::string_view help, std::uint64_t min,
                std::uint64_t max) override {
    app_.add_option(std::string(flag), value, std::string(help))->check(CLI::Range(min, max))->capture_default_str();
  }
  void add_double(std::string_view flag, double& value, std::string_view help, double min, double max) override {
    app_.add_option(std::string(flag), value, std::string(help))->check(CLI::Range(min, max))->capture_default_str();
  }
  void add_flag(std::string_view flag, bool& value, std::string_view help) override {
    app_.add_flag(std::string(flag), value, std::string(help));
  }

 private:
  CLI::App& app_;
};

struct BenchState {
  CommonOptions common;
  loadgen::BenchConfig config;
  std::unique_ptr<Workload> workload;
  std::string name;
  std::string target;
  double timeout_s = 5;
  double connect_timeout_s = 5;
  bool json = false;
};

void add_common_bench_options(CLI::App& cmd, BenchState& s) {
  cmd.add_option("--connections,-c", s.config.common.connections,
                 "Connections in total, spread evenly over the threads")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  cmd.add_option("--depth,-d", s.config.common.depth,
                 "Requests in flight per connection (pipelining); 1 waits for each reply before the next request")
      ->check(CLI::Range(1u, 4096u))
      ->capture_default_str();
  cmd.add_option("--duration", s.config.duration_s, "Seconds measured (after the warm-up)")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd.add_option("--warmup", s.config.warmup_s,
                 "Seconds of load before measuring starts; nothing from them is in the results")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--threads,-t", s.config.common.threads,
                 "Worker threads, each with its own event loop and its share of the connections and of the rate")
      ->check(CLI::Range(1u, 1024u))
      ->capture_default_str();
  cmd.add_option("--rate,-R", s.config.rate,
                 "Open loop: send this many requests per second in total, each at its scheduled time, and measure "
                 "latency from that time (coordinated omission corrected); 0 is closed loop (as fast as replies "
                 "come back)")
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  cmd.add_option("--timeout", s.timeout_s,
                 "Seconds a connection with requests in flight may go without receiving anything before it counts "
                 "a timeout error and reconnects; 0 never times out")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  cmd.add_option("--connect-timeout", s.connect_timeout_s, "Seconds a connection attempt may take")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd.add_flag("--json", s.json,
               "Print the results as one JSON object on stdout (and nothing else there); per-second lines still go "
               "to stderr");
}

// Resolves the workload's host (blocking: this runs once, before any loop exists).
Result<Address> resolve_target(const std::string& host, std::uint16_t port) {
  auto numeric = Address::parse(host.find(':') != std::string::npos ? "[" + host + "]:" + std::to_string(port)
                                                                      : host + ":" + std::to_string(port));
  if (numeric) return *numeric;
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &found) != 0 || found == nullptr) return errc::host_not_found;
  Address a(found->ai_addr, found->ai_addrlen);
  freeaddrinfo(found);
  a.set_port(port);
  return a;
}

int run_bench_command(BenchState& s) {
  LogLevel level = LogLevel::warn;
  parse_log_level(s.common.log_level, level);
  set_log_level(level);
  parse_backend_kind(s.common.backend, s.config.backend);
  s.config.timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s.timeout_s));
  s.config.connect_timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s.connect_timeout_s));
  std::string problem = s.workload->configure(s.target, s.config.common);
  if (!problem.empty()) {
    std::fprintf(stderr, "ringlet bench %s: %s\n", s.name.c_str(), problem.c_str());
    return 2;
  }
  auto target = resolve_target(s.workload->host(), s.workload->port());
  if (!target) {
    std::fprintf(stderr, "ringlet bench %s: cannot resolve %s\n", s.name.c_str(), s.workload->host().c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);

  const bool tty = ::isatty(STDERR_FILENO) != 0;
  const double total_s = s.config.warmup_s + s.config.duration_s;
  loadgen::LiveSample before{0, 0, 0, 0};
  auto on_second = [&](const loadgen::LiveSample& now) {
    std::string line = loadgen::format_second(now, before);
    if (now.elapsed_s <= s.config.warmup_s) line += "  (warm-up)";
    before = now;
    if (tty) {
      int done = static_cast<int>(40 * std::min(1.0, now.elapsed_s / total_s));
      std::fprintf(stderr, "\r\x1b[K%s\n[%s%s] %.0f/%.0f s", line.c_str(), std::string(done, '#').c_str(),
                   std::string(40 - done, '.').c_str(), now.elapsed_s, total_s);
    } else {
      std::fprintf(stderr, "%s\n", line.c_str());
    }
    std::fflush(stderr);
  };
  auto outcome = loadgen::run_bench(s.config, *s.workload, *target, on_second);
  if (tty) std::fprintf(stderr, "\r\x1b[K");
  if (!outcome) {
    std::fprintf(stderr, "ringlet bench %s: %s\n", s.name.c_str(), std::string(outcome.error().message()).c_str());
    return 1;
  }
  if (!outcome->result.fatal.empty()) {
    std::fprintf(stderr, "ringlet bench %s: %s\n", s.name.c_str(), outcome->result.fatal.c_str());
    return 1;
  }
  std::string target_text = s.target.empty() ? s.workload->host() + ":" + std::to_string(s.workload->port()) : s.target;
  loadgen::Report report{s.name, target_text, &s.config, &*outcome};
  if (s.json) {
    std::printf("%s\n", loadgen::format_json(report).c_str());
    if (report.saturated()) std::fprintf(stderr, "ringlet bench: WARNING: the generator was near CPU saturation\n");
  } else {
    std::printf("%s", loadgen::format_summary(report).c_str());
  }
  return 0;
}

}  // namespace

void add_bench_command(CLI::App& app, std::function<int()>& run) {
  auto* bench = app.add_subcommand("bench", "Load generator: drive a server with many connections, verify every "
                                            "reply, report throughput and latency percentiles");
  bench->require_subcommand(1);
  for (const loadgen::WorkloadEntry& entry : loadgen::workloads()) {
    auto* cmd = bench->add_subcommand(std::string(entry.name), std::string(entry.summary));
    auto state = std::make_shared<BenchState>();
    state->name = std::string(entry.name);
    state->common.log_level = "warn";
    state->workload = entry.make();
    add_common_bench_options(*cmd, *state);
    CliOptionSink sink(*cmd);
    state->workload->declare_options(sink);
    add_common_options(*cmd, state->common);
    cmd->add_option("TARGET", state->target, std::string(entry.target) + ": the server to load");
    cmd->callback([state, &run] { run = [state]() -> int { return run_bench_command(*state); }; });
  }
}

}  // namespace ringlet::cli
