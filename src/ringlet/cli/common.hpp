// common.hpp — what every `ringlet <server>` subcommand shares: backend, log, server and sharding options, and
// running the server on its shards until SIGINT/SIGTERM (net/sharded_server.hpp).
#pragma once

#include <CLI/CLI.hpp>

#include <string>

#include "ringlet/net/sharded_server.hpp"
#include "ringlet/net/tcp_server.hpp"

namespace ringlet::cli {

struct CommonOptions {
  std::string backend = "auto";
  std::string log_level = "info";
  std::string log_format = "text";
  std::string log_file;  // empty: stderr
  std::uint32_t receive_buffers = BackendOptions{}.provided_buffer_count;
  std::string metrics_listen;  // empty: no metrics endpoint
};

// --threads, --accept, --stats-interval, --no-pin: how a server spreads over cores.
struct ShardingCli {
  unsigned threads = 0;
  std::string accept = "reuseport";
  double stats_interval = 0;
  bool no_pin = false;
};

// `backend_flag` names the I/O backend option: `--backend`, or `--io-backend` where --backend means something else
// (`ringlet proxy`'s backend servers).
void add_common_options(CLI::App& app, CommonOptions& options, const std::string& backend_flag = "--backend");
void add_sharding_options(CLI::App& app, ShardingCli& options);
// Adds --listen, --max-conns, --idle-timeout, --shutdown-timeout to a server subcommand.
void add_server_options(CLI::App& app, ServerOptions& options, std::string& listen_text, double& idle_seconds,
                        double& shutdown_seconds);
// Parses the text forms; prints a clear message and returns false on bad input.
bool finish_server_options(ServerOptions& options, const std::string& listen_text, double idle_seconds,
                           double shutdown_seconds);

// Applies --log-level, --log-format and --log-file (opening it: false, after saying why, when it cannot). Idempotent;
// serve_sharded calls it, a command that logs before serving calls it first.
bool apply_log_options(const CommonOptions& common);

// Applies the log options and runs one service per shard (net/sharded_server.hpp) until SIGINT/SIGTERM and the
// graceful stop; with --metrics-listen, shard 0 also serves /metrics (servers/metrics_endpoint.hpp) for as long as
// the server runs. Returns the process exit code.
int serve_sharded(const CommonOptions& common, const ShardingCli& sharding, const ServerOptions& server,
                  ShardServiceFactory factory);

}  // namespace ringlet::cli
