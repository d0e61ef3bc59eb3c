// Tests of what crosses shards in servers/cache (the connection loop itself is tested black-box in
// tests/integration/cache_server_test.cpp): a cache of two shards runs in this process, on both backends, and a
// client on each shard uses keys the other shard owns, flushes every shard and reads stats summed over them. In
// process (not the ringlet binary) so that scripts/test.sh's ThreadSanitizer stage checks these hand-offs with one
// small executable.
#include "ringlet/servers/cache.hpp"

#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <functional>
#include <memory>
#include <string>

#include "ringlet/net/sharded_server.hpp"
#include "support/loop_fixture.hpp"
#include "support/sharded_server_fixture.hpp"

namespace ringlet::cache {
namespace {

using namespace std::chrono_literals;

struct CacheService final : ShardService {
  explicit CacheService(std::unique_ptr<CacheServer> s) : server(std::move(s)) {}
  TcpServer& tcp() override { return server->tcp(); }
  std::unique_ptr<CacheServer> server;
};

// A blocking client with a generous deadline (only a hang exceeds it).
class Client {
 public:
  explicit Client(std::uint16_t port) : fd_(testing::connect_loopback(port)) {}
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  bool connected() const noexcept { return fd_ >= 0; }

  // Sends `request` and reads until the replies end with `terminator`; what came back.
  std::string ask(const std::string& request, std::string_view terminator = "\r\n") {
    std::size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = ::send(fd_, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return "send failed";
      sent += static_cast<std::size_t>(n);
    }
    std::string in;
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!in.ends_with(terminator) && std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buf[16384];
      const ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) break;
      in.append(buf, static_cast<std::size_t>(n));
    }
    return in;
  }

 private:
  int fd_;
};

class CacheShardsTest : public testing::ShardedServerFixture {
 protected:
  // Runs a two-shard cache (as `ringlet cache --threads 2 --accept handoff` does) while `drive` runs, then stops it
  // and expects a clean stop. A test with two clients has one on each shard (see sharded_options).
  void with_two_shard_cache(const std::function<void(std::uint16_t port)>& drive) {
    ServerOptions server;
    server.name = "cache";
    server.listen = Address::loopback_v4(0);
    std::unique_ptr<CacheCluster> cluster;  // made by shard 0's factory call, before shard 1's
    run_and_drive(sharded_options(2), server,
                  [&cluster](Shard& shard, const ServerOptions& o) -> std::unique_ptr<ShardService> {
                    if (shard.id() == 0) cluster = std::make_unique<CacheCluster>(shard.count());
                    CacheOptions co;
                    co.server = o;
                    co.memory_bytes = 8 * 1024 * 1024;
                    co.shards = shard.count();
                    co.shard = shard.id();
                    co.cluster = cluster.get();
                    auto created = CacheServer::create(shard.loop(), co);
                    if (!created) return nullptr;
                    return std::make_unique<CacheService>(std::move(*created));
                  },
                  drive);
  }
};

std::string key_of(int i) { return "key" + std::to_string(i); }

TEST_P(CacheShardsTest, keys_owned_by_the_other_shard_are_served_through_either_connection) {
  with_two_shard_cache([](std::uint16_t port) {
    Client a(port);
    Client b(port);
    ASSERT_TRUE(a.connected() && b.connected());
    // 32 keys: about half are owned by each shard, whichever shard each connection landed on.
    std::string all = "get";
    std::string values;
    for (int i = 0; i < 32; ++i) {
      const std::string v = std::to_string(i * 7);
      EXPECT_EQ(a.ask("set " + key_of(i) + " 5 0 " + std::to_string(v.size()) + "\r\n" + v + "\r\n"), "STORED\r\n");
      EXPECT_EQ(b.ask("get " + key_of(i) + "\r\n", "END\r\n"),
                "VALUE " + key_of(i) + " 5 " + std::to_string(v.size()) + "\r\n" + v + "\r\nEND\r\n");
      all += " " + key_of(i);
      values += "VALUE " + key_of(i) + " 5 " + std::to_string(v.size()) + "\r\n" + v + "\r\n";
    }
    // A multi-get over both shards answers in request order, on both connections.
    EXPECT_EQ(a.ask(all + "\r\n", "END\r\n"), values + "END\r\n");
    EXPECT_EQ(b.ask(all + "\r\n", "END\r\n"), values + "END\r\n");
    // Key commands and meta commands run where the key lives.
    EXPECT_EQ(b.ask("incr key1 3\r\n"), "10\r\n");
    EXPECT_EQ(a.ask("delete key2\r\n"), "DELETED\r\n");
    EXPECT_EQ(b.ask("mg key2 v\r\n"), "EN\r\n");
    EXPECT_EQ(a.ask("mg key1 v\r\n"), "VA 2\r\n10\r\n");
  });
}

TEST_P(CacheShardsTest, flush_all_empties_every_shard) {
  with_two_shard_cache([](std::uint16_t port) {
    Client a(port);
    Client b(port);
    ASSERT_TRUE(a.connected() && b.connected());
    std::string all = "get";
    for (int i = 0; i < 16; ++i) {
      EXPECT_EQ(a.ask("set " + key_of(i) + " 0 0 1\r\nx\r\n"), "STORED\r\n");
      all += " " + key_of(i);
    }
    EXPECT_EQ(b.ask("flush_all\r\n"), "OK\r\n");
    EXPECT_EQ(a.ask(all + "\r\n", "END\r\n"), "END\r\n");
    EXPECT_EQ(b.ask(all + "\r\n", "END\r\n"), "END\r\n");
  });
}

TEST_P(CacheShardsTest, stats_are_summed_over_the_shards) {
  with_two_shard_cache([](std::uint16_t port) {
    Client a(port);
    Client b(port);
    ASSERT_TRUE(a.connected() && b.connected());
    for (int i = 0; i < 20; ++i) EXPECT_EQ(a.ask("set " + key_of(i) + " 0 0 1\r\nx\r\n"), "STORED\r\n");
    for (int i = 0; i < 25; ++i) (void)b.ask("get " + key_of(i) + "\r\n", "END\r\n");
    const std::string stats = a.ask("stats\r\n", "END\r\n");
    EXPECT_NE(stats.find("STAT curr_items 20\r\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("STAT cmd_set 20\r\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("STAT get_hits 20\r\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("STAT get_misses 5\r\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("STAT curr_connections 2\r\n"), std::string::npos) << stats;
    EXPECT_NE(stats.find("STAT threads 2\r\n"), std::string::npos) << stats;
    EXPECT_EQ(b.ask("stats reset\r\n"), "RESET\r\n");
    EXPECT_NE(a.ask("stats\r\n", "END\r\n").find("STAT cmd_set 0\r\n"), std::string::npos);
  });
}

RINGLET_BOTH_BACKENDS(CacheShardsTest);

}  // namespace
}  // namespace ringlet::cache
