// cache_command.cpp — `ringlet cache`: options (ours and memcached's short flags, so existing service files keep
// working), then serve until a signal.
#include <algorithm>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "commands.hpp"
#include "common.hpp"
#include "ringlet/base/log.hpp"
#include "ringlet/servers/cache.hpp"

namespace ringlet::cli {

namespace {

struct CacheService final : ShardService {
  explicit CacheService(std::unique_ptr<cache::CacheServer> s) : server(std::move(s)) {}
  TcpServer& tcp() override { return server->tcp(); }
  std::span<TcpServer* const> more_servers() override { return server->more_listeners(); }
  void describe_metrics(MetricSet& out) override { cache::describe_cache_metrics(*server, out); }
  std::unique_ptr<cache::CacheServer> server;
};

// The further listen addresses one shard serves: all of them on shard 0; on the others, those the kernel can spread
// over the shards (SO_REUSEPORT, as the first address in reuseport mode) — not a Unix path, not port 0 (each shard
// would get a port of its own).
void add_more_listeners(cache::CacheServer& server, unsigned shard, const std::vector<Address>& addresses) {
  const bool shared = server.tcp().options().listen_options.reuse_port == ReusePort::yes;
  for (const Address& a : addresses) {
    const bool spread = shared && !a.is_unix() && a.port() != 0;
    if (shard != 0 && !spread) continue;
    server.add_listener(a, spread ? ReusePort::yes : ReusePort::no);
  }
}

// memcached's -l: a comma-separated list (and -l may be repeated); each entry is HOST, HOST:PORT, an IPv6 address
// bare or in brackets, or [IPv6]:PORT. An entry without a port gets -p's (11211 by default), as in memcached.
// Returns the entries as --listen texts; false (after printing why) on an empty entry.
bool memcached_listen_list(const std::vector<std::string>& lists, unsigned port, std::vector<std::string>& out) {
  for (const std::string& list : lists) {
    std::size_t begin = 0;
    for (;;) {
      const std::size_t comma = list.find(',', begin);
      const std::string entry = list.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin);
      if (entry.empty()) {
        std::fprintf(stderr, "ringlet: -l %s: an empty address in the list\n", list.c_str());
        return false;
      }
      const std::string default_port = ":" + std::to_string(port);
      const std::size_t colons = static_cast<std::size_t>(std::count(entry.begin(), entry.end(), ':'));
      if (entry.rfind("unix:", 0) == 0) {
        out.push_back(entry);
      } else if (entry.front() == '[') {
        out.push_back(entry.find("]:") != std::string::npos ? entry : entry + default_port);
      } else if (colons == 1) {
        out.push_back(entry);  // HOST:PORT
      } else if (colons > 1) {
        out.push_back("[" + entry + "]" + default_port);  // a bare IPv6 address
      } else {
        out.push_back(entry + default_port);
      }
      if (comma == std::string::npos) break;
      begin = comma + 1;
    }
  }
  return true;
}

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
    std::string listen;                    // add_server_options' text (replaced by `listens`)
    std::vector<std::string> listens;      // --listen, repeatable
    std::vector<std::string> listen_hosts; // -l, repeatable, each a comma-separated list
    std::vector<Address> more_addresses;   // every listen address after the first
    unsigned port = 11211;    // -p (0: a port the kernel picks, as in memcached)
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
  cmd->remove_option(cmd->get_option("--listen"));
  cmd->add_option("--listen", state->listens,
                  "Address to listen on: HOST:PORT, [IPv6]:PORT or unix:/path (default 127.0.0.1:11211). Repeatable, "
                  "TCP and Unix mixed: the first address is spread over the shards as --accept says; further ones are "
                  "served by every shard through SO_REUSEPORT, or by shard 0 alone for a Unix path or port 0. "
                  "memcached's -l/-p/-s add addresses too");
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
  cmd->add_option("-l", state->listen_hosts,
                  "memcached's listen-address flag: ADDR, ADDR:PORT, IPv6 bare or [IPv6]:PORT, a comma-separated "
                  "list of them, or repeated (the port defaults to -p's, 11211)");
  cmd->add_option("-s", state->socket_path,
                  "memcached's Unix socket flag: listen on this path (same as --listen unix:PATH; alone it disables "
                  "TCP, as in memcached)");
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
      // Every address, in the order given: --listen, then -l's list, then -s; -p alone (or nothing) means
      // 127.0.0.1 on -p's port.
      std::vector<std::string> listens = s.listens;
      if (!memcached_listen_list(s.listen_hosts, s.port, listens)) return 2;
      if (!s.socket_path.empty()) listens.push_back("unix:" + s.socket_path);
      if (listens.empty()) listens.push_back("127.0.0.1:" + std::to_string(s.port));
      for (std::size_t i = 1; i < listens.size(); ++i) {
        auto a = Address::parse(listens[i]);
        if (!a) {
          std::fprintf(stderr, "ringlet: --listen %s: not an address (expected HOST:PORT, [IPv6]:PORT or unix:/path; "
                       "host names are not resolved here)\n", listens[i].c_str());
          return 2;
        }
        s.more_addresses.push_back(*a);
      }
      if (!finish_server_options(s.cache.server, listens[0], s.idle_seconds, s.shutdown_seconds)) return 2;
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
      const std::vector<Address> more = s.more_addresses;
      return serve_sharded(
          s.common, s.sharding, base.server,
          [base, cluster, more](Shard& shard, const ServerOptions& server) -> std::unique_ptr<ShardService> {
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
            add_more_listeners(**created, shard.id(), more);
            return std::make_unique<CacheService>(std::move(*created));
          });
    };
  });
}

}  // namespace ringlet::cli
