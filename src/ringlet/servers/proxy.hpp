// proxy.hpp — `ringlet proxy`: a TCP proxy and load balancer. Each accepted connection is relayed byte for byte to
// one backend (net/relay.hpp: copy for small messages, splice for bulk, half-close and resets carried across).
// Core-local: one ProxyServer per loop, with its own view of the backends (health, counters); run one per shard
// for multi-core. docs/proxy.md is the user's page, docs/design/proxy.md the design note.
//
// A connection's life:
//   pick a backend (balance: roundrobin, leastconn or source), skipping those marked down → connect with the
//   connect timeout → on failure, count it against the backend and try the next one (each backend at most once) →
//   send the PROXY header if asked → relay until both directions end. No backend up, or every connect failed:
//   the client is closed at once.
// Health (per shard, shared-nothing):
//   active   every health_interval each backend gets a connect probe (connected, then closed at once);
//   passive  every failed client connect counts too.
//   kFall consecutive failures mark a backend down; kRise consecutive successful probes bring it back. Without
//   active checks (health_interval 0) a backend is never marked down (failed connects still move on to the next).
// Graceful stop: the listener closes, connections being set up finish setting up, relays run on until they end or
// the shutdown timeout (TcpServer).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ringlet/net/relay.hpp"
#include "ringlet/base/metrics.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/proto/proxy_protocol.hpp"

namespace ringlet {

enum class Balance : std::uint8_t { roundrobin, leastconn, source };
bool parse_balance(std::string_view text, Balance& out) noexcept;
std::string_view balance_name(Balance b) noexcept;

struct ProxyOptions {
  ServerOptions server;  // listen address, connection limit, idle timeout (for the relay), shutdown timeout
  std::vector<Address> backends;
  Balance balance = Balance::roundrobin;
  Duration connect_timeout = std::chrono::seconds(3);
  Duration health_interval = std::chrono::seconds(2);  // zero: no active checks
  Duration stats_interval = Duration::zero();          // per-backend statistics in the log; zero: only at exit
  proxy_protocol::Version send_proxy = proxy_protocol::Version::none;
  RelayOptions relay;  // its idle_timeout is taken from server.idle_timeout
};

struct ProxyBackendStats {
  std::uint64_t connections = 0;      // relayed connections opened
  std::uint64_t failed_connects = 0;  // client connects that failed (passive checks)
  std::uint64_t failed_checks = 0;    // active probes that failed
  std::uint64_t resets = 0;           // relays that ended in a failure on either side
  std::size_t open = 0;               // relays in progress
  RelayBytes bytes;                   // a_to_b: to the backend, b_to_a: from it
};

struct ProxyBackend {
  Address address;
  std::string name;  // the address as text, for the log
  bool up = true;
  unsigned failures = 0;   // consecutive failed connects or probes
  unsigned successes = 0;  // consecutive successful probes while down
  ProxyBackendStats stats;
};

class ProxyServer {
 public:
  static constexpr unsigned kFall = 2;  // consecutive failures that mark a backend down
  static constexpr unsigned kRise = 2;  // consecutive successful probes that bring it back

  // Ignores SIGPIPE (splice needs it, runtime/splice.hpp) and logs the settings. Fails without backends.
  static Result<std::unique_ptr<ProxyServer>> create(Loop& loop, ProxyOptions options);
  ~ProxyServer();
  ProxyServer(const ProxyServer&) = delete;
  ProxyServer& operator=(const ProxyServer&) = delete;

  TcpServer& tcp() noexcept { return tcp_; }
  Status listen() { return tcp_.listen(); }
  // Runs the health checks and the statistics log beside the TcpServer; returns when the server has stopped and
  // every connection has closed, after logging the final per-backend statistics.
  Task<void> run();
  void stop() noexcept { tcp_.stop(); }

  const ProxyOptions& options() const noexcept { return options_; }
  const std::vector<ProxyBackend>& backends() const noexcept { return backends_; }
  std::uint64_t no_backend_closes() const noexcept { return no_backend_; }
  void log_stats(std::string_view when) const;
  // ringlet_proxy_*: per backend — up, connections, bytes each way, failures (docs/operations.md, "Metrics").
  void describe_metrics(MetricSet& out) const;

  // ---- used by the connection tasks and the health checks ----
  Loop& loop() const noexcept { return *loop_; }
  ProxyBackend& backend(std::size_t i) noexcept { return backends_[i]; }
  // The backend for the next attempt: up, not yet `tried` (one flag per backend), chosen by the balance
  // algorithm. -1 when none is left.
  int choose(const Address& client, const std::vector<bool>& tried) noexcept;
  void note_connect_failed(std::size_t i, Error error) noexcept;  // passive check
  void note_connected(std::size_t i) noexcept;
  void note_probe(std::size_t i, Status outcome) noexcept;  // active check
  void note_no_backend() noexcept;

 private:
  ProxyServer(Loop& loop, ProxyOptions options);
  void mark_failure(ProxyBackend& b, const char* what, Error error) noexcept;

  Loop* loop_;
  ProxyOptions options_;
  std::vector<ProxyBackend> backends_;
  std::size_t next_ = 0;  // round robin position
  std::uint64_t no_backend_ = 0;
  std::int64_t no_backend_log_ns_ = 0;
  TcpServer tcp_;  // last: its connections use everything above
};

// The connection handler (TcpServer::Handler); server.user() is the ProxyServer.
Task<void> proxy_connection(Stream client, TcpServer& server);

}  // namespace ringlet
