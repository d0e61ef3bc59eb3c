// common.cpp — shared command-line plumbing for the server subcommands.
#include "common.hpp"

#include <cstdio>

#include "commands.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/metrics_endpoint.hpp"

namespace ringlet::cli {


void add_common_options(CLI::App& app, CommonOptions& options, const std::string& backend_flag) {
  app.set_version_flag("--version", version_text);
  app.add_option(backend_flag, options.backend,
                 "I/O backend: auto (io_uring when the kernel allows it, else epoll), uring or epoll. "
                 "The environment variable RINGLET_BACKEND does the same when this is auto")
      ->check(CLI::IsMember({"auto", "uring", "epoll"}))
      ->capture_default_str();
  app.add_option("--log-level", options.log_level, "Log level: debug, info, warn, error or off")
      ->check(CLI::IsMember({"debug", "info", "warn", "error", "off"}))
      ->capture_default_str();
  app.add_option("--log-format", options.log_format,
                 "Log lines as text (time, level, [shard], key: message) or json (one object per line with time, "
                 "level, shard, key and msg; docs/operations.md)")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();
  app.add_option("--log-file", options.log_file,
                 "Append the log to this file instead of stderr; SIGHUP reopens it (for logrotate)");
  app.add_option("--receive-buffers", options.receive_buffers,
                 "io_uring: receive buffers (8 KiB each) in each shard's ring, shared by all its connections; a "
                 "power of two. Bytes a connection leaves unread are copied out of the ring at the end of each loop "
                 "turn, so this bounds receives in flight per turn, not connections")
      ->check(CLI::Range(16u, 32768u))
      ->check([](const std::string& text) -> std::string {
        unsigned long n = std::stoul(text);
        return (n & (n - 1)) == 0 ? std::string() : std::string("must be a power of two");
      })
      ->capture_default_str();
  app.add_option("--metrics-listen", options.metrics_listen,
                 "Serve Prometheus metrics (GET /metrics, text format 0.0.4) on this address, HOST:PORT or "
                 "[IPv6]:PORT; off by default. Port 0 picks a free port (the log line \"metrics: listening on\" says "
                 "which). Every metric is listed in docs/operations.md");
}

void add_sharding_options(CLI::App& app, ShardingCli& options) {
  app.add_option("--threads", options.threads,
                 "Shards: threads, each pinned to one CPU with its own event loop, sharing nothing. 0 means one per "
                 "CPU this process may run on")
      ->check(CLI::Range(0u, 1024u))
      ->capture_default_str();
  app.add_option("--accept", options.accept,
                 "How connections reach the shards: reuseport (every shard listens on the address, the kernel "
                 "spreads connections by hash) or handoff (shard 0 accepts and hands each connection to the shard "
                 "with the fewest open connections)")
      ->check(CLI::IsMember({"reuseport", "handoff"}))
      ->capture_default_str();
  app.add_option("--stats-interval", options.stats_interval,
                 "Log each shard's statistics (connections, bytes, messages, loop iterations, time waiting in the "
                 "kernel) every this many seconds; 0 means only once, at exit")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  app.add_flag("--no-pin", options.no_pin, "Do not pin shard threads to CPUs");
}

bool apply_log_options(const CommonOptions& common) {
  LogLevel level = LogLevel::info;
  parse_log_level(common.log_level, level);
  set_log_level(level);
  LogFormat format = LogFormat::text;
  parse_log_format(common.log_format, format);
  set_log_format(format);
  if (common.log_file.empty()) return true;
  Status opened = open_log_file(common.log_file);
  if (!opened) {
    std::fprintf(stderr, "ringlet: --log-file %s: %.*s\n", common.log_file.c_str(),
                 static_cast<int>(opened.error().message().size()), opened.error().message().data());
    return false;
  }
  return true;
}

int serve_sharded(const CommonOptions& common, const ShardingCli& sharding, const ServerOptions& server,
                  ShardServiceFactory factory) {
  if (!apply_log_options(common)) return 1;
  ShardedServerOptions options;
  parse_backend_kind(common.backend, options.shards.loop.backend.kind);
  options.shards.loop.backend.provided_buffer_count = common.receive_buffers;
  options.shards.shards = sharding.threads;
  options.shards.pin = !sharding.no_pin;
  parse_accept_mode(sharding.accept, options.accept);
  options.stats_interval =
      std::chrono::duration_cast<Duration>(std::chrono::duration<double>(sharding.stats_interval));
  if (!common.metrics_listen.empty()) {
    auto address = Address::parse(common.metrics_listen);
    if (!address || address->is_unix()) {
      std::fprintf(stderr, "ringlet: --metrics-listen %s: not an address (expected HOST:PORT or [IPv6]:PORT)\n",
                   common.metrics_listen.c_str());
      return 2;
    }
    factory = with_metrics_endpoint(std::move(factory), *address);
  }
  options.inherited = take_inherited_sockets();
  for (const InheritedSocket& s : options.inherited) {
    log_info(LogKey{"socket.inherited"}, "{}: socket {} from the service manager: {}", server.name, s.fd,
             s.address.to_string());
  }
  Status ran = run_sharded_server(options, server, std::move(factory));
  if (!ran) {
    log_error("{}: not started: {}", server.name, ran.error().message());
    return 1;
  }
  return 0;
}

void add_server_options(CLI::App& app, ServerOptions& options, std::string& listen_text, double& idle_seconds,
                        double& shutdown_seconds) {
  app.add_option("--listen", listen_text, "Address to listen on: HOST:PORT, [IPv6]:PORT or unix:/path")
      ->capture_default_str();
  app.add_option("--max-conns", options.max_connections,
                 "Most connections open at once over all shards (each shard takes an equal share); more are accepted "
                 "and closed at once, with a log line")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}))
      ->capture_default_str();
  app.add_option("--idle-timeout", idle_seconds,
                 "Close a connection that makes no progress (no input, or output not taken) for this many "
                 "seconds; 0 means never")
      ->check(CLI::Range(0.0, 1e7))
      ->capture_default_str();
  app.add_option("--shutdown-timeout", shutdown_seconds,
                 "On SIGINT/SIGTERM, how long open connections may finish before they are closed")
      ->check(CLI::Range(0.0, 3600.0))
      ->capture_default_str();
  app.add_option("--backlog", options.listen_options.backlog, "Listen backlog (pending connections the kernel queues)")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();
}

bool finish_server_options(ServerOptions& options, const std::string& listen_text, double idle_seconds,
                           double shutdown_seconds) {
  auto address = Address::parse(listen_text);
  if (!address) {
    std::fprintf(stderr, "ringlet: --listen %s: not an address (expected HOST:PORT, [IPv6]:PORT or unix:/path; "
                 "host names are not resolved here)\n", listen_text.c_str());
    return false;
  }
  options.listen = *address;
  options.idle_timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(idle_seconds));
  options.shutdown_timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(shutdown_seconds));
  return true;
}

}  // namespace ringlet::cli
