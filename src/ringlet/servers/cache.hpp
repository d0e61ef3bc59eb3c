// cache.hpp — `ringlet cache`: a memcached 1.6-compatible cache server (text and meta protocols). Core-local: one
// CacheServer per shard, each owning the partition of the key space that hashes to it (docs/design/cache.md).
// Parsing is proto/memcache's, item semantics cache/commands', the store cache/store's; this file is the
// connection loop only:
//   parse a command line → wait for its data block (storage commands) → run it on the shard that owns the key
//   (here, or through submit_to) → queue the reply → next command.
// Replies are queued to the stream's output and leave with the loop's one send per turn, so pipelined commands cost
// one receive and one send. A multi-get's values are queued key by key and the task waits whenever the output is
// above output_limit: a client that asks for much and reads slowly holds back its own requests, not our memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "ringlet/cache/commands.hpp"
#include "ringlet/cache/store.hpp"
#include "ringlet/base/metrics.hpp"
#include "ringlet/net/tcp_server.hpp"
#include "ringlet/proto/memcache/request_parser.hpp"
#include "ringlet/runtime/task.hpp"

namespace ringlet::cache {

class CacheServer;

// What the shards of one cache share, created before they start and read-only afterwards, except each shard's
// slot, which only that shard writes (before it serves anything) and reads.
struct CacheCluster {
  explicit CacheCluster(unsigned shards) : servers(shards, nullptr) {}
  std::vector<CacheServer*> servers;  // by shard id
  std::int64_t started_unix = 0;      // for stats uptime
};

struct CacheOptions {
  ServerOptions server;
  std::size_t memory_bytes = 64 * 1024 * 1024;  // this shard's store budget
  std::size_t max_item_bytes = 1024 * 1024;
  std::size_t output_limit = 256 * 1024;        // queued reply bytes per connection before we wait
  Duration send_timeout = std::chrono::seconds(60);
  Duration expiry_interval = std::chrono::seconds(1);  // background expiry pass
  std::size_t expiry_batch = 10000;                    // items examined per pass
  std::size_t max_connections_total = 10000;           // for stats (all shards)
  unsigned shards = 1;                                 // partitions of the key space
  unsigned shard = 0;                                  // ours
  unsigned verbosity = 0;
  CacheCluster* cluster = nullptr;                     // null: a single-shard cache
};

class CacheServer {
 public:
  static Result<std::unique_ptr<CacheServer>> create(Loop& loop, CacheOptions options);
  ~CacheServer();
  CacheServer(const CacheServer&) = delete;
  CacheServer& operator=(const CacheServer&) = delete;

  TcpServer& tcp() noexcept { return tcp_; }
  Status listen() { return tcp_.listen(); }
  // A further address this shard serves (a repeated --listen): a server of its own, with the same connection
  // handler, store and options as tcp() except the address and SO_REUSEPORT. Its owner listens on it and runs it
  // (ShardService::more_servers); stop() stops it too.
  TcpServer& add_listener(const Address& address, ReusePort reuse_port);
  std::span<TcpServer* const> more_listeners() const noexcept { return more_tcp_; }
  // Serves until stop(); also runs the background expiry pass.
  Task<void> run();
  void stop() noexcept;

  // ---- used by the connection tasks and by other shards (on this shard's thread only) ----
  const CacheOptions& options() const noexcept { return options_; }
  Loop& loop() const noexcept { return *loop_; }
  Partition& partition() noexcept { return partition_; }
  Store& store() noexcept { return store_; }
  CommandStats& stats() noexcept { return stats_; }
  std::uint64_t& total_connections() noexcept { return total_connections_; }
  // Every connection's request batches (base/metrics.hpp, RequestBatchTimer).
  LatencyHistogram& batch_latency() noexcept { return batch_latency_; }
  unsigned& verbosity() noexcept { return verbosity_; }

 private:
  class LoopClock final : public Clock {
   public:
    explicit LoopClock(Loop& loop) : loop_(&loop) {}
    std::int64_t now_ns() const override { return loop_->now_ns(); }

   private:
    Loop* loop_;
  };

  CacheServer(Loop& loop, CacheOptions options, const StoreOptions& store);
  static Task<void> expire_periodically(CacheServer* self);

  Loop* loop_;
  CacheOptions options_;
  LoopClock clock_;
  Store store_;
  CommandStats stats_;
  Partition partition_;
  std::uint64_t total_connections_ = 0;
  LatencyHistogram batch_latency_;
  unsigned verbosity_ = 0;
  JoinHandle<void> expiry_;
  TcpServer tcp_;  // after the store and stats: its connections use everything above
  std::vector<std::unique_ptr<TcpServer>> more_;  // further addresses; destroyed first, like tcp_
  std::vector<TcpServer*> more_tcp_;
};

// The connection handler (TcpServer::Handler); server.user() is the CacheServer.
Task<void> cache_connection(Stream stream, TcpServer& server);

// ringlet_cache_*: this shard's partition — hits and misses by command, evictions, expirations, items, bytes and
// the memory limit — and its connections' request batch latency (docs/operations.md, "Metrics"). On this shard's
// thread.
void describe_cache_metrics(CacheServer& server, MetricSet& out);

// The store budget of one shard when `total` bytes are split over `shards`; 0 when too small for a store.
std::size_t shard_memory(std::size_t total, unsigned shards, std::size_t max_item_bytes) noexcept;

}  // namespace ringlet::cache
