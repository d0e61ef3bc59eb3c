// cache_command.cpp — `ringlet cache`: options (ours and memcached's short flags, so existing service files keep
// working), then serve until a signal.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/cache.hpp"

namespace ringlet::cli {

namespace {

struct CacheService final : ShardService {
  explicit CacheService(std::unique_ptr<cache::CacheServer> s) : server(std::move(s)) {}
  TcpServer& tcp() override { return server->tcp(); }
  std::unique_ptr<cache::CacheServer> server;
};

// "1m", "512k", "1048576" (memcached's -I accepts k and m suffixes).
bool parse_size(const std::string& text, std::size_t& out) {
  if (text.empty()) return false;
  std::size_t mult = 1;
  std::string digits = text;
  const char last = digits.back();
  if (last == 'k' || last == 'K') mult = 1024;
  if (last == 'm' || last == 'M') mult = 1024 * 1024;
  if (mult != 1) digits.pop_back();
  if (digits.empty() || digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 12) {
    return false;
  }
  out = std::stoull(digits) * mult;
  return true;
}

}  // namespace

void add_cache_command(CLI::App& app, std::function<int()>& run) {
  auto* cmd = app.add_subcommand(
      "cache", "memcached 1.6-compatible cache (text and meta protocols), memory-bounded, one partition of the key "
               "space per shard");
  struct State {
    CommonOptions common;
    ShardingCli sharding;
    cache::CacheOptions cache;
    std::string listen;
    std::string listen_host;  // -l
    unsigned port = 0;        // -p
    std::string socket_path;  // -s
    unsigned udp_port = 0;    // -U
    std::string user;         // -u (ignored)
    std::size_t memory_mb = 64;
    std::string max_item = "1m";
    double idle_seconds = 0;
    double shutdown_seconds = 5;
    double send_seconds = 60;
    std::size_t verbose = 0;
  };
  auto state = std::make_shared<State>();
  state->cache.server.max_connections = 1024;  // memcached's -c default
  add_server_options(*cmd, state->cache.server, state->listen, state->idle_seconds, state->shutdown_seconds);
  cmd->get_option("--listen")->description(
      "Address to listen on: HOST:PORT, [IPv6]:PORT or unix:/path (default 127.0.0.1:11211). One address; "
      "memcached's -l/-p/-s build it too");
  cmd->add_option("-c", state->cache.server.max_connections, "memcached's name for --max-conns (default 1024)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{10'000'000}));
  cmd->add_option("--memory,-m", state->memory_mb,
                  "Megabytes of memory for items, all shards together (each shard gets an equal share). Unlike "
                  "memcached's -m this counts everything the store allocates, its hash index included; the process "
                  "adds a fixed overhead (docs/cache.md)")
      ->check(CLI::Range(std::size_t{2}, std::size_t{1} << 30))
      ->capture_default_str();
  cmd->add_option("--max-item-size,-I", state->max_item,
                  "Largest item, header and key included (memcached's -I): bytes, or with a k or m suffix. Larger "
                  "values get SERVER_ERROR object too large for cache")
      ->capture_default_str();
  cmd->add_option("-t", state->sharding.threads, "memcached's name for --threads")->check(CLI::Range(0u, 1024u));
  cmd->add_option("-p", state->port, "memcached's TCP port flag: listen on this port (host from -l, default 127.0.0.1)")
      ->check(CLI::Range(0u, 65535u));
  cmd->add_option("-l", state->listen_host, "memcached's listen-address flag (with -p; default port 11211)");
  cmd->add_option("-s", state->socket_path, "memcached's Unix socket flag: listen on this path (same as --listen unix:PATH)");
  cmd->add_option("-U", state->udp_port, "memcached's UDP port: only 0 (UDP off) is supported, as in memcached's default")
      ->check(CLI::Range(0u, 0u));
  cmd->add_option("-u", state->user, "memcached's run-as-user flag: accepted and ignored (run ringlet as that user)");
  cmd->add_flag("-v", state->verbose, "More logging (memcached's -v; -vv and more: debug)");
  cmd->add_option("--send-timeout", state->send_seconds,
                  "Seconds a client may leave our replies unread before the connection is closed")
      ->check(CLI::Range(0.001, 86400.0))
      ->capture_default_str();
  cmd->add_option("--output-limit", state->cache.output_limit,
                  "Bytes of replies queued per connection before we stop reading its requests (a slow reader of big "
                  "multi-gets holds this much, not more)")
      ->check(CLI::Range(std::size_t{4096}, std::size_t{1} << 30))
      ->capture_default_str();
  add_sharding_options(*cmd, state->sharding);
  add_common_options(*cmd, state->common);
  cmd->callback([state, &run] {
    run = [state]() -> int {
      State& s = *state;
      std::string listen = s.listen;
      if (!s.socket_path.empty()) {
        listen = "unix:" + s.socket_path;
      } else if (listen.empty()) {
        std::string host = s.listen_host.empty() ? std::string("127.0.0.1") : s.listen_host;
        if (host.find(':') != std::string::npos && host.front() != '[') host = "[" + host + "]";
        listen = host + ":" + std::to_string(s.port != 0 ? s.port : 11211);
      }
      if (!finish_server_options(s.cache.server, listen, s.idle_seconds, s.shutdown_seconds)) return 2;
      std::size_t max_item = 0;
      if (!parse_size(s.max_item, max_item) || max_item < 1024 || max_item > 64 * 1024 * 1024) {
        std::fprintf(stderr, "ringlet: --max-item-size %s: expected 1k to 64m (bytes, or a k or m suffix)\n",
                     s.max_item.c_str());
        return 2;
      }
      if (s.verbose > 1 && s.common.log_level == "info") s.common.log_level = "debug";
      if (!apply_log_options(s.common)) return 1;
      if (!s.user.empty()) log_info("cache: -u {} ignored: run ringlet as the user it should be", s.user);
      cache::CacheOptions base = s.cache;
      base.max_item_bytes = max_item;
      base.memory_bytes = s.memory_mb * 1024 * 1024;  // the total, split per shard below
      base.send_timeout = std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s.send_seconds));
      base.max_connections_total = s.cache.server.max_connections;
      base.verbosity = static_cast<unsigned>(s.verbose);
      base.server.name = "cache";
      // The cluster (which shard serves which partition) is made by shard 0's factory call, before the others run
      // theirs (run_sharded_server starts shards one after the other, through submit_to).
      auto cluster = std::make_shared<std::unique_ptr<cache::CacheCluster>>();
      return serve_sharded(
          s.common, s.sharding, base.server,
          [base, cluster](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
            if (shard.id() == 0) {
              *cluster = std::make_unique<cache::CacheCluster>(shard.count());
              (*cluster)->started_unix = static_cast<std::int64_t>(::time(nullptr));
            }
            cache::CacheOptions options = base;
            options.server = server;
            options.shards = shard.count();
            options.shard = shard.id();
            options.cluster = cluster->get();
            options.memory_bytes = cache::shard_memory(base.memory_bytes, shard.count(), base.max_item_bytes);
            if (options.memory_bytes == 0) {
              log_error("cache: --memory {} MiB is too small for {} shard(s) with --max-item-size {}",
                        base.memory_bytes / (1024 * 1024), shard.count(), base.max_item_bytes);
              return nullptr;
            }
            auto created = cache::CacheServer::create(shard.loop(), options);
            if (!created) return nullptr;
            return std::make_unique<CacheService>(std::move(*created));
          });
    };
  });
}

}  // namespace ringlet::cli
