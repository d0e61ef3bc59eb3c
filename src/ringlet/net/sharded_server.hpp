// sharded_server.hpp — one server on every shard (`--threads N`): the accept modes, the cross-shard graceful stop
// and per-shard statistics. Runs on the calling thread plus one thread per further shard; call it once.
//
// Accepting, two modes:
//   reuseport  every shard owns an SO_REUSEPORT listener on the same address and the kernel spreads connections
//              by a hash of the 4-tuple. Cheapest (no cross-core step), but blind to load: a stalled shard keeps
//              receiving its share.
//   handoff    shard 0 accepts and hands each connection to the shard with the fewest open connections (its own
//              included): the descriptor travels in a message and the target adopts it. One extra message per
//              connection buys balance by load.
// Shard 0 binds first (so port 0 resolves to one port that the others then share). A Unix socket path cannot be
// shared, so with one the mode is always handoff.
//
// Stopping: SIGINT/SIGTERM (when handle_signals) makes shard 0 send every shard "stop": each server closes its
// listener, drains its connections up to its shutdown_timeout and returns; the process then exits 0. A second
// signal force-closes every connection at once; a third exits immediately.
// SIGHUP reopens the log file (base/log.hpp), for logrotate; without one it only logs.
//
// Socket activation: a server whose address is that of a socket handed over (ShardedServerOptions::inherited)
// serves that socket instead of binding; the first server (tcp()) takes the first socket when none matches its
// address, so a unit that passes one socket needs no --listen. Every shard that listens gets its own dup of the one
// socket rather than a new SO_REUSEPORT socket beside it: systemd's socket is not in a reuseport group (its unit
// would need ReusePort=yes, and then connections queued on our extra sockets would be lost at each restart, the
// very thing socket activation is for). The shards then take connections from one accept queue, whoever is free
// first, instead of by the kernel's hash. An adopted socket is closed, never shut down, when the server stops, so
// systemd keeps it listening for the next start.
// Readiness: once every shard listens, shard 0 sends READY=1 to NOTIFY_SOCKET (Type=notify units); the first
// SIGINT/SIGTERM sends STOPPING=1. Without NOTIFY_SOCKET nothing is sent.
//
// Statistics: each shard's counters (connections, bytes, messages, loop iterations, time in the kernel) are logged
// every stats_interval (zero: never) by shard 0, which gathers them with submit_to, and once per shard at the end.
#pragma once

#include <functional>
#include <memory>
#include <span>

#include "ringlet/base/metrics.hpp"
#include "ringlet/net/systemd.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/runtime/shard/submit_to.hpp"

namespace ringlet {

enum class AcceptMode { reuseport, handoff };

bool parse_accept_mode(std::string_view text, AcceptMode& out) noexcept;
std::string_view accept_mode_name(AcceptMode mode) noexcept;

struct ShardedServerOptions {
  ShardSetOptions shards;
  AcceptMode accept = AcceptMode::reuseport;
  Duration stats_interval = Duration::zero();
  bool handle_signals = true;
  // Listening sockets handed over by systemd (net/systemd.hpp), served instead of binding; see "Socket activation"
  // above. run_sharded_server closes them when it returns.
  std::vector<InheritedSocket> inherited;
};

// What runs on one shard: a TcpServer plus whatever per-shard state its protocol keeps (caches, stores).
class ShardService {
 public:
  virtual ~ShardService() = default;
  virtual TcpServer& tcp() = 0;
  // Serves until the server has stopped and its connections have closed. A service with work of its own beside
  // the connections (health checks, timers) runs it here and ends it before returning.
  virtual Task<void> run() { return tcp().run(); }
  // Further servers of this shard, on other addresses (one server listening on several): each listens, runs and
  // stops with tcp(). They accept for themselves (no hand-off between shards); which shards have one is the
  // factory's choice (e.g. only shard 0 for a Unix path).
  virtual std::span<TcpServer* const> more_servers() { return {}; }
  // Describes the metrics of this service's protocol (hits, jobs, backends) into `out`, on its own shard, when
  // /metrics is scraped (servers/metrics_endpoint.hpp); connections and the shard's counters are described for
  // every service already (net/shard_metrics.hpp).
  virtual void describe_metrics(MetricSet& out) { (void)out; }
};

// Builds shard `shard`'s service on that shard's thread, with the server options it must use (the shared listen
// address, SO_REUSEPORT as the mode needs). Returns nullptr when it cannot (after logging why).
using ShardServiceFactory = std::function<std::unique_ptr<ShardService>(Shard& shard, const ServerOptions& options)>;

// Runs until every shard's server has stopped. Fails when a loop cannot be created or shard 0 cannot listen.
Status run_sharded_server(const ShardedServerOptions& options, const ServerOptions& server,
                          ShardServiceFactory factory);

// One log line for a shard's statistics.
void log_shard_stats(const ShardStats& s, std::string_view prefix);

}  // namespace ringlet
