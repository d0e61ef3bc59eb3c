// proxy_command.cpp — `ringlet proxy`: options, then relay until a signal (servers/proxy.hpp, docs/proxy.md).
#include <sys/resource.h>

#include <chrono>
#include <cstdio>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/proxy.hpp"

namespace ringlet::cli {

namespace {

Duration seconds_to_duration(double s) {
  return std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s));
}

struct ProxyService final : ShardService {
  explicit ProxyService(std::unique_ptr<ProxyServer> s) : server(std::move(s)) {}
  TcpServer& tcp() override { return server->tcp(); }
  Task<void> run() override { return server->run(); }
  void describe_metrics(MetricSet& out) override { server->describe_metrics(out); }
  std::unique_ptr<ProxyServer> server;
};

// "As many connections as the descriptor limit allows": the soft limit is raised to the hard one, and each
// relayed connection costs two descriptors (client and backend); a tenth is kept for pipes, probes and the rest.
std::size_t connections_the_descriptor_limit_allows() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 10000;
  if (limit.rlim_cur < limit.rlim_max) {
    rlimit raised = limit;
    raised.rlim_cur = limit.rlim_max;
    if (::setrlimit(RLIMIT_NOFILE, &raised) == 0) limit = raised;
  }
  const auto fds = static_cast<std::size_t>(std::min<rlim_t>(limit.rlim_cur, 1u << 24));
  return std::max<std::size_t>(1, fds * 9 / 10 / 2);
}

}  // namespace

void add_proxy_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand("proxy", "TCP proxy and load balancer: relays each connection to one of the "
                                          "--backend servers (splice for bulk transfers, health checks, "
                                          "PROXY protocol)");
  struct State {
    CommonOptions common;
    ShardingCli sharding;
    ProxyOptions proxy;
    std::string listen = "127.0.0.1:8000";
    std::vector<std::string> backends;
    std::string balance = "roundrobin";
    std::string send_proxy = "none";
    std::string splice = "auto";
    double idle_seconds = 300;
    double shutdown_seconds = 30;
    double connect_seconds = 3;
    double health_seconds = 2;
    std::size_t max_conns = 0;
  };
  auto state = std::make_shared<State>();
  add_server_options(*cmd, state->proxy.server, state->listen, state->idle_seconds, state->shutdown_seconds);
  // --max-conns defaults to what the descriptor limit allows, not to the other servers' fixed number.
  cmd->remove_option(cmd->get_option("--max-conns"));
  cmd->add_option("--max-conns", state->max_conns,
                  "Most client connections relayed at once over all shards (more are accepted and closed at once, "
                  "with a log line). Default: as many as the descriptor limit allows (the soft limit is raised to the "
                  "hard one; two descriptors per connection, a tenth kept in reserve)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  cmd->add_option("--backend", state->backends,
                  "A backend server: HOST:PORT, [IPv6]:PORT or unix:/path. Repeat for several; at least one")
      ->required()
      ->take_all();
  cmd->add_option("--balance", state->balance,
                  "How a backend is chosen for each connection: roundrobin (in turn), leastconn (the fewest open "
                  "relays on this shard) or source (a hash of the client's address: a client keeps its backend while "
                  "the set of backends up stays the same)")
      ->check(CLI::IsMember({"roundrobin", "leastconn", "source"}))
      ->capture_default_str();
  cmd->add_option("--connect-timeout", state->connect_seconds,
                  "Seconds a connect to a backend may take; then (or when it is refused) the next backend is tried, "
                  "each at most once per client")
      ->check(CLI::Range(0.001, 3600.0))
      ->capture_default_str();
  cmd->add_option("--health-interval", state->health_seconds,
                  "Seconds between active health checks (a connect probe to every backend, closed at once). Two "
                  "failures in a row (probes or client connects) take a backend out of rotation, two successful "
                  "probes bring it back. 0 turns health checks off: then no backend is ever taken out")
      ->check(CLI::Range(0.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--send-proxy", state->send_proxy,
                  "Send a PROXY protocol header (HAProxy's, v1 text or v2 binary) to the backend before the "
                  "client's bytes, so the backend sees the client's address. The backend must expect it (HAProxy: "
                  "accept-proxy; nginx: proxy_protocol)")
      ->check(CLI::IsMember({"none", "v1", "v2"}))
      ->capture_default_str();
  cmd->add_option("--splice", state->splice,
                  "How bytes move: auto (copy through a small pooled buffer, switching a direction to splice(2) "
                  "through a pooled pipe while a bulk transfer fills that buffer), always (splice every read) or "
                  "never (always copy)")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  cmd->add_option("--copy-buffer", state->proxy.relay.copy_buffer,
                  "Bytes per copied read; in auto mode a read that fills it switches its direction to splice")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20))
      ->capture_default_str();
  add_sharding_options(*cmd, state->sharding);
  add_common_options(*cmd, state->common, "--io-backend");
  // The shared option texts, said for a proxy.
  cmd->get_option("--idle-timeout")
      ->description("Close a relayed connection when no byte has moved either way for this many seconds; 0 means "
                    "never");
  cmd->get_option("--shutdown-timeout")
      ->description("On SIGINT/SIGTERM the listener closes at once; transfers in flight may go on for this many "
                    "seconds before they are closed");
  cmd->get_option("--stats-interval")
      ->description("Log each shard's statistics and per-backend statistics (connections, bytes, failures, state) "
                    "every this many seconds; 0 means only once, at exit");
  cmd->callback([state, &run] {
    run = [state]() -> int {
      if (!finish_server_options(state->proxy.server, state->listen, state->idle_seconds, state->shutdown_seconds)) {
        return 2;
      }
      ProxyOptions& o = state->proxy;
      for (const std::string& text : state->backends) {
        auto address = Address::parse(text);
        if (!address) {
          std::fprintf(stderr, "ringlet: --backend %s: not an address (expected HOST:PORT, [IPv6]:PORT or "
                       "unix:/path; host names are not resolved here)\n", text.c_str());
          return 2;
        }
        o.backends.push_back(*address);
      }
      parse_balance(state->balance, o.balance);
      proxy_protocol::parse_version(state->send_proxy, o.send_proxy);
      parse_splice_mode(state->splice, o.relay.splice);
      o.connect_timeout = seconds_to_duration(state->connect_seconds);
      o.health_interval = seconds_to_duration(state->health_seconds);
      o.stats_interval = seconds_to_duration(state->sharding.stats_interval);
      o.server.max_connections =
          state->max_conns != 0 ? state->max_conns : connections_the_descriptor_limit_allows();
      o.server.name = "proxy";
      ProxyOptions base = o;
      // One ProxyServer per shard: its own view of the backends' health and its own counters.
      return serve_sharded(state->common, state->sharding, base.server,
                           [base](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
                             ProxyOptions options = base;
                             options.server = server;
                             auto created = ProxyServer::create(shard.loop(), options);
                             if (!created) return nullptr;
                             return std::make_unique<ProxyService>(std::move(*created));
                           });
    };
  });
}

}  // namespace ringlet::cli
