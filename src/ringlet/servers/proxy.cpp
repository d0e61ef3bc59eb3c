// proxy.cpp — the connection task of `ringlet proxy`, backend choice, the health checks and the statistics log
// (servers/proxy.hpp). The bytes themselves move in net/relay.
#include "ringlet/servers/proxy.hpp"

#include <cerrno>
#include <csignal>
#include <functional>

#include "ringlet/base/log.hpp"
#include "ringlet/runtime/when.hpp"

namespace ringlet {

bool parse_balance(std::string_view text, Balance& out) noexcept {
  if (text == "roundrobin") {
    out = Balance::roundrobin;
  } else if (text == "leastconn") {
    out = Balance::leastconn;
  } else if (text == "source") {
    out = Balance::source;
  } else {
    return false;
  }
  return true;
}

std::string_view balance_name(Balance b) noexcept {
  switch (b) {
    case Balance::roundrobin:
      return "roundrobin";
    case Balance::leastconn:
      return "leastconn";
    case Balance::source:
      return "source";
  }
  return "?";
}

namespace {

double seconds(Duration d) { return std::chrono::duration<double>(d).count(); }

// The client's host (not its port, which changes per connection), hashed: the same client keeps reaching the same
// backend while the set of backends that are up stays the same.
std::size_t source_hash(const Address& client) noexcept {
  std::string_view bytes;
  if (client.family() == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(client.sockaddr_ptr());
    bytes = {reinterpret_cast<const char*>(&in->sin_addr), sizeof in->sin_addr};
  } else if (client.family() == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(client.sockaddr_ptr());
    bytes = {reinterpret_cast<const char*>(&in6->sin6_addr), sizeof in6->sin6_addr};
  }
  return std::hash<std::string_view>{}(bytes);
}

}  // namespace

// ---- choosing a backend ---------------------------------------------------------------------------------------

int ProxyServer::choose(const Address& client, const std::vector<bool>& tried) noexcept {
  const std::size_t n = backends_.size();
  auto usable = [&](std::size_t i) { return backends_[i].up && !tried[i]; };
  if (options_.balance == Balance::leastconn) {
    int best = -1;
    for (std::size_t k = 0; k < n; ++k) {
      // Start after the last pick so that equal loads take turns instead of all landing on the first backend.
      std::size_t i = (next_ + k) % n;
      if (usable(i) && (best < 0 || backends_[i].stats.open < backends_[static_cast<std::size_t>(best)].stats.open)) {
        best = static_cast<int>(i);
      }
    }
    if (best >= 0) next_ = static_cast<std::size_t>(best) + 1;
    return best;
  }
  std::size_t start = options_.balance == Balance::source ? source_hash(client) % n : next_++ % n;
  for (std::size_t k = 0; k < n; ++k) {
    std::size_t i = (start + k) % n;
    if (usable(i)) return static_cast<int>(i);
  }
  return -1;
}

// ---- health ---------------------------------------------------------------------------------------------------

void ProxyServer::mark_failure(ProxyBackend& b, const char* what, Error error) noexcept {
  // Out of descriptors or memory here says nothing about the backend: it must not lose its place for it.
  if (error.code == EMFILE || error.code == ENFILE || error.code == ENOBUFS || error.code == ENOMEM) return;
  b.successes = 0;
  ++b.failures;
  // Without active checks nothing would ever bring a backend back: then failures only move clients on.
  if (b.up && b.failures >= kFall && options_.health_interval > Duration::zero()) {
    b.up = false;
    log_warn("{}: backend {} is DOWN after {} failures in a row (last: {}: {})", options_.server.name, b.name,
             b.failures, what, error.message());
  }
}

void ProxyServer::note_connect_failed(std::size_t i, Error error) noexcept {
  ProxyBackend& b = backends_[i];
  ++b.stats.failed_connects;
  log_debug("{}: connect to backend {}: {}", options_.server.name, b.name, error.message());
  mark_failure(b, "connect", error);
}

void ProxyServer::note_connected(std::size_t i) noexcept {
  ProxyBackend& b = backends_[i];
  b.failures = 0;
  ++b.stats.connections;
}

void ProxyServer::note_probe(std::size_t i, Status outcome) noexcept {
  ProxyBackend& b = backends_[i];
  if (!outcome) {
    ++b.stats.failed_checks;
    mark_failure(b, "health check", outcome.error());
    return;
  }
  b.failures = 0;
  if (b.up) return;
  if (++b.successes >= kRise) {
    b.up = true;
    b.successes = 0;
    log_info("{}: backend {} is UP again", options_.server.name, b.name);
  }
}

void ProxyServer::note_no_backend() noexcept {
  ++no_backend_;
  // One line per second at most: a flood of clients while every backend is down must not flood the log.
  std::int64_t now = loop_->now_ns();
  if (now - no_backend_log_ns_ >= 1'000'000'000) {
    log_warn("{}: no backend available: closing clients at once ({} so far)", options_.server.name, no_backend_);
    no_backend_log_ns_ = now;
  }
}

namespace {

Task<void> probe(ProxyServer* server, std::size_t i, Duration timeout) {
  Result<Stream> connected = co_await connect(server->backend(i).address, timeout);
  if (!connected && connected.error() == errc::cancelled) co_return;  // the server is stopping
  server->note_probe(i, connected ? Status{} : Status{connected.error()});
}

Task<void> check_health(ProxyServer* server) {
  const ProxyOptions& o = server->options();
  // A probe may take at most the interval, so one round never overlaps the next.
  const Duration timeout = std::min(o.connect_timeout, o.health_interval);
  for (;;) {
    Status slept = co_await sleep_for(o.health_interval);
    if (!slept) co_return;
    std::vector<Task<void>> probes;
    probes.reserve(server->backends().size());
    for (std::size_t i = 0; i < server->backends().size(); ++i) probes.push_back(probe(server, i, timeout));
    co_await when_all(std::move(probes));
    CancelState& self = co_await this_task_cancel_state();
    if (self.requested()) co_return;
  }
}

Task<void> log_stats_every(ProxyServer* server, Duration interval) {
  for (;;) {
    Status slept = co_await sleep_for(interval);
    if (!slept) co_return;
    server->log_stats("stats");
  }
}

}  // namespace

void ProxyServer::describe_metrics(MetricSet& out) const {
  for (const ProxyBackend& b : backends_) {
    const ProxyBackendStats& s = b.stats;
    const MetricLabels backend{{"backend", b.name}};
    // Each shard checks on its own. The state is 1 when any shard sees the backend up (clients reaching that shard
    // are served), so an alert compares it with 1 whatever the shard count; the count says whether shards disagree.
    out.gauge_max("ringlet_proxy_backend_up", "1 when the backend is up (any shard sees it up), 0 when it is down.",
                  b.up ? 1 : 0, backend);
    out.gauge("ringlet_proxy_backend_up_shards",
              "Shards that see the backend up (each checks on its own): equal to ringlet_shards when all do.",
              b.up ? 1 : 0, backend);
    out.gauge("ringlet_proxy_backend_connections_open", "Relays to the backend in progress.",
              static_cast<double>(s.open), backend);
    out.counter("ringlet_proxy_backend_connections_total", "Relayed connections opened to the backend.",
                static_cast<double>(s.connections), backend);
    out.counter("ringlet_proxy_backend_sent_bytes_total", "Bytes relayed from clients to the backend.",
                static_cast<double>(s.bytes.a_to_b), backend);
    out.counter("ringlet_proxy_backend_received_bytes_total", "Bytes relayed from the backend to clients.",
                static_cast<double>(s.bytes.b_to_a), backend);
    out.counter("ringlet_proxy_backend_failures_total", "Backend failures, by kind: connect (a client's connect "
                "failed), check (an active probe failed), reset (a relay ended in an error on either side).",
                static_cast<double>(s.failed_connects), {{"backend", b.name}, {"kind", "connect"}});
    out.counter("ringlet_proxy_backend_failures_total", "", static_cast<double>(s.failed_checks),
                {{"backend", b.name}, {"kind", "check"}});
    out.counter("ringlet_proxy_backend_failures_total", "", static_cast<double>(s.resets),
                {{"backend", b.name}, {"kind", "reset"}});
  }
  out.counter("ringlet_proxy_no_backend_total", "Client connections closed because no backend was up.",
              static_cast<double>(no_backend_));
}

void ProxyServer::log_stats(std::string_view when) const {
  for (const ProxyBackend& b : backends_) {
    const ProxyBackendStats& s = b.stats;
    log_info("{}: {}: backend {} {}: {} connections ({} open), {} B to it, {} B from it ({} B spliced), "
             "{} failed connects, {} failed checks, {} ended by a failure",
             options_.server.name, when, b.name, b.up ? "up" : "DOWN", s.connections, s.open, s.bytes.a_to_b,
             s.bytes.b_to_a, s.bytes.spliced, s.failed_connects, s.failed_checks, s.resets);
  }
  if (no_backend_ != 0) log_info("{}: {}: {} client(s) closed with no backend up", options_.server.name, when, no_backend_);
}

Task<void> ProxyServer::run() {
  JoinHandle<void> health;
  JoinHandle<void> stats;
  if (options_.health_interval > Duration::zero()) health = loop_->spawn_joinable(check_health(this));
  if (options_.stats_interval > Duration::zero()) {
    stats = loop_->spawn_joinable(log_stats_every(this, options_.stats_interval));
  }
  co_await tcp_.run();
  for (JoinHandle<void>* h : {&health, &stats}) {
    if (!h->valid()) continue;
    h->cancel();
    co_await *h;
  }
  log_stats("final");
}

// ---- a connection ---------------------------------------------------------------------------------------------

Task<void> proxy_connection(Stream client, TcpServer& tcp) {
  ProxyServer& server = *static_cast<ProxyServer*>(tcp.user());
  const ProxyOptions& options = server.options();
  // The client's address is a getpeername per connection: asked only when something uses it (source balancing, the
  // PROXY header, the debug line at the end), not on every connection of a plain proxy (docs/design/proxy.md,
  // "System calls per connection").
  Address peer;
  const bool wants_peer = options.balance == Balance::source || options.send_proxy != proxy_protocol::Version::none ||
                          log_level() <= LogLevel::debug;
  if (wants_peer) {
    if (Result<Address> a = client.peer_address()) peer = *a;
  }
  std::vector<bool> tried(server.backends().size(), false);
  for (;;) {
    int chosen = server.choose(peer, tried);
    if (chosen < 0) {
      server.note_no_backend();
      co_return;  // every backend is down or failed: the client is closed now, not left waiting
    }
    const auto i = static_cast<std::size_t>(chosen);
    tried[i] = true;
    Result<Stream> backend = co_await connect(server.backend(i).address, options.connect_timeout);
    if (!backend) {
      if (backend.error() == errc::cancelled) co_return;  // forced stop
      server.note_connect_failed(i, backend.error());
      continue;  // the next backend
    }
    server.note_connected(i);
    std::string preamble;
    if (options.send_proxy != proxy_protocol::Version::none) {
      Result<Address> local = client.local_address();
      proxy_protocol::compose(options.send_proxy, peer, local ? *local : Address{}, preamble);
    }
    (void)backend->set_nodelay(Toggle::on);
    ProxyBackendStats& stats = server.backend(i).stats;
    ++stats.open;
    RelayResult result =
        co_await relay(std::move(client), std::move(*backend), options.relay, std::move(preamble), &stats.bytes);
    --stats.open;
    if (result.end == RelayEnd::a_failed || result.end == RelayEnd::b_failed) ++stats.resets;
    log_debug("{}: {} via {}: {}{}{} ({} B up, {} B down)", options.server.name, peer.to_string(),
              server.backend(i).name, relay_end_name(result.end), result.error != 0 ? ": " : "",
              result.error != 0 ? Error{result.error}.message() : "", result.bytes.a_to_b, result.bytes.b_to_a);
    co_return;
  }
}

// ---- the server -----------------------------------------------------------------------------------------------

Result<std::unique_ptr<ProxyServer>> ProxyServer::create(Loop& loop, ProxyOptions options) {
  if (options.backends.empty()) {
    log_error("proxy: no backend given");
    return errc::invalid_argument;
  }
  // Splicing into a socket whose peer has gone raises SIGPIPE (runtime/splice.hpp): errors must stay values.
  std::signal(SIGPIPE, SIG_IGN);
  if (options.server.name == ServerOptions{}.name) options.server.name = "proxy";
  options.relay.idle_timeout = options.server.idle_timeout;
  auto server = std::unique_ptr<ProxyServer>(new ProxyServer(loop, std::move(options)));
  const ProxyOptions& o = server->options_;
  std::string names;
  for (const ProxyBackend& b : server->backends_) names.append(names.empty() ? "" : ", ").append(b.name);
  log_info("{}: backends {}; balance {}, connect timeout {} s, health checks {}, idle timeout {}, splice {}, "
           "PROXY header {}",
           o.server.name, names, balance_name(o.balance), seconds(o.connect_timeout),
           o.health_interval > Duration::zero() ? fmt::format("every {} s", seconds(o.health_interval)) : "off",
           o.relay.idle_timeout > Duration::zero() ? fmt::format("{} s", seconds(o.relay.idle_timeout)) : "none",
           splice_mode_name(o.relay.splice), proxy_protocol::version_name(o.send_proxy));
  return server;
}

ProxyServer::ProxyServer(Loop& loop, ProxyOptions options)
    : loop_(&loop), options_(std::move(options)), tcp_(loop, options_.server, &proxy_connection, this) {
  backends_.reserve(options_.backends.size());
  for (const Address& a : options_.backends) {
    ProxyBackend b;
    b.address = a;
    b.name = a.to_string();
    backends_.push_back(std::move(b));
  }
}

ProxyServer::~ProxyServer() = default;

}  // namespace ringlet
